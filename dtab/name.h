#pragma once

// Names after delegation. A BoundName is a leaf a namer has claimed: its id
// (`/#/io.l5d.fs/hello`, `/$/inet/127.0.0.1/8080`) identifies the endpoint set;
// the residual is what remained of the path after the namer's part. A Name is
// either a path still to delegate or a bound name; namers answer with trees
// of Names, since some (like `/$/io.buoyant.hostportPfx`) rewrite the path.

#include <compare>
#include <string>
#include <variant>

#include "dtab/addr.h"
#include "dtab/path.h"

namespace switchyard::dtab {

struct BoundName {
  Path id;
  Path residual;
  Addr addr;  // a snapshot, for display; identity is (id, residual)

  friend bool operator==(const BoundName& a, const BoundName& b) {
    return a.id == b.id && a.residual == b.residual;
  }
  friend std::strong_ordering operator<=>(const BoundName& a, const BoundName& b) {
    if (auto c = a.id <=> b.id; c != 0) return c;
    return a.residual <=> b.residual;
  }
};

using Name = std::variant<Path, BoundName>;

}  // namespace switchyard::dtab
