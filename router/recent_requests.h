#pragma once

// RecentRequests: Linkerd's io.l5d.recentRequests telemeter. Each worker
// keeps its last `capacity` sampled requests in a ring of its own (no lock on
// the request path); the admin server gathers the rings and shows the newest
// at /requests (a table) and /requests.json, each with its trace id, so a
// slow or failed request found here can be looked up in Zipkin.

#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace switchyard::router {

struct RecentRequestsSettings {
  double sampleRate = 1.0;
  std::int64_t capacity = 10;
};

struct RecentRequest {
  std::int64_t wallUs = 0;  // when the request arrived
  std::string router;       // label
  std::string method;
  std::string host;
  std::string path;
  std::string service;   // logical name, "svc/hello"
  std::string client;    // bound name, "#/io.l5d.fs/hello"
  std::string endpoint;  // ip:port
  std::string traceId;   // hex, as in Zipkin; empty if no trace was started
  int status = 0;        // 0: no response (the client left)
  double durationMs = 0;
};

class RecentRequests {
 public:
  explicit RecentRequests(RecentRequestsSettings settings) : settings_(settings) {}
  // Whether the request starting now is kept (sampleRate).
  bool sample(std::mt19937_64& rng) const {
    return settings_.sampleRate >= 1.0 || std::uniform_real_distribution<double>(0, 1)(rng) < settings_.sampleRate;
  }
  void add(RecentRequest r);
  const std::deque<RecentRequest>& entries() const { return entries_; }
  std::size_t capacity() const { return static_cast<std::size_t>(settings_.capacity); }

 private:
  RecentRequestsSettings settings_;
  std::deque<RecentRequest> entries_;
};

// The newest `limit` of all workers' entries, newest first.
std::vector<RecentRequest> newest(std::vector<RecentRequest> all, std::size_t limit);
std::string recentRequestsJson(const std::vector<RecentRequest>& requests);
std::string recentRequestsHtml(const std::vector<RecentRequest>& requests);

}  // namespace switchyard::router
