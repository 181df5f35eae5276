#pragma once

// RouterPlan: one configured router, ready to serve: its checked config and
// the objects built from it that every worker shares read-only (the
// identifier chain is const and stateless, so workers call it concurrently).
// NamingState: the routers' dtabs and the configured namers' current
// snapshots, replaced whole and posted to every worker when a namer changes
// or the dtabs are reloaded.

#include <cstdint>
#include <memory>
#include <vector>

#include "dtab/namer.h"
#include "router/builtin_plugins.h"
#include "router/config.h"
#include "router/identifier.h"

namespace switchyard::router {

struct RouterPlan {
  std::size_t index = 0;  // in the config's routers list, and in NamingState::dtabs
  RouterConfig config;    // config.dtab is the dtab at start; NamingState has the current one
  std::unique_ptr<Identifier> identifier;
  BalancerSettings balancer;
  // Set when the router binds through the namer service (io.l5d.namerd.http).
  const NamerdInterpreterSettings* remote = nullptr;
  // interpreter.transformers, built at start, applied to every bound tree.
  std::vector<std::shared_ptr<const Transformer>> transformers;
};

struct NamingState {
  std::vector<dtab::Dtab> dtabs;  // per router, in config order
  std::vector<dtab::NamerEntry> namers;
  // Per router, for those that bind through the namer service: what it has
  // answered, and how a worker asks for a name it has not (else null).
  std::vector<std::shared_ptr<const namer::RemoteBindings>> remote;
  std::vector<std::shared_ptr<const namer::WantFn>> wantRemote;
  std::uint64_t generation = 0;
};

}  // namespace switchyard::router
