#include "router/leaf_picker.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>

namespace switchyard::router {
namespace {

using dtab::BoundName;
using dtab::Path;

BoundTree leaf(const std::string& name) {
  return BoundTree::leaf(BoundName{*Path::parse("/#/" + name), Path{}, dtab::Addr::bound({})});
}

BoundTree weighted(std::vector<std::pair<double, BoundTree>> branches) {
  std::vector<BoundTree::Weighted> w;
  for (auto& [weight, tree] : branches) w.push_back({weight, tree});
  return BoundTree::unionOf(std::move(w));
}

// How often each leaf is chosen in n picks with `usable`.
std::map<std::string, int> tally(const BoundTree& tree, const std::set<std::string>& unusable, int n = 20000) {
  std::mt19937_64 rng(42);
  std::map<std::string, int> counts;
  LeafUsable usable = [&](const BoundName& b) { return !unusable.count(b.id.show()); };
  for (int i = 0; i < n; ++i) {
    const BoundName* b = pickLeaf(tree, usable, rng);
    counts[b ? b->id.show() : "none"]++;
  }
  return counts;
}

TEST_CASE("a union splits by relative weight") {
  auto counts = tally(weighted({{9, leaf("a")}, {1, leaf("b")}}), {});
  CHECK(counts["/#/a"] + counts["/#/b"] == 20000);
  CHECK(counts["/#/b"] > 1800);
  CHECK(counts["/#/b"] < 2200);
}

TEST_CASE("a branch that cannot take requests drops out of the union") {
  auto tree = weighted({{0.5, leaf("a")}, {0.3, leaf("b")}, {0.2, leaf("c")}});
  auto counts = tally(tree, {"/#/a"});
  CHECK(counts.count("/#/a") == 0);
  CHECK(counts["/#/b"] + counts["/#/c"] == 20000);
  CHECK(counts["/#/b"] > 11000);  // 0.3 / 0.5 of the traffic: 12000
  CHECK(counts["/#/b"] < 13000);
  CHECK(tally(tree, {"/#/a", "/#/b", "/#/c"}) == std::map<std::string, int>{{"none", 20000}});
}

TEST_CASE("nested unions and alternatives compose") {
  auto tree = BoundTree::alt({weighted({{1, leaf("x")}, {1, leaf("y")}}), leaf("z")});
  auto counts = tally(tree, {});
  CHECK(counts.count("/#/z") == 0);
  CHECK(counts["/#/x"] > 9000);
  CHECK(counts["/#/y"] > 9000);
  CHECK(tally(tree, {"/#/x"}) == std::map<std::string, int>{{"/#/y", 20000}});
  CHECK(tally(tree, {"/#/x", "/#/y"}) == std::map<std::string, int>{{"/#/z", 20000}});
}

TEST_CASE("weight zero is chosen only when nothing else can be") {
  auto tree = weighted({{0, leaf("a")}, {1, leaf("b")}});
  CHECK(tally(tree, {}) == std::map<std::string, int>{{"/#/b", 20000}});
  CHECK(tally(tree, {"/#/b"}) == std::map<std::string, int>{{"/#/a", 20000}});
}

TEST_CASE("negative, failed and empty trees have no leaf") {
  std::mt19937_64 rng(1);
  LeafUsable any = [](const BoundName&) { return true; };
  CHECK(pickLeaf(BoundTree::neg(), any, rng) == nullptr);
  CHECK(pickLeaf(BoundTree::fail(), any, rng) == nullptr);
  CHECK(pickLeaf(BoundTree::empty(), any, rng) == nullptr);
  CHECK(pickLeaf(weighted({{1, BoundTree::neg()}, {1, leaf("a")}}), any, rng)->id.show() == "/#/a");
}

TEST_CASE("describeLeaves names every leaf in order") {
  auto tree = BoundTree::alt({weighted({{1, leaf("x")}, {1, leaf("y")}}), leaf("z")});
  CHECK(describeLeaves(tree, [](const BoundName&) { return std::string("no endpoints"); }) ==
        "/#/x (no endpoints), /#/y (no endpoints), /#/z (no endpoints)");
}

}  // namespace
}  // namespace switchyard::router
