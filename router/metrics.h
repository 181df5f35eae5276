#pragma once

// Request metrics, kept by each worker for its own requests (plain fields:
// only the worker's thread writes them) and merged on the main loop when the
// admin server is asked. Scopes are Linkerd's: per server (ip/port), per
// service (the logical name) and per client (the bound name).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace switchyard::router {

// Latency distribution in log-spaced buckets (each about 4% wide), so
// percentiles are within a few percent and histograms merge by addition.
class LatencyHistogram {
 public:
  void record(double ms);
  void merge(const LatencyHistogram& other);
  // The value below which `q` (0-1) of the samples fall; 0 if none.
  double percentile(double q) const;
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  double min() const { return count_ ? min_ : 0; }
  double max() const { return max_; }

 private:
  std::map<int, std::uint64_t> buckets_;  // bucket index -> samples
  std::uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = 0;
  double max_ = 0;
};

struct RequestStats {
  std::uint64_t requests = 0;
  std::uint64_t success = 0;   // answered below 500
  std::uint64_t failures = 0;  // 5xx, router failures, aborted responses
  std::map<int, std::uint64_t> status;
  LatencyHistogram latency;

  void record(int statusCode, double latencyMs);
  void merge(const RequestStats& other);
};

struct RouterMetrics {
  std::map<std::string, RequestStats> servers;   // "127.0.0.1/4140"
  std::map<std::string, RequestStats> services;  // "svc/hello"
  std::map<std::string, RequestStats> clients;   // "#/io.l5d.fs/hello"
  std::map<std::string, std::int64_t> connections;  // per server: open now
  void merge(const RouterMetrics& other);
};

// label -> metrics, one per router.
using MetricsSnapshot = std::map<std::string, RouterMetrics>;

// A metric outside the routers' scopes (the DNS resolver's, say): one value,
// named `path` in metrics.json ("inet/dns/host/web.test/age_secs") and
// `family` with `labels` in Prometheus (inet:dns:age_secs{host="web.test"}).
struct ProcessMetric {
  std::string path;
  std::string family;
  std::vector<std::pair<std::string, std::string>> labels;
  bool counter = false;  // else a gauge
  std::string help;
  double value = 0;
};

// Linkerd's metrics.json: flat names, e.g.
//   rt/<label>/service/svc/hello/requests
//   rt/<label>/client/#/io.l5d.fs/hello/request_latency_ms.p99
std::string metricsJson(const MetricsSnapshot& snapshot, const std::vector<ProcessMetric>& process = {});
// Prometheus text exposition in the names of Linkerd's io.l5d.prometheus
// telemeter (rt:service:requests{rt="out",service="svc/hello"}).
// `prefix` is put before every name (io.l5d.prometheus's `prefix`).
std::string metricsPrometheus(const MetricsSnapshot& snapshot, const std::string& prefix = "",
                              const std::vector<ProcessMetric>& process = {});

}  // namespace switchyard::router
