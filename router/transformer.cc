#include "router/transformer.h"

#include "dtab/delegator.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>

#include <algorithm>
#include <map>
#include <cstdio>
#include <set>

namespace switchyard::router {

namespace {

// An IPv4 or IPv6 socket address's numeric text; nullopt for other families.
std::optional<std::string> addressText(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (!addr) return std::nullopt;
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
  } else {
    return std::nullopt;
  }
  return std::string(buf);
}

// One leaf through one transformer.
dtab::BoundName transformLeaf(const dtab::BoundName& leaf, const Transformer& t, const TransformContext& ctx) {
  dtab::BoundName next = leaf;
  next.id = t.rename(leaf.id);
  if (next.addr.kind == dtab::Addr::Kind::Bound) next.addr = t.apply(next.addr.endpoints, ctx);
  return next;
}

}  // namespace

TransformContext namersContext(std::shared_ptr<const std::vector<dtab::NamerEntry>> namers) {
  return TransformContext{[namers = std::move(namers)](const dtab::Path& path) {
    dtab::Delegator d(dtab::Dtab{}, *namers);
    auto bound = d.bind(path);
    if (!bound) return dtab::Addr::failed(bound.error().message);
    if (bound->isLeaf()) return bound->value().addr;
    return bound->isNeg() ? dtab::Addr::neg() : dtab::Addr::failed("not a single name");
  }};
}

dtab::NameTree<dtab::BoundName> transform(const dtab::NameTree<dtab::BoundName>& tree,
                                          const std::vector<std::shared_ptr<const Transformer>>& transformers,
                                          const TransformContext& ctx) {
  if (transformers.empty()) return tree;
  dtab::NameTree<dtab::BoundName> out = tree;
  for (const auto& t : transformers) {
    if (auto whole = t->replacement(ctx)) {
      out = dtab::NameTree<dtab::BoundName>::leaf(std::move(*whole));
      continue;
    }
    out = out.map([&](const dtab::BoundName& leaf) { return transformLeaf(leaf, *t, ctx); });
  }
  return out;
}

namespace {

// A namer's snapshot with its bound leaves transformed; the context is the
// one its host made when the snapshot was.
class TransformedNamer final : public dtab::Namer {
 public:
  TransformedNamer(std::shared_ptr<const dtab::Namer> inner, std::shared_ptr<const Transformers> transformers,
                   TransformContext ctx)
      : inner_(std::move(inner)), transformers_(transformers), ctx_(std::move(ctx)) {}

  dtab::NamerResult lookup(const dtab::Path& residual) const override {
    auto r = inner_->lookup(residual);
    if (!r) return r;
    return r->map([&](const dtab::Name& name) -> dtab::Name {
      const auto* bound = std::get_if<dtab::BoundName>(&name);
      if (!bound) return name;
      dtab::BoundName out = *bound;
      for (const auto& t : *transformers_) {
        if (auto whole = t->replacement(ctx_)) {
          out = std::move(*whole);
        } else {
          out = transformLeaf(out, *t, ctx_);
        }
      }
      return out;
    });
  }

 private:
  std::shared_ptr<const dtab::Namer> inner_;
  std::shared_ptr<const Transformers> transformers_;
  TransformContext ctx_;
};

class TransformingHost final : public namer::NamerHost {
 public:
  TransformingHost(std::unique_ptr<namer::NamerHost> inner, std::shared_ptr<const Transformers> transformers,
                   std::function<std::vector<dtab::NamerEntry>()> baseNamers)
      : inner_(std::move(inner)), transformers_(std::move(transformers)), baseNamers_(std::move(baseNamers)) {}
  void start(runtime::Loop& loop, std::function<void()> onChange) override { inner_->start(loop, std::move(onChange)); }
  std::vector<namer::NamerStat> stats() const override { return inner_->stats(); }
  std::shared_ptr<const dtab::Namer> current() const override {
    auto namers = std::make_shared<const std::vector<dtab::NamerEntry>>(baseNamers_());
    return std::make_shared<TransformedNamer>(inner_->current(), transformers_, namersContext(std::move(namers)));
  }

 private:
  std::unique_ptr<namer::NamerHost> inner_;
  std::shared_ptr<const Transformers> transformers_;
  std::function<std::vector<dtab::NamerEntry>()> baseNamers_;
};

}  // namespace

std::unique_ptr<namer::NamerHost> transformingNamer(std::unique_ptr<namer::NamerHost> inner, Transformers transformers,
                                                   std::function<std::vector<dtab::NamerEntry>()> baseNamers) {
  if (transformers.empty()) return inner;
  return std::make_unique<TransformingHost>(std::move(inner),
                                            std::make_shared<const Transformers>(std::move(transformers)),
                                            std::move(baseNamers));
}

