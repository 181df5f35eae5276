#pragma once

#include "namer/namerd_client.h"
#include "router/plugin_registry.h"
#include "router/recent_requests.h"
#include "router/transformer.h"
#include "router/tracer.h"

namespace switchyard::router {

// The kinds the router itself implements: the `default` interpreter, the
// load balancers (p2c, ewma, roundRobin), the io.l5d.prometheus telemeter
// (served by the admin server) and io.l5d.zipkin (ZipkinSettings: Zipkin v2
// JSON over HTTP to host:port, default 127.0.0.1:9411); for the namer
// service, the io.l5d.httpController interface and the io.l5d.inMemory and
// file stores.
void addBuiltinPlugins(PluginRegistry& registry);

// Settings of the built-in kinds, read by the router when it builds them.
struct DefaultInterpreterSettings {
  std::vector<KindedConfig> transformers;
};
// A transformer kind's settings: how to build it when the router starts
// (io.l5d.k8s.localnode reads NODE_NAME then, not when the config is checked).
struct TransformerFactory {
  std::function<std::shared_ptr<const Transformer>()> make;
};
// io.l5d.prometheus: the exposition is served at `path` (always also at
// /admin/metrics/prometheus), every name prefixed with `prefix`.
struct PrometheusSettings {
  std::string path = "/admin/metrics/prometheus";
  std::string prefix;
};
// The namer service's `interfaces`: io.l5d.httpController, Namerd's HTTP API.
struct HttpControllerSettings {
  std::string ip = "127.0.0.1";
  std::uint16_t port = 4180;
};
// io.l5d.namerd.http: bind through the namer service's HTTP API. The
// namespace is `namespace` (fixed), or taken per request from `header`
// (`{header: l5d-tenant, default: default, allowed: [...]}`), or set per
// server (servers[].namespace) for a tenant per port.
struct NamerdInterpreterSettings {
  namer::NamerdSettings client;
  std::vector<KindedConfig> transformers;
  std::string ns = "default";
  std::string header;                // empty: the fixed namespace
  std::vector<std::string> allowed;  // with header: the names a request may pick (empty: any)
};
struct MemoryStoreSettings {
  namer::NamespaceMap namespaces;  // io.l5d.inMemory's initial `namespaces`
};
struct FileStoreSettings {
  std::string dir;
};

struct BalancerSettings {
  std::string kind;
  std::int64_t maxEffort = 5;       // p2c, ewma: picks before giving up on unhealthy nodes
  std::int64_t decayTimeMs = 10'000;  // ewma
};

}  // namespace switchyard::router
