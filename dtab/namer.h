#pragma once

// Namer: claims the paths under one prefix. When the dtab has no rewrite for a
// path (its lookup is Neg), delegation asks each namer whose prefix starts the
// path, in order, with the rest of the path (the residual). A namer answers
// with a tree of Names: bound leaves, or paths to delegate further; Neg means
// "not mine" and the next namer is asked. An error is a message for a person.
//
// Namers here are synchronous and pure; the running router's namers (namer/)
// watch the world and adapt to this interface for delegation.

#include <memory>
#include <string>
#include <vector>

#include "dtab/expected.h"
#include "dtab/name.h"
#include "dtab/name_tree.h"
#include "dtab/path.h"

namespace switchyard::dtab {

using NamerResult = Expected<NameTree<Name>, std::string>;

class Namer {
 public:
  virtual ~Namer() = default;
  // `path` is the looked-up path with the namer's prefix removed.
  virtual NamerResult lookup(const Path& residual) const = 0;
};

struct NamerEntry {
  Path prefix;  // e.g. /#/io.l5d.fs or /$/inet
  std::shared_ptr<const Namer> namer;
};

}  // namespace switchyard::dtab
