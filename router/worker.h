#pragma once

// Worker: one thread, one loop, and everything a request touches: its own
// listeners (SO_REUSEPORT), client connections, connection pool, binding
// cache and balancers. Workers share only immutable plans and naming
// snapshots (posted to each loop), so the request path takes no lock.

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dtab/delegator.h"
#include "router/balancer.h"
#include "router/client_pool.h"
#include "router/failure.h"
#include "router/leaf_picker.h"
#include "router/metrics.h"
#include "router/recent_requests.h"
#include "router/router_plan.h"
#include "router/tracer.h"
#include "runtime/loop.h"
#include "runtime/tcp.h"
#include "runtime/timer.h"

namespace switchyard::router {

class ServerConnection;

// Where one request goes: its logical name, the tree that name bound to
// (kept, so that a request whose connect fails can be sent elsewhere), the
// leaf chosen and the endpoint.
struct Route {
  const RouterPlan* plan = nullptr;
  dtab::Path logicalName;
  dtab::Dtab local;  // the request's own dtab (l5d-ctx-dtab, l5d-dtab)
  std::shared_ptr<const BoundTree> tree;
  dtab::BoundName bound;
  std::shared_ptr<EndpointState> endpoint;
  Balancer* balancer = nullptr;  // owned by the worker; outlives the request
  std::string ns;  // with io.l5d.namerd.http: the namespace the name was bound in
  // logicalName and bound.id as text, shown once per request (headers,
  // metrics and spans all use them).
  std::string logicalShown;
  std::string boundShown;
  // No endpoint yet: the name binds to an address still being resolved
  // (Pending). The request waits for a naming change, up to bindingTimeoutMs.
  bool pending() const { return endpoint == nullptr; }
};

class Exchange;

class Worker {
 public:
  Worker(const std::vector<std::unique_ptr<RouterPlan>>& plans, std::shared_ptr<const NamingState> naming);
  ~Worker();

  // Binds this worker's listeners (port 0: the first worker's bound port is
  // reused by the others). Returns the bound ports per router and server.
  // `first`: this worker opens the ports; the others join them.
  Expected<std::vector<std::vector<std::uint16_t>>, std::string> listen(
      const std::vector<std::vector<std::uint16_t>>& ports, bool first);
  void startThread();
  // Stops accepting; in-flight requests finish; the thread ends when they
  // have (or at `deadlineMs`).
  void drain(std::uint64_t graceMs);
  void join();

  runtime::Loop& loop() { return loop_; }
  void setNaming(std::shared_ptr<const NamingState> naming);  // loop thread

  // Identification, per-request dtab, binding and balancing, in that order.
  // May rewrite `head` (context headers, the target). Loop thread.
  Expected<Route, Failure> route(const RouterPlan& plan, const ServerConfig& server, runtime::RequestHead& head);
  // Chooses again for a request whose connect failed: the failed endpoint
  // is set aside by then, so another endpoint or union branch is taken.
  Expected<Route, Failure> reroute(const Route& failed);
  // Binds a pending route's name again, with the current naming.
  Expected<Route, Failure> rebind(const Route& pending);
  // Exchanges whose route is pending hear of every naming change.
  void waitForNaming(Exchange* e) { waiting_.insert(e); }
  void stopWaiting(Exchange* e) { waiting_.erase(e); }

  ClientPool& pool() { return pool_; }
  // Zipkin tracing, if configured (before the thread starts); else null.
  void setTracer(std::unique_ptr<Tracer> tracer) { tracer_ = std::move(tracer); }
  Tracer* tracer() { return tracer_.get(); }
  // io.l5d.recentRequests, if configured (before the thread starts); else null.
  void setRecent(std::unique_ptr<RecentRequests> recent) { recent_ = std::move(recent); }
  RecentRequests* recent() { return recent_.get(); }
  std::mt19937_64& rng() { return rng_; }
  void connectionClosed(ServerConnection* c);
  // This worker's metrics: written on its loop only; copied for the admin.
  RouterMetrics& metrics(const RouterPlan& plan) { return metrics_[plan.config.label]; }
  const MetricsSnapshot& metricsSnapshot() const { return metrics_; }
  bool draining() const { return draining_; }

 private:
  struct Binding {
    std::uint64_t generation;
    std::shared_ptr<const BoundTree> tree;  // or
    std::optional<dtab::DelegateError> error;
  };
  struct BalancerEntry {
    Balancer balancer;
    std::uint64_t generation = ~std::uint64_t{0};
    std::string idShown;  // the bound id as text
  };
  const Binding& bind(const RouterPlan& plan, const std::string& ns, const dtab::Dtab& local, const dtab::Path& name,
                      const std::string& nameShown);
  // The balancer of a bound leaf, its endpoints brought up to date.
  BalancerEntry& balancerFor(const RouterPlan& plan, const dtab::BoundName& leaf);
  // Delegation (cached), then pick().
  Expected<Route, Failure> bindAndPick(const RouterPlan& plan, const std::string& ns, const dtab::Path& name,
                                       const dtab::Dtab& local);
  // What transformers may look up while this worker binds.
  TransformContext transformContext() const;
  // With io.l5d.namerd.http: the request's namespace, or why it has none.
  Expected<std::string, Failure> namespaceOf(const RouterPlan& plan, const ServerConfig& server,
                                             const runtime::RequestHead& head) const;
  // The leaf and endpoint for one request.
  Expected<Route, Failure> pick(const RouterPlan& plan, const dtab::Path& name, const dtab::Dtab& local,
                                std::shared_ptr<const BoundTree> tree);
  // "dtab: ...; l5d-dtab: ...", for messages.
  std::string dtabsInForce(const RouterPlan& plan, const dtab::Dtab& local) const;
  void maybeFinishDrain();

  const std::vector<std::unique_ptr<RouterPlan>>& plans_;
  runtime::Loop loop_;
  std::shared_ptr<const NamingState> naming_;
  std::vector<std::unique_ptr<runtime::TcpListener>> listeners_;
  std::set<ServerConnection*> connections_;
  std::set<Exchange*> waiting_;  // routes pending on naming
  std::map<std::string, Binding> bindings_;   // (router, local dtab, name) -> bound tree
  std::map<std::pair<std::size_t, dtab::Path>, BalancerEntry> balancers_;  // (router, bound id) -> balancer
  ClientPool pool_;
  std::mt19937_64 rng_;
  MetricsSnapshot metrics_;
  std::thread thread_;
  bool draining_ = false;
  std::unique_ptr<runtime::Timer> drainTimer_;
  static constexpr std::uint64_t kSweepMs = 1'000;
  runtime::Timer sweepTimer_;  // connection timeouts
  std::unique_ptr<Tracer> tracer_;
  std::unique_ptr<RecentRequests> recent_;
};

}  // namespace switchyard::router
