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
//   io.l5d.k8s.daemonset {namespace, service, port, hostNetwork}
//                                      each endpoint replaced by the router pod
//                                      on its node: the endpoints of the
//                                      DaemonSet's service, looked up through
//                                      the io.l5d.k8s namer, by nodeName

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dtab/addr.h"
#include "dtab/name.h"
#include "dtab/name_tree.h"
#include "dtab/path.h"

namespace switchyard::router {

// What a transformer may consult: the Addr of a bound name, through the
// process's namers as of this binding (a name not known yet is Pending and
// asked for, as in any delegation).
struct TransformContext {
  std::function<dtab::Addr(const dtab::Path&)> lookup;
};

class Transformer {
 public:
  virtual ~Transformer() = default;
  virtual const dtab::Path& prefix() const = 0;
  // Only Bound addrs are given; the result may be any Addr.
  virtual dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext& ctx) const = 0;
};

// Every leaf through each transformer in turn. Leaves that are not bound to
// addresses (pending, negative, failed) keep their Addr but get the prefix.
dtab::NameTree<dtab::BoundName> transform(const dtab::NameTree<dtab::BoundName>& tree,
                                          const std::vector<std::shared_ptr<const Transformer>>& transformers,
                                          const TransformContext& ctx);

std::shared_ptr<const Transformer> portTransformer(std::uint16_t port);
// `nodeName` empty: $NODE_NAME was not set; every endpoint is kept (logged).
std::shared_ptr<const Transformer> localNodeTransformer(std::string nodeName);
std::shared_ptr<const Transformer> localhostTransformer();
// `k8sPrefix`: where the io.l5d.k8s namer answers (/#/io.l5d.k8s).
std::shared_ptr<const Transformer> daemonSetTransformer(dtab::Path k8sPrefix, std::string ns, std::string port,
                                                        std::string service);

}  // namespace switchyard::router
