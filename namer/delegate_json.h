#pragma once

// JSON shapes of Linkerd's delegator (admin /delegator.json, namerd's
// /api/1/delegate) and of Namerd's HTTP API (/api/1/dtabs, bind, addr), both
// ways: the namer service writes them, the router's io.l5d.namerd.http
// interpreter reads them back. The field names and node types are Linkerd's,
// so existing dashboards, scripts and namerctl can read them.

#include <nlohmann/json_fwd.hpp>

#include "dtab/addr.h"
#include "dtab/delegate_tree.h"
#include "dtab/dtab.h"
#include "dtab/expected.h"
#include "dtab/name.h"
#include "dtab/name_tree.h"

#include <string>

namespace switchyard::namer {

// {"type": "bound", "addrs": [{"ip", "port", "meta"}], "meta": {}}; failed
// addrs carry "cause".
nlohmann::json addrToJson(const dtab::Addr& addr);

// {"addr": ..., "id": "/$/inet/127.0.0.1/8080", "path": "/residual"}
nlohmann::json boundToJson(const dtab::BoundName& bound);

// {"type": "delegate"|"alt"|..., "path", "dentry": {"prefix", "dst"}, ...}
nlohmann::json delegateTreeToJson(const dtab::DelegateTree& tree);

// {"type": "leaf", "bound": {...}}, {"type": "union", "trees": [{"weight",
// "tree"}]}, {"type": "alt", "trees": [...]}, {"type": "neg"|"fail"|"empty"}
nlohmann::json boundTreeToJson(const dtab::NameTree<dtab::BoundName>& tree);

// [{"prefix": "/svc", "dst": "/#/io.l5d.fs"}]
nlohmann::json dtabToJson(const dtab::Dtab& dtab);

// The readers: a shape that is not what the writers above produce is an
// error that says where.
Expected<dtab::Dtab, std::string> dtabFromJson(const nlohmann::json& j);
Expected<dtab::Addr, std::string> addrFromJson(const nlohmann::json& j);
Expected<dtab::NameTree<dtab::BoundName>, std::string> boundTreeFromJson(const nlohmann::json& j);

}  // namespace switchyard::namer
