#pragma once

// Delegation: turning a logical name into bound names through a dtab and a
// list of namers, with Finagle's semantics (docs/ARCHITECTURE.md, "Binding"):
//  - the dtab rewrites the path (later entries first, earlier as fallback);
//  - a path the dtab does not rewrite goes to the namers (configured ones in
//    order, then the system namers under /$/);
//  - Alt takes the first branch that is not Neg (Fail and Empty stop it);
//    Union keeps every branch that binds, with its weight;
//  - more than `maxDepth` rewrites along one chain is an error, so a loop in
//    the dtab ends with a clear message instead of a hang.
// A Delegator is an immutable value, safe to share between threads.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "dtab/delegate_tree.h"
#include "dtab/dtab.h"
#include "dtab/expected.h"
#include "dtab/name.h"
#include "dtab/name_tree.h"
#include "dtab/namer.h"
#include "dtab/path.h"

namespace switchyard::dtab {

struct DelegateError {
  enum class Kind {
    MaxDepth,      // too many rewrites along one chain (a loop, usually)
    UnknownNamer,  // /$/<name> with no such system namer
    NamerError,    // a namer failed to look a path up
    TooLarge,      // the delegation grew past its work budget
  };
  Kind kind;
  std::string message;  // for a person: what failed, on which path
};

// "max_depth", "unknown_namer", "namer_error", "too_large"
const char* kindName(DelegateError::Kind kind);

struct DelegateOptions {
  // Path lookups allowed along one chain of rewrites (Finagle's namerMaxDepth).
  int maxDepth = 100;
  // Path lookups allowed in one whole delegation. Unions can double the work
  // at every step (`/a => /b & /b; /b => /c & /c; ...`); this bounds it.
  std::size_t maxLookups = 10'000;
};

class Delegator {
 public:
  // `namers` are tried in order, before the system namers.
  explicit Delegator(Dtab dtab, std::vector<NamerEntry> namers = {}, DelegateOptions options = {});

  const Dtab& dtab() const { return dtab_; }

  // The bound tree for `path`: simplified, without Alt nodes.
  Expected<NameTree<BoundName>, DelegateError> bind(const Path& path) const;

  // Every step of delegating `path`, every branch expanded.
  DelegateTree delegate(const Path& path) const;

 private:
  class Binder;
  class Recorder;

  // Asks the namers about a path the dtab does not rewrite.
  Expected<NameTree<Name>, DelegateError> lookupNamers(const Path& path) const;

  Dtab dtab_;
  std::vector<NamerEntry> namers_;  // configured, then system
  DelegateOptions options_;
};

// Prints a bound tree the way the conformance corpus does: leaves as their id.
std::string show(const NameTree<BoundName>& tree);

}  // namespace switchyard::dtab