namespace {

class PortTransformer final : public Transformer {
 public:
  explicit PortTransformer(std::uint16_t port) : port_(port), prefix_{"%", "io.l5d.port", std::to_string(port)} {}
  const dtab::Path& prefix() const override { return prefix_; }
  dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext&) const override {
    std::vector<dtab::Endpoint> out;
    for (auto e : endpoints) {
      e.port = port_;
      if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(std::move(e));
    }
    return dtab::Addr::bound(std::move(out));
  }

 private:
  std::uint16_t port_;
  dtab::Path prefix_;
};

// The /24 an IPv4 address is in (host order), or nullopt.
std::optional<std::uint32_t> subnet24(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr) & 0xffffff00u;
}

class LocalNodeTransformer final : public Transformer {
 public:
  LocalNodeTransformer(std::string node, std::optional<std::uint32_t> subnet)
      : node_(std::move(node)), subnet_(subnet), prefix_{"%", "io.l5d.k8s.localnode"} {}
  const dtab::Path& prefix() const override { return prefix_; }
  dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext&) const override {
    if (node_.empty() && !subnet_) return dtab::Addr::bound(endpoints);
    std::vector<dtab::Endpoint> out;
    for (const auto& e : endpoints) {
      if (!node_.empty()) {
        auto it = e.meta.find("nodeName");
        if (it != e.meta.end() && it->second == node_) out.push_back(e);
      } else if (subnet24(e.ip) == subnet_) {
        out.push_back(e);
      }
    }
    return dtab::Addr::bound(std::move(out));
  }

 private:
  std::string node_;
  std::optional<std::uint32_t> subnet_;  // without a node name: Linkerd's POD_IP/24
  dtab::Path prefix_;
};

class LocalhostTransformer final : public Transformer {
 public:
  LocalhostTransformer() : prefix_{"%", "io.l5d.localhost"} {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (auto ip = addressText(i->ifa_addr)) local_.insert(*ip);
    }
    freeifaddrs(list);
  }
  const dtab::Path& prefix() const override { return prefix_; }
  dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext&) const override {
    std::vector<dtab::Endpoint> out;
    for (const auto& e : endpoints) {
      // 127.0.0.0/8 is all this host's, whichever address the interface lists.
      if (local_.count(e.ip) || e.ip.rfind("127.", 0) == 0) out.push_back(e);
    }
    return dtab::Addr::bound(std::move(out));
  }

 private:
  dtab::Path prefix_;
  std::set<std::string> local_;
};

class SpecificHostTransformer final : public Transformer {
 public:
  explicit SpecificHostTransformer(std::string host) : prefix_{"%", "io.l5d.specificHost", host} {
    auto found = hostAddresses(host);
    if (found) {
      addresses_.insert(found->begin(), found->end());
    } else {
      error_ = "io.l5d.specificHost: " + found.error();
      std::fprintf(stderr, "switchyard: warning: %s; the names it transforms will fail\n", error_.c_str());
    }
  }
  const dtab::Path& prefix() const override { return prefix_; }
  dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext&) const override {
    if (!error_.empty()) return dtab::Addr::failed(error_);
    std::vector<dtab::Endpoint> out;
    for (const auto& e : endpoints) {
      if (addresses_.count(e.ip)) out.push_back(e);
    }
    return dtab::Addr::bound(std::move(out));
  }

 private:
  dtab::Path prefix_;
  std::set<std::string> addresses_;
  std::string error_;  // the host did not resolve
};

// Linkerd's io.l5d.replace: the addresses stay, the name is the configured
// one, so every bound name shares one client (and its metrics).
class ReplaceTransformer final : public Transformer {
 public:
  explicit ReplaceTransformer(dtab::Path path) : path_(std::move(path)) {}
  const dtab::Path& prefix() const override { return path_; }
  dtab::Path rename(const dtab::Path&) const override { return path_; }
  dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext&) const override {
    return dtab::Addr::bound(endpoints);
  }

 private:
  dtab::Path path_;
};

// Linkerd's io.l5d.const: whatever was bound, requests go to `path`.
class ConstTransformer final : public Transformer {
 public:
  explicit ConstTransformer(dtab::Path path) : path_(std::move(path)) {}
  const dtab::Path& prefix() const override { return path_; }
  dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext&) const override {
    return dtab::Addr::bound(endpoints);
  }
  std::optional<dtab::BoundName> replacement(const TransformContext& ctx) const override {
    dtab::Addr addr = ctx.lookup ? ctx.lookup(path_) : dtab::Addr::failed("no namers to bind " + path_.show());
    return dtab::BoundName{path_, {}, std::move(addr)};
  }

 private:
  dtab::Path path_;
};

