#include "namer/static_namer.h"

#include <catch2/catch.hpp>

#include "dtab/delegator.h"

using namespace switchyard;
using namespace switchyard::dtab;

TEST_CASE("static namers from JSON bind names under their prefix", "[static_namer]") {
  auto namers = namer::parseStaticNamers(R"({
    "/#/io.l5d.fs": {"hello": ["127.0.0.1:8080", "[::1]:8081"], "empty": []},
    "/#/broken": "error"})");
  REQUIRE(namers);
  REQUIRE(namers->size() == 2);
  auto dt = Dtab::parse("/svc => /#/io.l5d.fs; /bad => /#/broken");
  REQUIRE(dt);
  Delegator d(*dt, *namers);

  auto r = d.bind(Path{"svc", "hello", "x"});
  REQUIRE(r);
  REQUIRE(r->isLeaf());
  const BoundName& b = r->value();
  CHECK(b.id == Path{"#", "io.l5d.fs", "hello"});
  CHECK(b.residual == Path{"x"});
  REQUIRE(b.addr.endpoints.size() == 2);
  CHECK(b.addr.endpoints[1].ip == "::1");
  CHECK(b.addr.endpoints[1].port == 8081);

  auto none = d.bind(Path{"svc", "nope"});
  REQUIRE(none);
  CHECK(none->isNeg());

  auto err = d.bind(Path{"bad", "thing"});
  REQUIRE_FALSE(err);
  CHECK(err.error().message == "error naming /#/broken/thing");
}

TEST_CASE("static namer files: errors name the key", "[static_namer]") {
  struct Case {
    const char* json;
    const char* contains;
  };
  const Case cases[] = {
      {"[1]", "expected a JSON object"},
      {"{", "not valid JSON"},
      {R"({"no-slash": {}})", "namers[\"no-slash\"]: invalid prefix"},
      {R"({"/#/x": 3})", "namers[\"/#/x\"]"},
      {R"({"/#/x": {"a": "1.2.3.4:80"}})", "namers[\"/#/x\"][\"a\"]"},
      {R"({"/#/x": {"a": ["web:80"]}})", "'web' is not an IP address"},
      {R"({"/#/x": {"a": ["1.2.3.4:99999"]}})", "not a port"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto r = namer::parseStaticNamers(c.json);
    REQUIRE_FALSE(r);
    CHECK(r.error().find(c.contains) != std::string::npos);
  }
  auto missing = namer::loadStaticNamers("/nonexistent/namers.json");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().find("/nonexistent/namers.json") != std::string::npos);
}

TEST_CASE("static namers are tried in the order of the file", "[static_namer]") {
  auto namers = namer::parseStaticNamers(R"({
    "/#/fs/special": {"x": ["127.0.0.1:1"]},
    "/#/fs": {"special": ["127.0.0.1:2"]}})");
  REQUIRE(namers);
  auto r = Delegator(Dtab{}, *namers).bind(Path{"#", "fs", "special", "x"});
  REQUIRE(r);
  REQUIRE(r->isLeaf());
  CHECK(r->value().id == Path{"#", "fs", "special", "x"});
}
