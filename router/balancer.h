#pragma once

// Balancer: chooses an endpoint of one bound name for each request.
//   p2c         two random endpoints, the one with fewer requests in flight
//   ewma        two random endpoints, the lower peak-EWMA latency x load
//               (both draw by weight when the endpoints' weights differ)
//   roundRobin  each in turn
// An endpoint whose connection just failed is set aside for a short,
// growing while (failure accrual by consecutive failures); if every endpoint
// is set aside, the balancer still picks one rather than fail outright.
// One Balancer per bound name per worker: loop thread only, no locks.

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dtab/addr.h"
#include "router/builtin_plugins.h"

namespace switchyard::router {

struct EndpointState {
  dtab::Endpoint endpoint;
  std::string key;  // "ip:port"
  std::int64_t inFlight = 0;
  double ewmaMs = 0;  // 0: no sample yet
  std::uint64_t lastSampleMs = 0;
  std::uint64_t downUntilMs = 0;
  int consecutiveFailures = 0;
};

class Balancer {
 public:
  explicit Balancer(BalancerSettings settings) : settings_(std::move(settings)) {}

  // Replaces the endpoint set; endpoints that stay keep their state.
  void update(const std::vector<dtab::Endpoint>& endpoints);
  bool empty() const { return endpoints_.empty(); }
  // Whether some endpoint is not set aside: a union branch whose endpoints
  // all are drops out of the split.
  bool anyAvailable(std::uint64_t nowMs) const;

  std::shared_ptr<EndpointState> pick(std::uint64_t nowMs, std::mt19937_64& rng);

  // Bookkeeping around one request to `e`.
  static void started(EndpointState& e) { ++e.inFlight; }
  void finished(EndpointState& e, std::uint64_t nowMs, double latencyMs, bool connectFailed);

 private:
  double cost(const EndpointState& e, std::uint64_t nowMs) const;
  bool available(const EndpointState& e, std::uint64_t nowMs) const { return e.downUntilMs <= nowMs; }

  BalancerSettings settings_;
  std::vector<std::shared_ptr<EndpointState>> endpoints_;
  // Running sums of the endpoints' weights, when they differ (an SRV
  // record's): p2c and ewma then draw their two candidates by weight.
  std::vector<double> cumulativeWeights_;
  std::size_t next_ = 0;  // roundRobin
};

std::string endpointKey(const dtab::Endpoint& e);

}  // namespace switchyard::router
