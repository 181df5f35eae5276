#include "namer/delegate_json.h"

#include <nlohmann/json.hpp>

namespace switchyard::namer {

using dtab::DelegateTree;
using nlohmann::json;

json addrToJson(const dtab::Addr& addr) {
  json out = {{"type", dtab::kindName(addr.kind)}};
  if (addr.kind == dtab::Addr::Kind::Bound) {
    json addrs = json::array();
    for (const auto& e : addr.endpoints) {
      json meta = json::object();
      for (const auto& [k, v] : e.meta) meta[k] = v;
      addrs.push_back({{"ip", e.ip}, {"port", e.port}, {"meta", meta}});
    }
    out["addrs"] = std::move(addrs);
    out["meta"] = json::object();
  } else if (addr.kind == dtab::Addr::Kind::Failed) {
    out["cause"] = addr.error;
  }
  return out;
}

json boundToJson(const dtab::BoundName& bound) {
  return {{"addr", addrToJson(bound.addr)}, {"id", bound.id.show()}, {"path", bound.residual.show()}};
}

namespace {

// Linkerd prints the Neg of a `~` destination (which has no path) as "~", and
// a Fail as "!" unless it came from /$/fail.
std::string showNodePath(const DelegateTree& t) {
  if (t.kind == DelegateTree::Kind::Neg && t.path.empty()) return "~";
  if (t.kind == DelegateTree::Kind::Fail && !t.path.startsWith(dtab::Path{"$", "fail"})) return "!";
  return t.path.show();
}

}  // namespace

json delegateTreeToJson(const DelegateTree& t) {
  json out = {{"type", dtab::kindName(t.kind)}, {"path", showNodePath(t)}};
  if (t.dentry) out["dentry"] = {{"prefix", t.dentry->prefix().show()}, {"dst", dtab::show(t.dentry->dst())}};
  switch (t.kind) {
    case DelegateTree::Kind::Delegate:
      out["delegate"] = delegateTreeToJson(t.children.front());
      break;
    case DelegateTree::Kind::Alt: {
      json alts = json::array();
      for (const auto& c : t.children) alts.push_back(delegateTreeToJson(c));
      out["alt"] = std::move(alts);
      break;
    }
    case DelegateTree::Kind::Union: {
      json parts = json::array();
      for (std::size_t i = 0; i < t.children.size(); ++i) {
        parts.push_back({{"weight", t.weights[i]}, {"tree", delegateTreeToJson(t.children[i])}});
      }
      out["union"] = std::move(parts);
      break;
    }
    case DelegateTree::Kind::Leaf:
      out["bound"] = boundToJson(*t.bound);
      break;
    case DelegateTree::Kind::Exception:
      out["message"] = t.message;
      break;
    default:
      break;
  }
  return out;
}

}  // namespace switchyard::namer
