#include "router/balancer.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace switchyard::router {

std::string endpointKey(const dtab::Endpoint& e) {
  bool v6 = e.ip.find(':') != std::string::npos;
  return (v6 ? "[" + e.ip + "]" : e.ip) + ":" + std::to_string(e.port);
}

void Balancer::update(const std::vector<dtab::Endpoint>& endpoints) {
  std::map<std::string, std::shared_ptr<EndpointState>> old;
  for (auto& e : endpoints_) old[e->key] = e;
  std::vector<std::shared_ptr<EndpointState>> now;
  for (const auto& ep : endpoints) {
    std::string key = endpointKey(ep);
    auto it = old.find(key);
    if (it != old.end()) {
      it->second->endpoint = ep;
      now.push_back(it->second);
    } else {
      auto s = std::make_shared<EndpointState>();
      s->endpoint = ep;
      s->key = key;
      now.push_back(std::move(s));
    }
  }
  endpoints_ = std::move(now);
  if (next_ >= endpoints_.size()) next_ = 0;
  cumulativeWeights_.clear();
  bool uniform = std::all_of(endpoints_.begin(), endpoints_.end(),
                             [&](const auto& e) { return e->endpoint.weight == endpoints_.front()->endpoint.weight; });
  if (!uniform) {
    double sum = 0;
    for (const auto& e : endpoints_) cumulativeWeights_.push_back(sum += std::max(e->endpoint.weight, 0.0));
  }
}

bool Balancer::anyAvailable(std::uint64_t nowMs) const {
  return std::any_of(endpoints_.begin(), endpoints_.end(), [&](const auto& e) { return available(*e, nowMs); });
}

double Balancer::cost(const EndpointState& e, std::uint64_t nowMs) const {
  if (settings_.kind != "ewma") return static_cast<double>(e.inFlight);
  // Peak EWMA: the latency estimate decays towards 0 while idle, so a slow
  // endpoint is retried after a while; load multiplies it.
  double ewma = e.ewmaMs;
  if (ewma > 0 && nowMs > e.lastSampleMs) {
    double decay = std::exp(-static_cast<double>(nowMs - e.lastSampleMs) /
                            static_cast<double>(settings_.decayTimeMs));
    ewma *= decay;
  }
  return (ewma + 1.0) * static_cast<double>(e.inFlight + 1);
}

std::shared_ptr<EndpointState> Balancer::pick(std::uint64_t nowMs, std::mt19937_64& rng) {
  if (endpoints_.empty()) return nullptr;
  std::size_t n = endpoints_.size();
  if (settings_.kind == "roundRobin") {
    for (std::size_t i = 0; i < n; ++i) {
      auto& e = endpoints_[(next_ + i) % n];
      if (available(*e, nowMs)) {
        next_ = (next_ + i + 1) % n;
        return e;
      }
    }
    return endpoints_[next_++ % n];
  }
  if (n == 1) return endpoints_[0];
  // Power of two choices, retried up to maxEffort times to find available
  // endpoints.
  std::uniform_int_distribution<std::size_t> dist(0, n - 1);
  auto draw = [&]() -> std::size_t {
    if (cumulativeWeights_.empty() || cumulativeWeights_.back() <= 0) return dist(rng);
    double x = std::uniform_real_distribution<double>(0, cumulativeWeights_.back())(rng);
    auto it = std::upper_bound(cumulativeWeights_.begin(), cumulativeWeights_.end(), x);
    return std::min<std::size_t>(static_cast<std::size_t>(it - cumulativeWeights_.begin()), n - 1);
  };
  std::shared_ptr<EndpointState> best;
  for (std::int64_t effort = 0; effort < settings_.maxEffort; ++effort) {
    std::size_t a = draw();
    std::size_t b = draw();
    if (b == a) b = draw();  // once more, so that weights keep their say
    if (b == a) b = (a + 1) % n;
    auto& ea = endpoints_[a];
    auto& eb = endpoints_[b];
    bool okA = available(*ea, nowMs);
    bool okB = available(*eb, nowMs);
    if (okA && okB) return cost(*ea, nowMs) <= cost(*eb, nowMs) ? ea : eb;
    if (okA) return ea;
    if (okB) return eb;
    if (!best) best = ea;
  }
  return best;
}

void Balancer::finished(EndpointState& e, std::uint64_t nowMs, double latencyMs, bool connectFailed) {
  if (e.inFlight > 0) --e.inFlight;
  if (connectFailed) {
    // Set aside for 100 ms, doubling per consecutive failure, up to 10 s.
    ++e.consecutiveFailures;
    int shift = std::min(e.consecutiveFailures - 1, 7);
    e.downUntilMs = nowMs + std::min<std::uint64_t>(100ull << shift, 10'000);
    return;
  }
  e.consecutiveFailures = 0;
  e.downUntilMs = 0;
  if (settings_.kind == "ewma") {
    // Peak-sensitive: a slower sample replaces the estimate at once.
    double decayed = cost(e, nowMs) / static_cast<double>(e.inFlight + 1) - 1.0;
    e.ewmaMs = latencyMs > decayed ? latencyMs : decayed * 0.8 + latencyMs * 0.2;
    e.lastSampleMs = nowMs;
  }
}

}  // namespace switchyard::router
