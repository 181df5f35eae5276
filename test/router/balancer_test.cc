#include "router/balancer.h"

#include <catch2/catch.hpp>
#include <map>

using namespace switchyard;
using namespace switchyard::router;

namespace {

std::vector<dtab::Endpoint> endpoints(int n) {
  std::vector<dtab::Endpoint> out;
  for (int i = 0; i < n; ++i) out.push_back({"127.0.0.1", static_cast<std::uint16_t>(8000 + i), 1.0, {}});
  return out;
}

BalancerSettings settings(const char* kind) {
  BalancerSettings s;
  s.kind = kind;
  return s;
}

}  // namespace

TEST_CASE("roundRobin takes each endpoint in turn and skips those set aside", "[balancer]") {
  Balancer b(settings("roundRobin"));
  b.update(endpoints(3));
  std::mt19937_64 rng(1);
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) order.push_back(b.pick(0, rng)->key);
  CHECK(order == std::vector<std::string>{"127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002",
                                          "127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002"});
  auto e = b.pick(0, rng);  // 8000
  Balancer::started(*e);
  b.finished(*e, 0, 1.0, /*connectFailed=*/true);
  for (int i = 0; i < 4; ++i) CHECK(b.pick(50, rng)->key != "127.0.0.1:8000");
  // The back-off is over after 100 ms.
  bool back = false;
  for (int i = 0; i < 3; ++i) back = back || b.pick(150, rng)->key == "127.0.0.1:8000";
  CHECK(back);
}

TEST_CASE("p2c prefers the endpoint with fewer requests in flight", "[balancer]") {
  Balancer b(settings("p2c"));
  b.update(endpoints(2));
  std::mt19937_64 rng(7);
  auto busy = b.pick(0, rng);
  for (int i = 0; i < 10; ++i) Balancer::started(*busy);
  for (int i = 0; i < 20; ++i) CHECK(b.pick(0, rng) != busy);
}

TEST_CASE("ewma prefers the faster endpoint, and forgets with time", "[balancer]") {
  BalancerSettings s = settings("ewma");
  s.decayTimeMs = 1000;
  Balancer b(s);
  b.update(endpoints(2));
  std::mt19937_64 rng(3);
  auto slow = b.pick(0, rng);
  Balancer::started(*slow);
  b.finished(*slow, 10, 500.0, false);
  std::map<std::string, int> picks;
  for (int i = 0; i < 50; ++i) ++picks[b.pick(20, rng)->key];
  CHECK(picks[slow->key] == 0);
  // Long after, the slow estimate has decayed and both are picked again.
  picks.clear();
  for (int i = 0; i < 50; ++i) {
    auto e = b.pick(60'000, rng);
    ++picks[e->key];
    Balancer::started(*e);  // load spreads the choice
  }
  CHECK(picks.size() == 2);
}

TEST_CASE("update keeps the state of endpoints that stay", "[balancer]") {
  Balancer b(settings("roundRobin"));
  b.update(endpoints(2));
  std::mt19937_64 rng(5);
  auto e = b.pick(0, rng);
  Balancer::started(*e);
  b.update(endpoints(3));
  bool found = false;
  for (int i = 0; i < 100 && !found; ++i) {
    auto p = b.pick(0, rng);
    if (p->key == e->key) found = p->inFlight == 1;
  }
  CHECK(found);
  b.update({});
  CHECK(b.empty());
  CHECK(b.pick(0, rng) == nullptr);
}
