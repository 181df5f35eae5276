#pragma once

// Chooses, for one request, the leaf of a bound name tree it goes to. This is
// where traffic shifting happens: a weighted union splits requests among its
// branches in proportion to their weights, per request, before any balancer
// sees them.
//
//   Leaf               itself, if `usable` says it can take requests
//   Alt  (a | b)       its first branch with a usable leaf
//   Union (w*a & v*b)  one branch with a usable leaf, at random in
//                      proportion to the weights; a branch without one
//                      drops out and the others share its traffic
//   Neg, Fail, Empty   nothing
//
// Weights are relative (they need not sum to 1); a branch of weight 0 takes
// requests only when no branch of positive weight can.

#include <functional>
#include <random>
#include <string>

#include "dtab/name.h"
#include "dtab/name_tree.h"

namespace switchyard::router {

using BoundTree = dtab::NameTree<dtab::BoundName>;
using LeafUsable = std::function<bool(const dtab::BoundName&)>;

// nullptr when no leaf is usable.
const dtab::BoundName* pickLeaf(const BoundTree& tree, const LeafUsable& usable, std::mt19937_64& rng);

// The leaves of `tree`, in order, each with what `why` says of it:
// "/#/io.l5d.fs/a (no endpoints), /#/io.l5d.fs/b (...)". For messages.
std::string describeLeaves(const BoundTree& tree, const std::function<std::string(const dtab::BoundName&)>& why);

}  // namespace switchyard::router
