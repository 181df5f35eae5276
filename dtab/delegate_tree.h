#pragma once

// DelegateTree: every step of a delegation, for people (Linkerd's dtab
// playground, `switchyard delegate`, the admin's /delegator.json). Unlike
// binding, which stops at the first usable alternative, the delegate tree
// expands every branch, and an error in one branch becomes an Exception node
// while the others are still shown.
//
// Each node carries the path it is about and the dentry that produced it
// (none at the root):
//   Delegate   the path was rewritten; children[0] is what it became
//   Alt/Union  several possibilities (Union: `weights`, one per child)
//   Leaf       a namer bound the path (`bound`)
//   Neg, Fail, Empty   the name trees' `~`, `!`, `$`
//   Exception  this branch failed (`message`)

#include <optional>
#include <string>
#include <vector>

#include "dtab/dentry.h"
#include "dtab/name.h"
#include "dtab/path.h"

namespace switchyard::dtab {

struct DelegateTree {
  enum class Kind { Delegate, Alt, Union, Leaf, Neg, Fail, Empty, Exception };

  Kind kind = Kind::Neg;
  Path path;                          // empty for the Neg of a `~` destination
  std::optional<Dentry> dentry;       // the entry that produced this node
  std::vector<DelegateTree> children; // Delegate: one; Alt, Union: several
  std::vector<double> weights;        // Union: one per child
  std::optional<BoundName> bound;     // Leaf
  std::string message;                // Exception
};

// "delegate", "alt", "union", "leaf", "neg", "fail", "empty", "exception"
const char* kindName(DelegateTree::Kind kind);

}  // namespace switchyard::dtab
