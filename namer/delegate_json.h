#pragma once

// JSON shapes of Linkerd's delegator (admin /delegator.json, namerd's
// /api/1/delegate) for delegation results. The field names and node types
// are Linkerd's, so existing dashboards and scripts can read them.

#include <nlohmann/json_fwd.hpp>

#include "dtab/addr.h"
#include "dtab/delegate_tree.h"
#include "dtab/name.h"

namespace switchyard::namer {

// {"type": "bound", "addrs": [{"ip", "port", "meta"}], "meta": {}}; failed
// addrs carry "cause".
nlohmann::json addrToJson(const dtab::Addr& addr);

// {"addr": ..., "id": "/$/inet/127.0.0.1/8080", "path": "/residual"}
nlohmann::json boundToJson(const dtab::BoundName& bound);

// {"type": "delegate"|"alt"|..., "path", "dentry": {"prefix", "dst"}, ...}
nlohmann::json delegateTreeToJson(const dtab::DelegateTree& tree);

}  // namespace switchyard::namer
