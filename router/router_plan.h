#pragma once

// RouterPlan: one configured router, ready to serve: its checked config and
// the objects built from it that every worker shares read-only (the
// identifier chain is const and stateless, so workers call it concurrently).
// NamingState: the configured namers' current snapshots, replaced whole and
// posted to every worker when a namer changes.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dtab/namer.h"
#include "router/builtin_plugins.h"
#include "router/config.h"
#include "router/identifier.h"

namespace switchyard::router {

// Counters one router's workers add to with relaxed atomics (no locks on the
// request path); the admin server reads them.
struct RouterStats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> success{0};
  std::atomic<std::uint64_t> failures{0};  // answered with a failure or aborted
  std::atomic<std::uint64_t> connections{0};   // open client connections
  std::atomic<std::uint64_t> connects{0};      // accepted, total
  std::atomic<std::uint64_t> requestErrors{0}; // malformed requests (4xx from the codec)
};

struct RouterPlan {
  RouterConfig config;
  std::unique_ptr<Identifier> identifier;
  BalancerSettings balancer;
  std::unique_ptr<RouterStats> stats = std::make_unique<RouterStats>();
};

struct NamingState {
  std::vector<dtab::NamerEntry> namers;
  std::uint64_t generation = 0;
};

}  // namespace switchyard::router
