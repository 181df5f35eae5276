#include "dtab/name_tree.h"

#include <catch2/catch.hpp>

#include "dtab/dentry.h"

using namespace switchyard::dtab;
using Tree = NameTree<Path>;

namespace {
Tree parse(const char* text) {
  auto t = parseNameTree(text);
  INFO(text);
  REQUIRE(t);
  return *t;
}
}  // namespace

TEST_CASE("NameTree show is canonical and round-trips", "[name_tree]") {
  struct Case {
    const char* in;
    const char* show;
  };
  const Case cases[] = {
      {"/a", "/a"},
      {"/a | /b | /c", "/a | /b | /c"},
      {"/a & /b | /c", "/a & /b | /c"},
      {"(/a | /b) | /c", "(/a | /b) | /c"},
      {"/a & (/b | /c)", "/a & (/b | /c)"},
      {"0.25 * /a & 0.75 * /b", "0.25*/a & 0.75*/b"},
      {"3 * /a & /b", "3.00*/a & /b"},
      {"((((/a))))", "/a"},
      {"7 * /a", "/a"},
      {"! | ~ | $", "! | ~ | $"},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    Tree t = parse(c.in);
    CHECK(show(t) == c.show);
    CHECK(parse(show(t).c_str()) == t);
  }
}

TEST_CASE("Union weights print like Java's %.2f (half-up)", "[name_tree]") {
  CHECK(formatWeight(0.125) == "0.13");
  CHECK(formatWeight(0.3) == "0.30");
  CHECK(formatWeight(2) == "2.00");
  CHECK(formatWeight(9.999) == "10.00");
  CHECK(formatWeight(0.994) == "0.99");
  CHECK(formatWeight(0.995) == "1.00");
  CHECK(formatWeight(0) == "0.00");
  CHECK(formatWeight(1e23) == "100000000000000000000000.00");
  CHECK(formatWeight(0.005) == "0.01");
  CHECK(formatWeight(1e-300) == "0.00");
  auto tiny = parseNameTree("0." + std::string(400, '0') + "1*/b & /c");
  REQUIRE(tiny);
  CHECK(show(*tiny) == "0.00*/b & /c");
}

TEST_CASE("NameTree simplify and eval follow Finagle", "[name_tree]") {
  struct Case {
    const char* in;
    const char* simplified;
    std::optional<std::set<Path>> eval;
  };
  const Case cases[] = {
      {"~ | /a", "/a", std::set<Path>{Path{"a"}}},
      {"! | /a", "!", std::nullopt},
      {"/a | ! | /b", "/a | !", std::set<Path>{Path{"a"}}},
      {"~ & ! & /a", "/a", std::set<Path>{Path{"a"}}},
      {"~ & !", "~", std::nullopt},
      {"$ | /a", "$ | /a", std::set<Path>{}},
      {"(/a | /b) & /c", "(/a | /b) & /c", std::set<Path>{Path{"a"}, Path{"c"}}},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    Tree t = parse(c.in);
    Tree s = t.simplified();
    CHECK(show(s) == c.simplified);
    CHECK(s.simplified() == s);  // idempotent
    CHECK(t.eval() == c.eval);
    CHECK(s.eval() == t.eval());
  }
}

TEST_CASE("NameTree map keeps the shape", "[name_tree]") {
  Tree t = parse("/a | 0.5*/b & 0.5*(/c | ~)");
  auto sizes = t.map([](const Path& p) { return p.show().size(); });
  using SizeTree = NameTree<std::size_t>;
  REQUIRE(sizes.kind() == SizeTree::Kind::Alt);
  CHECK(sizes.alts()[0].value() == 2);
  CHECK(sizes.alts()[1].weighted()[1].weight == 0.5);
  CHECK(sizes.alts()[1].weighted()[1].tree.alts()[1].isNeg());
}
