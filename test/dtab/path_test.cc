#include "dtab/path.h"

#include <catch2/catch.hpp>

using switchyard::dtab::Path;

TEST_CASE("Path parses and shows Finagle's textual form", "[path]") {
  struct Case {
    const char* in;
    const char* show;
  };
  const Case cases[] = {
      {"/", "/"},
      {"/svc/hello", "/svc/hello"},
      {" \t/svc/hello \n", "/svc/hello"},
      {"/svc/hello # trailing comment", "/svc/hello"},
      {"/\\x41b", "/Ab"},
      {"/a\\x2fb", "/\\x61\\x2f\\x62"},
      {"/$/inet/::1/80", "/$/inet/::1/80"},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    auto p = Path::parse(c.in);
    REQUIRE(p);
    CHECK(p->show() == c.show);
    // Printing then reading back gives the same path.
    auto again = Path::parse(p->show());
    REQUIRE(again);
    CHECK(*again == *p);
  }
}

TEST_CASE("Path rejects malformed text with a position", "[path]") {
  struct Case {
    const char* in;
    std::size_t column;
  };
  const Case cases[] = {
      {"", 1}, {"svc", 1}, {"/svc/", 6}, {"//svc", 2}, {"/a b", 3}, {"/a*", 3}, {"/\\x4", 5}, {"/\\y41", 3},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    auto p = Path::parse(c.in);
    REQUIRE_FALSE(p);
    CHECK(p.error().column == c.column);
    CHECK(p.error().message().find("expected") != std::string::npos);
  }
}

TEST_CASE("Path element operations", "[path]") {
  Path p{"svc", "hello", "world"};
  CHECK(p.size() == 3);
  CHECK(p.startsWith(Path{"svc"}));
  CHECK(p.startsWith(Path{}));
  CHECK_FALSE(p.startsWith(Path{"sv"}));
  CHECK_FALSE(Path{"svc"}.startsWith(p));
  CHECK(p.take(2) == Path{"svc", "hello"});
  CHECK(p.drop(2) == Path{"world"});
  CHECK(p.drop(9).empty());
  CHECK(p.take(1) + p.drop(1) == p);
  CHECK(Path{"a"} < Path{"b"});
}

TEST_CASE("Path escapes every byte of an element with a non-showable byte", "[path]") {
  Path p{std::string("a\0b", 3), "ok"};
  CHECK(p.show() == "/\\x61\\x00\\x62/ok");
  auto back = Path::parse(p.show());
  REQUIRE(back);
  CHECK(*back == p);
}
