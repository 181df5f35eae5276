#include "router/recent_requests.h"

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

namespace switchyard::router {

void RecentRequests::add(RecentRequest r) {
  if (settings_.capacity <= 0) return;
  if (entries_.size() >= static_cast<std::size_t>(settings_.capacity)) entries_.pop_front();
  entries_.push_back(std::move(r));
}

std::vector<RecentRequest> newest(std::vector<RecentRequest> all, std::size_t limit) {
  std::stable_sort(all.begin(), all.end(),
                   [](const RecentRequest& a, const RecentRequest& b) { return a.wallUs > b.wallUs; });
  if (all.size() > limit) all.resize(limit);
  return all;
}

namespace {

std::string isoTime(std::int64_t wallUs) {
  std::time_t secs = static_cast<std::time_t>(wallUs / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>((wallUs / 1000) % 1000));
  return buf;
}

std::string escapeHtml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string recentRequestsJson(const std::vector<RecentRequest>& requests) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : requests) {
    out.push_back({{"timestamp", isoTime(r.wallUs)},
                   {"router", r.router},
                   {"method", r.method},
                   {"host", r.host},
                   {"path", r.path},
                   {"service", r.service},
                   {"client", r.client},
                   {"endpoint", r.endpoint},
                   {"status", r.status},
                   {"durationMs", r.durationMs},
                   {"traceId", r.traceId}});
  }
  // A request's path may hold any byte: invalid UTF-8 is replaced, not fatal.
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string recentRequestsHtml(const std::vector<RecentRequest>& requests) {
  std::string out =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>Recent requests</title></head><body>"
      "<h1>Recent requests</h1><p>Newest first; also as <a href=\"/requests.json\">JSON</a>.</p>"
      "<table border=\"1\" cellpadding=\"4\"><tr><th>time (UTC)</th><th>router</th><th>method</th><th>host</th>"
      "<th>path</th><th>service</th><th>client</th><th>endpoint</th><th>status</th><th>ms</th><th>trace id</th></tr>";
  for (const auto& r : requests) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.1f", r.durationMs);
    out += "<tr><td>" + isoTime(r.wallUs) + "</td><td>" + escapeHtml(r.router) + "</td><td>" + escapeHtml(r.method) +
           "</td><td>" + escapeHtml(r.host) + "</td><td>" + escapeHtml(r.path) + "</td><td>" + escapeHtml(r.service) +
           "</td><td>" + escapeHtml(r.client) + "</td><td>" + escapeHtml(r.endpoint) + "</td><td>" +
           (r.status ? std::to_string(r.status) : std::string("-")) + "</td><td>" + ms + "</td><td>" +
           escapeHtml(r.traceId) + "</td></tr>";
  }
  out += "</table></body></html>\n";
  return out;
}

}  // namespace switchyard::router
