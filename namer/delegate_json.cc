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
      // Finagle's name for an endpoint's weight (dnssrv weights, shifted hosts).
      if (e.weight != 1.0) meta["endpoint_addr_weight"] = e.weight;
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

json boundTreeToJson(const dtab::NameTree<dtab::BoundName>& tree) {
  using Kind = dtab::NameTree<dtab::BoundName>::Kind;
  switch (tree.kind()) {
    case Kind::Leaf:
      return {{"type", "leaf"}, {"bound", boundToJson(tree.value())}};
    case Kind::Alt: {
      json trees = json::array();
      for (const auto& t : tree.alts()) trees.push_back(boundTreeToJson(t));
      return {{"type", "alt"}, {"trees", std::move(trees)}};
    }
    case Kind::Union: {
      json trees = json::array();
      for (const auto& w : tree.weighted()) trees.push_back({{"weight", w.weight}, {"tree", boundTreeToJson(w.tree)}});
      return {{"type", "union"}, {"trees", std::move(trees)}};
    }
    case Kind::Neg:
      return {{"type", "neg"}};
    case Kind::Fail:
      return {{"type", "fail"}};
    case Kind::Empty:
      return {{"type", "empty"}};
  }
  return nullptr;
}

json dtabToJson(const dtab::Dtab& d) {
  json out = json::array();
  for (const auto& e : d.entries()) out.push_back({{"prefix", e.prefix().show()}, {"dst", dtab::show(e.dst())}});
  return out;
}

namespace {

Expected<std::string, std::string> stringField(const json& j, const char* key, const std::string& at) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) {
    return Unexpected(at + ": expected a string \"" + key + "\"");
  }
  return j[key].get<std::string>();
}

Expected<dtab::NameTree<dtab::BoundName>, std::string> boundTreeAt(const json& j, const std::string& at, int depth) {
  using Tree = dtab::NameTree<dtab::BoundName>;
  if (depth > 100) return Unexpected(at + ": nested too deeply");
  auto type = stringField(j, "type", at);
  if (!type) return Unexpected(type.error());
  if (*type == "neg") return Tree::neg();
  if (*type == "fail") return Tree::fail();
  if (*type == "empty") return Tree::empty();
  if (*type == "leaf") {
    if (!j.contains("bound") || !j["bound"].is_object()) return Unexpected(at + ": a leaf needs \"bound\"");
    const json& b = j["bound"];
    auto id = stringField(b, "id", at + ".bound");
    if (!id) return Unexpected(id.error());
    auto idPath = dtab::Path::parse(*id);
    if (!idPath) return Unexpected(at + ".bound.id: " + idPath.error().message());
    dtab::BoundName name;
    name.id = std::move(*idPath);
    if (b.contains("path")) {
      auto residual = stringField(b, "path", at + ".bound");
      if (!residual) return Unexpected(residual.error());
      auto r = dtab::Path::parse(*residual);
      if (!r) return Unexpected(at + ".bound.path: " + r.error().message());
      name.residual = std::move(*r);
    }
    if (b.contains("addr")) {
      auto addr = addrFromJson(b["addr"]);
      if (!addr) return Unexpected(at + ".bound.addr: " + addr.error());
      name.addr = std::move(*addr);
    }
    return Tree::leaf(std::move(name));
  }
  if (*type == "alt" || *type == "union") {
    if (!j.contains("trees") || !j["trees"].is_array()) return Unexpected(at + ": expected an array \"trees\"");
    std::vector<Tree> alts;
    std::vector<Tree::Weighted> parts;
    std::size_t i = 0;
    for (const auto& item : j["trees"]) {
      std::string here = at + ".trees[" + std::to_string(i++) + "]";
      if (*type == "alt") {
        auto t = boundTreeAt(item, here, depth + 1);
        if (!t) return Unexpected(t.error());
        alts.push_back(std::move(*t));
        continue;
      }
      if (!item.is_object() || !item.contains("weight") || !item["weight"].is_number() || !item.contains("tree")) {
        return Unexpected(here + ": expected {\"weight\": number, \"tree\": ...}");
      }
      auto t = boundTreeAt(item["tree"], here + ".tree", depth + 1);
      if (!t) return Unexpected(t.error());
      parts.push_back({item["weight"].get<double>(), std::move(*t)});
    }
    return *type == "alt" ? Tree::alt(std::move(alts)) : Tree::unionOf(std::move(parts));
  }
  return Unexpected(at + ": unknown tree type \"" + *type + "\"");
}

}  // namespace

Expected<dtab::Dtab, std::string> dtabFromJson(const json& j) {
  if (!j.is_array()) return Unexpected(std::string("expected a JSON array of {\"prefix\", \"dst\"} entries"));
  std::string text;
  std::size_t i = 0;
  for (const auto& e : j) {
    std::string at = "[" + std::to_string(i++) + "]";
    auto prefix = stringField(e, "prefix", at);
    if (!prefix) return Unexpected(prefix.error());
    auto dst = stringField(e, "dst", at);
    if (!dst) return Unexpected(dst.error());
    auto d = dtab::Dentry::parse(*prefix + " => " + *dst);
    if (!d) return Unexpected(at + ": " + d.error().message());
    text += d->show() + ";";
  }
  auto parsed = dtab::Dtab::parse(text);
  if (!parsed) return Unexpected(parsed.error().message());
  return std::move(*parsed);
}

Expected<dtab::Addr, std::string> addrFromJson(const json& j) {
  auto type = stringField(j, "type", "addr");
  if (!type) return Unexpected(type.error());
  if (*type == "pending") return dtab::Addr::pending();
  if (*type == "neg") return dtab::Addr::neg();
  if (*type == "failed") {
    return dtab::Addr::failed(j.contains("cause") && j["cause"].is_string() ? j["cause"].get<std::string>()
                                                                             : std::string("failed"));
  }
  if (*type != "bound") return Unexpected("unknown addr type \"" + *type + "\"");
  if (!j.contains("addrs") || !j["addrs"].is_array()) return Unexpected(std::string("a bound addr needs \"addrs\""));
  std::vector<dtab::Endpoint> endpoints;
  for (const auto& a : j["addrs"]) {
    if (!a.is_object() || !a.contains("ip") || !a["ip"].is_string() || !a.contains("port") ||
        !a["port"].is_number_unsigned() || a["port"].get<std::uint64_t>() > 65535) {
      return Unexpected(std::string("each of \"addrs\" needs a string \"ip\" and a port 0-65535"));
    }
    dtab::Endpoint e;
    e.ip = a["ip"].get<std::string>();
    e.port = static_cast<std::uint16_t>(a["port"].get<std::uint64_t>());
    if (a.contains("meta") && a["meta"].is_object()) {
      for (const auto& [k, v] : a["meta"].items()) {
        if (v.is_string()) {
          e.meta[k] = v.get<std::string>();
        } else if (k == "endpoint_addr_weight" && v.is_number()) {
          e.weight = v.get<double>();
        } else {
          e.meta[k] = v.dump();
        }
      }
    }
    endpoints.push_back(std::move(e));
  }
  return dtab::Addr::bound(std::move(endpoints));
}

Expected<dtab::NameTree<dtab::BoundName>, std::string> boundTreeFromJson(const json& j) {
  return boundTreeAt(j, "tree", 0);
}

}  // namespace switchyard::namer
