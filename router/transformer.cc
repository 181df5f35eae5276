#include "router/transformer.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <algorithm>
#include <cstdio>
#include <set>

namespace switchyard::router {

dtab::NameTree<dtab::BoundName> transform(const dtab::NameTree<dtab::BoundName>& tree,
                                          const std::vector<std::shared_ptr<const Transformer>>& transformers) {
  if (transformers.empty()) return tree;
  return tree.map([&](const dtab::BoundName& leaf) {
    dtab::BoundName out = leaf;
    for (const auto& t : transformers) {
      out.id = t->prefix() + out.id;
      if (out.addr.kind == dtab::Addr::Kind::Bound) out.addr.endpoints = t->apply(out.addr.endpoints);
    }
    return out;
  });
}

namespace {

class PortTransformer final : public Transformer {
 public:
  explicit PortTransformer(std::uint16_t port) : port_(port), prefix_{"%", "io.l5d.port", std::to_string(port)} {}
  const dtab::Path& prefix() const override { return prefix_; }
  std::vector<dtab::Endpoint> apply(const std::vector<dtab::Endpoint>& endpoints) const override {
    std::vector<dtab::Endpoint> out;
    for (auto e : endpoints) {
      e.port = port_;
      if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(std::move(e));
    }
    return out;
  }

 private:
  std::uint16_t port_;
  dtab::Path prefix_;
};

class LocalNodeTransformer final : public Transformer {
 public:
  explicit LocalNodeTransformer(std::string node) : node_(std::move(node)), prefix_{"%", "io.l5d.k8s.localnode"} {}
  const dtab::Path& prefix() const override { return prefix_; }
  std::vector<dtab::Endpoint> apply(const std::vector<dtab::Endpoint>& endpoints) const override {
    if (node_.empty()) return endpoints;
    std::vector<dtab::Endpoint> out;
    for (const auto& e : endpoints) {
      auto it = e.meta.find("nodeName");
      if (it != e.meta.end() && it->second == node_) out.push_back(e);
    }
    return out;
  }

 private:
  std::string node_;
  dtab::Path prefix_;
};

class LocalhostTransformer final : public Transformer {
 public:
  LocalhostTransformer() : prefix_{"%", "io.l5d.localhost"} {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      char buf[INET6_ADDRSTRLEN] = {};
      if (i->ifa_addr->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf, sizeof buf);
      } else {
        continue;
      }
      local_.insert(buf);
    }
    freeifaddrs(list);
  }
  const dtab::Path& prefix() const override { return prefix_; }
  std::vector<dtab::Endpoint> apply(const std::vector<dtab::Endpoint>& endpoints) const override {
    std::vector<dtab::Endpoint> out;
    for (const auto& e : endpoints) {
      // 127.0.0.0/8 is all this host's, whichever address the interface lists.
      if (local_.count(e.ip) || e.ip.rfind("127.", 0) == 0) out.push_back(e);
    }
    return out;
  }

 private:
  dtab::Path prefix_;
  std::set<std::string> local_;
};

}  // namespace

std::shared_ptr<const Transformer> portTransformer(std::uint16_t port) {
  return std::make_shared<PortTransformer>(port);
}

std::shared_ptr<const Transformer> localNodeTransformer(std::string nodeName) {
  if (nodeName.empty()) {
    std::fprintf(stderr,
                 "switchyard: warning: io.l5d.k8s.localnode: NODE_NAME is not set (give it from the downward API, "
                 "spec.nodeName); keeping every endpoint\n");
  }
  return std::make_shared<LocalNodeTransformer>(std::move(nodeName));
}

std::shared_ptr<const Transformer> localhostTransformer() { return std::make_shared<LocalhostTransformer>(); }

}  // namespace switchyard::router
