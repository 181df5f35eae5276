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
//   io.l5d.specificHost {host}         only endpoints at one of that host's
//                                      addresses (a name is resolved at start)
//   io.l5d.replace {path}              every leaf's id becomes `path`, its
//                                      addresses kept (one client for all)
//   io.l5d.const {path}                the whole tree becomes `path`, bound
//                                      through the namers (/$/inet/...)

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dtab/addr.h"
#include "dtab/expected.h"
#include "dtab/name.h"
#include "dtab/name_tree.h"
#include "dtab/namer.h"
#include "dtab/path.h"
#include "namer/namer_host.h"

namespace switchyard::router {

// What a transformer may consult: the Addr of a bound name, through the
// process's namers as of this binding (a name not known yet is Pending and
// asked for, as in any delegation).
struct TransformContext {
  std::function<dtab::Addr(const dtab::Path&)> lookup;
};

// Lookups through these namers alone (no dtab), as a worker's naming state
// has them.
TransformContext namersContext(std::shared_ptr<const std::vector<dtab::NamerEntry>> namers);

class Transformer {
 public:
  virtual ~Transformer() = default;
  virtual const dtab::Path& prefix() const = 0;
  // Only Bound addrs are given; the result may be any Addr.
  virtual dtab::Addr apply(const std::vector<dtab::Endpoint>& endpoints, const TransformContext& ctx) const = 0;
  // A transformed leaf's id: the prefix before the old one, unless the
  // transformer names leaves itself (io.l5d.replace).
  virtual dtab::Path rename(const dtab::Path& id) const { return prefix() + id; }
  // One name in place of the whole tree, for a transformer that ignores
  // what was bound (io.l5d.const); nullopt for the rest.
  virtual std::optional<dtab::BoundName> replacement(const TransformContext&) const { return std::nullopt; }
};

// The tree through each transformer in turn, every leaf renamed and its
// addresses rewritten. Leaves that are not bound to addresses (pending,
// negative, failed) keep their Addr but are renamed.
dtab::NameTree<dtab::BoundName> transform(const dtab::NameTree<dtab::BoundName>& tree,
                                          const std::vector<std::shared_ptr<const Transformer>>& transformers,
                                          const TransformContext& ctx);

// Linkerd's `namers[].transformers`: a namer whose every bound name goes
// through `transformers`, as the interpreter's do, before any dtab sees it.
// Their lookups (io.l5d.k8s.daemonset's) go through `baseNamers`: every
// namer of the process as it is before its own transformers (so a
// transformed namer never looks itself up). It is called on the main loop,
// each time current() is, so the snapshot it makes follows their changes.
using Transformers = std::vector<std::shared_ptr<const Transformer>>;
std::unique_ptr<namer::NamerHost> transformingNamer(std::unique_ptr<namer::NamerHost> inner, Transformers transformers,
                                                   std::function<std::vector<dtab::NamerEntry>()> baseNamers);

std::shared_ptr<const Transformer> portTransformer(std::uint16_t port);
// Keeps the endpoints whose nodeName is `nodeName` ($NODE_NAME). Without one,
// those in the /24 of `podIp` ($POD_IP, IPv4), as Linkerd's transformer did;
// with neither, every endpoint (logged).
std::shared_ptr<const Transformer> localNodeTransformer(std::string nodeName, std::string podIp = {});
std::shared_ptr<const Transformer> localhostTransformer();
// A host's numeric addresses, through the system's resolver (which blocks:
// for start-up only); a numeric address is itself.
Expected<std::vector<std::string>, std::string> hostAddresses(const std::string& host);
// `host`: a numeric address or a name, resolved now (blocking: at start);
// if it cannot be, every name it transforms fails, saying why.
std::shared_ptr<const Transformer> specificHostTransformer(std::string host);
std::shared_ptr<const Transformer> replaceTransformer(dtab::Path path);
std::shared_ptr<const Transformer> constTransformer(dtab::Path path);
// `k8sPrefix`: where the io.l5d.k8s namer answers (/#/io.l5d.k8s).
std::shared_ptr<const Transformer> daemonSetTransformer(dtab::Path k8sPrefix, std::string ns, std::string port,
                                                        std::string service);

}  // namespace switchyard::router
