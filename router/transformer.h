#pragma once

// Transformers (Linkerd's `interpreter.transformers`): rewrite the addresses
// of every name a router binds, after delegation and before balancing. Each
// is immutable and pure, so workers share it; a transformed leaf's id gets
// the transformer's prefix (/%/io.l5d.port/4141/#/io.l5d.k8s/...), as in
// Linkerd, so its metrics and balancer are its own.
//
//   io.l5d.port {port}                 every endpoint at `port`
//   io.l5d.k8s.localnode {hostNetwork} only endpoints on this node: their
//                                      nodeName (from io.l5d.k8s) is $NODE_NAME
//   io.l5d.localhost                   only endpoints at one of this host's
//                                      addresses

#include <memory>
#include <string>
#include <vector>

#include "dtab/addr.h"
#include "dtab/name.h"
#include "dtab/name_tree.h"
#include "dtab/path.h"

namespace switchyard::router {

class Transformer {
 public:
  virtual ~Transformer() = default;
  virtual const dtab::Path& prefix() const = 0;
  virtual std::vector<dtab::Endpoint> apply(const std::vector<dtab::Endpoint>& endpoints) const = 0;
};

// Every leaf through each transformer in turn. Leaves that are not bound to
// addresses (pending, negative, failed) keep their Addr but get the prefix.
dtab::NameTree<dtab::BoundName> transform(const dtab::NameTree<dtab::BoundName>& tree,
                                          const std::vector<std::shared_ptr<const Transformer>>& transformers);

std::shared_ptr<const Transformer> portTransformer(std::uint16_t port);
// `nodeName` empty: $NODE_NAME was not set; every endpoint is kept (logged).
std::shared_ptr<const Transformer> localNodeTransformer(std::string nodeName);
std::shared_ptr<const Transformer> localhostTransformer();

}  // namespace switchyard::router
