#include "router/metrics.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

namespace switchyard::router {

namespace {

constexpr double kBase = 1.04;  // bucket width: 4%

int bucketOf(double ms) { return static_cast<int>(std::floor(std::log1p(std::max(0.0, ms) * 1000.0) / std::log(kBase))); }
double upperMs(int bucket) { return std::expm1(static_cast<double>(bucket + 1) * std::log(kBase)) / 1000.0; }

// Percentiles Linkerd reports, as (suffix, quantile).
const std::vector<std::pair<const char*, double>>& quantiles() {
  static const std::vector<std::pair<const char*, double>> q = {
      {"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p9990", 0.999}, {"p9999", 0.9999}};
  return q;
}

}  // namespace

void LatencyHistogram::record(double ms) {
  ++buckets_[bucketOf(ms)];
  if (count_ == 0 || ms < min_) min_ = ms;
  if (ms > max_) max_ = ms;
  ++count_;
  sum_ += ms;
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  if (o.count_ == 0) return;
  for (const auto& [b, n] : o.buckets_) buckets_[b] += n;
  min_ = count_ == 0 ? o.min_ : std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  count_ += o.count_;
  sum_ += o.sum_;
}

double LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (const auto& [b, n] : buckets_) {
    seen += n;
    if (seen >= rank) return std::clamp(upperMs(b), min_, max_);
  }
  return max_;
}

void RequestStats::record(int statusCode, double latencyMs) {
  ++requests;
  if (statusCode > 0 && statusCode < 500) {
    ++success;
  } else {
    ++failures;
  }
  if (statusCode > 0) ++status[statusCode];
  latency.record(latencyMs);
}

void RequestStats::merge(const RequestStats& o) {
  requests += o.requests;
  success += o.success;
  failures += o.failures;
  for (const auto& [c, n] : o.status) status[c] += n;
  latency.merge(o.latency);
}

void RouterMetrics::merge(const RouterMetrics& o) {
  for (const auto& [k, v] : o.servers) servers[k].merge(v);
  for (const auto& [k, v] : o.services) services[k].merge(v);
  for (const auto& [k, v] : o.clients) clients[k].merge(v);
  for (const auto& [k, v] : o.connections) connections[k] += v;
}

std::string metricsJson(const MetricsSnapshot& snapshot, const std::vector<ProcessMetric>& process) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  auto scope = [&](const std::string& prefix, const RequestStats& s) {
    out[prefix + "/requests"] = s.requests;
    out[prefix + "/success"] = s.success;
    out[prefix + "/failures"] = s.failures;
    for (const auto& [code, n] : s.status) out[prefix + "/status/" + std::to_string(code)] = n;
    const LatencyHistogram& h = s.latency;
    std::string lat = prefix + "/request_latency_ms.";
    out[lat + "count"] = h.count();
    out[lat + "sum"] = h.sum();
    out[lat + "avg"] = h.count() ? h.sum() / static_cast<double>(h.count()) : 0.0;
    out[lat + "min"] = h.min();
    out[lat + "max"] = h.max();
    for (const auto& [name, q] : quantiles()) out[lat + name] = h.percentile(q);
  };
  for (const auto& [label, m] : snapshot) {
    for (const auto& [k, s] : m.servers) scope("rt/" + label + "/server/" + k, s);
    for (const auto& [k, s] : m.services) scope("rt/" + label + "/service/" + k, s);
    for (const auto& [k, s] : m.clients) scope("rt/" + label + "/client/" + k, s);
    for (const auto& [k, n] : m.connections) out["rt/" + label + "/server/" + k + "/connections"] = n;
  }
  for (const auto& p : process) out[p.path] = p.value;
  return out.dump();
}

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

void addScope(std::map<std::string, MetricFamily>& families, const std::string& kind, const std::string& rt,
              const std::string& id, const RequestStats& s) {
  std::vector<ClientMetric::Label> labels = {{"rt", rt}, {kind, id}};
  auto family = [&](const std::string& name, MetricType type, const char* help) -> MetricFamily& {
    MetricFamily& f = families["rt:" + kind + ":" + name];
    if (f.name.empty()) {
      f.name = "rt:" + kind + ":" + name;
      f.help = help;
      f.type = type;
    }
    return f;
  };
  auto counter = [&](const std::string& name, const char* help, double value,
                     std::vector<ClientMetric::Label> extra = {}) {
    ClientMetric m;
    m.label = labels;
    m.label.insert(m.label.end(), extra.begin(), extra.end());
    m.counter.value = value;
    family(name, MetricType::Counter, help).metric.push_back(std::move(m));
  };
  counter("requests", "Requests received", static_cast<double>(s.requests));
  counter("success", "Requests answered below 500", static_cast<double>(s.success));
  counter("failures", "Requests answered 5xx or failed", static_cast<double>(s.failures));
  for (const auto& [code, n] : s.status) {
    counter("status", "Responses by status code", static_cast<double>(n), {{"code", std::to_string(code)}});
  }
  ClientMetric lat;
  lat.label = labels;
  lat.summary.sample_count = s.latency.count();
  lat.summary.sample_sum = s.latency.sum();
  for (const auto& [name, q] : quantiles()) lat.summary.quantile.push_back({q, s.latency.percentile(q)});
  family("request_latency_ms", MetricType::Summary, "Request latency in milliseconds").metric.push_back(std::move(lat));
}

}  // namespace

std::string metricsPrometheus(const MetricsSnapshot& snapshot, const std::string& prefix,
                              const std::vector<ProcessMetric>& process) {
  std::map<std::string, MetricFamily> families;
  for (const auto& [label, m] : snapshot) {
    for (const auto& [k, s] : m.servers) addScope(families, "server", label, k, s);
    for (const auto& [k, s] : m.services) addScope(families, "service", label, k, s);
    for (const auto& [k, s] : m.clients) addScope(families, "client", label, k, s);
  }
  std::vector<MetricFamily> out;
  for (auto& [name, f] : families) out.push_back(std::move(f));
  MetricFamily conns{"rt:server:connections", "Open client connections", MetricType::Gauge, {}};
  for (const auto& [label, m] : snapshot) {
    for (const auto& [server, n] : m.connections) {
      ClientMetric c;
      c.label = {{"rt", label}, {"server", server}};
      c.gauge.value = static_cast<double>(n);
      conns.metric.push_back(std::move(c));
    }
  }
  if (!conns.metric.empty()) out.push_back(std::move(conns));
  std::map<std::string, MetricFamily> others;
  for (const auto& p : process) {
    MetricFamily& f = others[p.family];
    if (f.name.empty()) {
      f.name = p.family;
      f.help = p.help;
      f.type = p.counter ? MetricType::Counter : MetricType::Gauge;
    }
    ClientMetric m;
    for (const auto& [k, v] : p.labels) m.label.push_back({k, v});
    if (p.counter) {
      m.counter.value = p.value;
    } else {
      m.gauge.value = p.value;
    }
    f.metric.push_back(std::move(m));
  }
  for (auto& [name, f] : others) out.push_back(std::move(f));
  for (auto& f : out) f.name = prefix + f.name;
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, out);
  return text.str();
}

}  // namespace switchyard::router
