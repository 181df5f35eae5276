#include "router/leaf_picker.h"

#include <vector>

namespace switchyard::router {

namespace {

using Kind = BoundTree::Kind;

bool anyUsable(const BoundTree& tree, const LeafUsable& usable) {
  switch (tree.kind()) {
    case Kind::Leaf:
      return usable(tree.value());
    case Kind::Alt:
      for (const auto& t : tree.alts()) {
        if (anyUsable(t, usable)) return true;
      }
      return false;
    case Kind::Union:
      for (const auto& w : tree.weighted()) {
        if (anyUsable(w.tree, usable)) return true;
      }
      return false;
    default:
      return false;
  }
}

void collectLeaves(const BoundTree& tree, std::vector<const dtab::BoundName*>& out) {
  switch (tree.kind()) {
    case Kind::Leaf:
      out.push_back(&tree.value());
      return;
    case Kind::Alt:
      for (const auto& t : tree.alts()) collectLeaves(t, out);
      return;
    case Kind::Union:
      for (const auto& w : tree.weighted()) collectLeaves(w.tree, out);
      return;
    default:
      return;
  }
}

}  // namespace

const dtab::BoundName* pickLeaf(const BoundTree& tree, const LeafUsable& usable, std::mt19937_64& rng) {
  switch (tree.kind()) {
    case Kind::Leaf:
      return usable(tree.value()) ? &tree.value() : nullptr;
    case Kind::Alt:
      for (const auto& t : tree.alts()) {
        if (const auto* leaf = pickLeaf(t, usable, rng)) return leaf;
      }
      return nullptr;
    case Kind::Union: {
      // Only branches that can take the request share it.
      const BoundTree* candidates[64];
      double weights[64];
      std::size_t n = 0;
      double total = 0;
      const BoundTree* zeroWeight = nullptr;
      for (const auto& w : tree.weighted()) {
        if (!anyUsable(w.tree, usable)) continue;
        if (w.weight <= 0) {
          if (!zeroWeight) zeroWeight = &w.tree;
          continue;
        }
        if (n == 64) break;  // a union this wide is chosen among its first 64 usable branches
        candidates[n] = &w.tree;
        weights[n] = w.weight;
        total += w.weight;
        ++n;
      }
      if (n == 0) return zeroWeight ? pickLeaf(*zeroWeight, usable, rng) : nullptr;
      double x = std::uniform_real_distribution<double>(0, total)(rng);
      std::size_t i = 0;
      while (i + 1 < n && x >= weights[i]) {
        x -= weights[i];
        ++i;
      }
      return pickLeaf(*candidates[i], usable, rng);
    }
    default:
      return nullptr;
  }
}

std::string describeLeaves(const BoundTree& tree, const std::function<std::string(const dtab::BoundName&)>& why) {
  std::vector<const dtab::BoundName*> leaves;
  collectLeaves(tree, leaves);
  std::string out;
  for (const auto* leaf : leaves) {
    if (!out.empty()) out += ", ";
    out += leaf->id.show() + " (" + why(*leaf) + ")";
  }
  return out;
}

}  // namespace switchyard::router