class DaemonSetTransformer final : public Transformer {
 public:
  DaemonSetTransformer(dtab::Path k8sPrefix, std::string ns, std::string port, std::string service)
      : routers_(k8sPrefix + dtab::Path{ns, port, service}),
        prefix_{"%", "io.l5d.k8s.daemonset", ns, port, service},
        where_(ns + "/" + service + ":" + port) {}
  const dtab::Path& prefix() const override { return prefix_; }
  dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext& ctx) const override {
    dtab::Addr routers = ctx.lookup ? ctx.lookup(routers_) : dtab::Addr::failed("no namers to look routers up");
    if (routers.kind == dtab::Addr::Kind::Pending) return routers;
    if (routers.kind != dtab::Addr::Kind::Bound) {
      return dtab::Addr::failed("io.l5d.k8s.daemonset: the routers' service " + where_ + " has no endpoints" +
                                (routers.error.empty() ? std::string() : ": " + routers.error));
    }
    std::map<std::string, dtab::Endpoint> byNode;
    for (const auto& r : routers.endpoints) {
      auto it = r.meta.find("nodeName");
      if (it != r.meta.end()) byNode.emplace(it->second, r);
    }
    // Each endpoint goes to the router on its node; endpoints on a node
    // without a router (or without a node) are left out.
    std::vector<dtab::Endpoint> out;
    for (const auto& e : endpoints) {
      auto node = e.meta.find("nodeName");
      if (node == e.meta.end()) continue;
      auto r = byNode.find(node->second);
      if (r == byNode.end()) continue;
      if (std::find(out.begin(), out.end(), r->second) == out.end()) out.push_back(r->second);
    }
    return dtab::Addr::bound(std::move(out));
  }

 private:
  dtab::Path routers_;
  dtab::Path prefix_;
  std::string where_;
};

}  // namespace

std::shared_ptr<const Transformer> daemonSetTransformer(dtab::Path k8sPrefix, std::string ns, std::string port,
                                                        std::string service) {
  return std::make_shared<DaemonSetTransformer>(std::move(k8sPrefix), std::move(ns), std::move(port),
                                                std::move(service));
}

std::shared_ptr<const Transformer> portTransformer(std::uint16_t port) {
  return std::make_shared<PortTransformer>(port);
}

std::shared_ptr<const Transformer> localNodeTransformer(std::string nodeName, std::string podIp) {
  std::optional<std::uint32_t> subnet;
  if (nodeName.empty() && !podIp.empty()) {
    subnet = subnet24(podIp);
    if (subnet) {
      std::fprintf(stderr,
                   "switchyard: io.l5d.k8s.localnode: NODE_NAME is not set; keeping the endpoints in POD_IP's /24 "
                   "(%s), as Linkerd did (set NODE_NAME from spec.nodeName to match by node)\n",
                   podIp.c_str());
      return std::make_shared<LocalNodeTransformer>(std::move(nodeName), subnet);
    }
  }
  if (nodeName.empty()) {
    std::fprintf(stderr,
                 "switchyard: warning: io.l5d.k8s.localnode: NODE_NAME is not set (give it from the downward API, "
                 "spec.nodeName)%s; keeping every endpoint\n",
                 podIp.empty() ? "" : ", and POD_IP is not an IPv4 address");
  }
  return std::make_shared<LocalNodeTransformer>(std::move(nodeName), std::nullopt);
}

std::shared_ptr<const Transformer> localhostTransformer() { return std::make_shared<LocalhostTransformer>(); }

Expected<std::vector<std::string>, std::string> hostAddresses(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (rc != 0) return Unexpected("cannot resolve \"" + host + "\": " + gai_strerror(rc));
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (addrinfo* i = list; i; i = i->ai_next) {
    auto ip = addressText(i->ai_addr);
    if (ip && seen.insert(*ip).second) out.push_back(*ip);
  }
  freeaddrinfo(list);
  if (out.empty()) return Unexpected("\"" + host + "\" has no IPv4 or IPv6 address");
  return out;
}

std::shared_ptr<const Transformer> specificHostTransformer(std::string host) {
  return std::make_shared<SpecificHostTransformer>(std::move(host));
}

std::shared_ptr<const Transformer> replaceTransformer(dtab::Path path) {
  return std::make_shared<ReplaceTransformer>(std::move(path));
}

std::shared_ptr<const Transformer> constTransformer(dtab::Path path) {
  return std::make_shared<ConstTransformer>(std::move(path));
}

}  // namespace switchyard::router
