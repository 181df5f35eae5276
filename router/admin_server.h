#pragma once

// AdminServer: Linkerd's admin endpoints on the admin port, served from the
// main loop (never a worker):
//   GET  /admin/ping            pong
//   GET  /admin/metrics.json    Linkerd's flat metric names (rt/<label>/service/svc/hello/requests)
//   GET  /admin/metrics/prometheus  the same in Prometheus text format
//   GET  /config.json           the configuration as loaded
//   GET|POST /delegator.json    the delegate tree of a path through a router's dtab (or, for
//                               io.l5d.namerd.http routers, the namer service's /api/1/delegate)
//   GET  /requests, /requests.json  recent requests (io.l5d.recentRequests)
//   POST /admin/shutdown        graceful drain, then exit 0
// Requests are small and read whole (up to 1 MB), by a runtime::HttpServer.

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "router/metrics.h"
#include "router/recent_requests.h"
#include "router/router_plan.h"
#include "runtime/config_node.h"
#include "runtime/http_server.h"
#include "runtime/loop.h"

namespace switchyard::router {

class AdminServer {
 public:
  struct Context {
    const std::vector<std::unique_ptr<RouterPlan>>* plans;
    const runtime::ConfigNode* config;
    // The configured namers as of now (main loop).
    std::function<std::shared_ptr<const NamingState>()> naming;
    std::function<void()> shutdown;
    // Gathers every worker's metrics, merged; calls back on the main loop.
    std::function<void(std::function<void(MetricsSnapshot)>)> collect;
    // Metrics of the process outside the routers (the DNS resolver); may be empty.
    std::function<std::vector<ProcessMetric>()> processMetrics;
    // Routers on io.l5d.namerd.http: asks the namer service to delegate
    // (dtab, path) in the router's namespace; the JSON, or why not.
    std::function<void(const RouterPlan&, const std::string&, const std::string&,
                       std::function<void(Expected<std::string, std::string>)>)>
        remoteDelegate;
    // io.l5d.recentRequests: gathers every worker's recent requests, newest
    // first, on the main loop; empty if the telemeter is not configured.
    std::function<void(std::function<void(std::vector<RecentRequest>)>)> collectRecent;
    // io.l5d.prometheus telemeters: extra paths and their name prefixes.
    std::vector<std::pair<std::string, std::string>> prometheusPaths;
  };

  AdminServer(runtime::Loop& loop, Context context);
  ~AdminServer();
  Expected<std::uint16_t, std::string> listen(const std::string& ip, std::uint16_t port);
  void stop();

  // Answers one request: status, content type, body. `done` runs on the
  // main loop, at once or (for metrics) once the workers have reported.
  struct Reply {
    int status;
    std::string contentType;
    std::string body;
  };
  void handle(const std::string& method, const std::string& target, const std::string& body,
              std::function<void(Reply)> done);

 private:
  Reply reply(const std::string& method, const std::string& target);
  void delegator(const std::string& method, const std::string& target, const std::string& body,
                 std::function<void(Reply)> done);
  runtime::Loop& loop_;
  Context ctx_;
  runtime::HttpServer server_;
};

}  // namespace switchyard::router
