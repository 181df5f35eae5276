#include "router/config.h"

#include <set>

namespace switchyard::router {
namespace {

using runtime::ConfigReader;

// A key Linkerd has whose behaviour Switchyard lacks and must not silently
// drop (security, routing semantics): an error naming it.
void unsupported(ConfigReader& r, std::string_view key, std::string_view what) {
  if (r.has(key)) {
    r.problems().error(r.childPath(key), "not supported by Switchyard yet: " + std::string(what));
  }
}

std::uint16_t readPort(ConfigReader& r, std::string_view key, std::uint16_t fallback) {
  return static_cast<std::uint16_t>(r.integer(key, fallback, 0, 65535));
}

AdminConfig readAdmin(ConfigReader r) {
  AdminConfig a;
  if (!r.expectMap()) return a;
  a.ip = r.string("ip", a.ip);
  a.port = readPort(r, "port", a.port);
  a.shutdownGraceMs = r.integer("shutdownGraceMs", a.shutdownGraceMs, 0, 3'600'000);
  r.ignore("workerThreads", "a JVM thread pool size; see the --workers flag");
  r.ignore("httpIdentifierPort", "the admin server has no separate identifier port");
  unsupported(r, "tls", "TLS on the admin server");
  unsupported(r, "security", "admin access control (admin.security)");
  r.finish();
  return a;
}

ServerConfig readServer(ConfigReader r, std::uint16_t defaultPort) {
  ServerConfig s;
  s.port = defaultPort;
  if (!r.expectMap()) return s;
  s.ip = r.string("ip", s.ip);
  s.port = readPort(r, "port", s.port);
  s.clearContext = r.boolean("clearContext", false);
  s.headerTimeoutMs = r.integer("headerTimeoutMs", s.headerTimeoutMs, 0, 3'600'000);
  s.idleTimeoutMs = r.integer("idleTimeoutMs", s.idleTimeoutMs, 0, 86'400'000);
  s.ns = r.string("namespace", "");
  if (!s.ns.empty() && !namer::validNamespaceName(s.ns)) {
    r.problems().error(r.childPath("namespace"), "invalid namespace name \"" + s.ns + "\"");
  }
  r.ignore("maxConcurrentRequests", "no per-server concurrency limit yet");
  r.ignore("socketOptions", "socket tuning is automatic");
  r.ignore("timeoutMs", "a legacy key; use service.totalTimeoutMs");
  unsupported(r, "tls", "server TLS");
  unsupported(r, "addForwardedHeader", "the Forwarded header");
  unsupported(r, "announce", "announcers");
  r.finish();
  return s;
}

ClientConfig readClient(ConfigReader r, const PluginRegistry& registry) {
  ClientConfig c;
  if (!r.expectMap()) return c;
  std::string kind = r.string("kind", "io.l5d.global");
  if (kind != "io.l5d.global" && kind != "io.l5d.static") {
    r.problems().error(r.childPath("kind"),
                       "unknown client kind \"" + kind + "\"; known: io.l5d.global, io.l5d.static");
  }
  unsupported(r, "configs", "per-prefix client settings (client.configs)");
  if (auto lb = r.field("loadBalancer")) {
    c.loadBalancer = registry.read(PluginCategory::LoadBalancer, *lb);
  }
  if (auto pool = r.field("hostConnectionPool")) {
    if (pool->expectMap()) {
      c.poolMaxSize = pool->integer("maxSize", c.poolMaxSize, 1, 1'000'000);
      c.poolIdleTimeMs = pool->integer("idleTimeMs", c.poolIdleTimeMs, 0, 86'400'000);
      pool->ignore("minSize", "connections are opened on demand");
      pool->ignore("maxWaiters", "requests wait for a connection up to their timeout");
      pool->finish();
    }
  }
  c.connectTimeoutMs = r.integer("connectTimeoutMs", c.connectTimeoutMs, 1, 3'600'000);
  c.requestAttemptTimeoutMs = r.integer("requestAttemptTimeoutMs", 0, 0, 3'600'000);
  r.ignore("failureAccrual", "failure accrual is not implemented yet");
  r.ignore("requeueBudget", "requeues are not implemented yet");
  r.ignore("socketOptions", "socket tuning is automatic");
  unsupported(r, "tls", "client TLS");
  r.finish();
  return c;
}

ServiceConfig readService(ConfigReader r) {
  ServiceConfig s;
  if (!r.expectMap()) return s;
  std::string kind = r.string("kind", "io.l5d.global");
  if (kind != "io.l5d.global" && kind != "io.l5d.static") {
    r.problems().error(r.childPath("kind"),
                       "unknown service kind \"" + kind + "\"; known: io.l5d.global, io.l5d.static");
  }
  unsupported(r, "configs", "per-prefix service settings (service.configs)");
  s.totalTimeoutMs = r.integer("totalTimeoutMs", 0, 0, 3'600'000);
  r.ignore("responseClassifier", "response classification is not implemented yet: every complete "
                                 "response counts as a success and nothing is retried");
  r.ignore("retries", "retries are not implemented yet");
  r.finish();
  return s;
}

namer::DnsSettings readDns(ConfigReader r) {
  namer::DnsSettings d;
  if (!r.expectMap()) return d;
  auto servers = r.list("servers");
  for (std::size_t i = 0; i < servers.size(); ++i) {
    auto& s = servers[i];
    if (!s.node().isScalar()) {
      r.problems().error(s.path(), "expected a DNS server as \"ip\" or \"ip:port\"");
      continue;
    }
    std::string text = s.node().text();
    if (!namer::isDnsServerAddress(text)) {
      r.problems().error(s.path(), "\"" + text + "\" is not a DNS server address: expected a numeric \"ip\" or "
                                   "\"ip:port\" (IPv6: \"[::1]:53\")");
      continue;
    }
    d.servers.push_back(text);
  }
  d.minTtlSecs = r.integer("minTtlSecs", d.minTtlSecs, 0, 86'400);
  d.maxTtlSecs = r.integer("maxTtlSecs", d.maxTtlSecs, 0, 86'400);
  if (d.maxTtlSecs < d.minTtlSecs) {
    r.problems().error(r.childPath("maxTtlSecs"), "must be at least minTtlSecs (" + std::to_string(d.minTtlSecs) + ")");
  }
  d.timeoutMs = r.integer("timeoutMs", d.timeoutMs, 1, 60'000);
  r.finish();
  return d;
}

RouterConfig readRouter(ConfigReader r, const PluginRegistry& registry) {
  RouterConfig rt;
  if (!r.expectMap()) return rt;
  rt.protocol = r.string("protocol", "");
  rt.label = r.string("label", rt.protocol);
  // The rest of a router's keys depend on its protocol: for one we do not
  // route, only the protocol is reported.
  if (rt.protocol.empty()) {
    r.problems().error(r.childPath("protocol"), "required; known: http");
    return rt;
  } else if (rt.protocol == "h2") {
    r.problems().error(r.childPath("protocol"), "not supported by Switchyard yet: h2 (HTTP/2) routers");
    return rt;
  } else if (rt.protocol != "http") {
    r.problems().error(r.childPath("protocol"),
                       "unknown protocol \"" + rt.protocol + "\"; known: http (Switchyard routes HTTP)");
    return rt;
  }

  for (auto& s : r.list("servers")) rt.servers.push_back(readServer(s, 4140));
  if (rt.servers.empty() && !r.has("servers")) rt.servers.push_back(ServerConfig{});

  auto ids = r.list("identifier", /*oneAllowed=*/true);
  for (auto& id : ids) {
    if (auto k = registry.read(PluginCategory::Identifier, id)) rt.identifiers.push_back(std::move(*k));
  }
  if (ids.empty() && !r.has("identifier")) {
    runtime::ConfigNode empty = runtime::ConfigNode::map({});
    ConfigReader dflt(empty, r.childPath("identifier"), r.problems());
    if (auto k = registry.read(PluginCategory::Identifier, dflt, "io.l5d.header.token")) {
      rt.identifiers.push_back(std::move(*k));
    }
  }

  std::optional<std::string> dtabText = r.optionalString("dtab");
  if (auto legacy = r.optionalString("baseDtab")) {
    r.problems().warning(r.childPath("baseDtab"), "baseDtab is the pre-1.0 name of dtab; read as dtab");
    if (!dtabText) dtabText = legacy;
  }
  if (dtabText) {
    auto d = dtab::Dtab::parse(*dtabText);
    if (d) {
      rt.dtab = std::move(*d);
    } else {
      r.problems().error(r.childPath("dtab"), d.error().message());
    }
  }

  auto interp = r.field("interpreter");
  runtime::ConfigNode noInterp = runtime::ConfigNode::map({});
  ConfigReader interpReader = interp ? *interp : ConfigReader(noInterp, r.childPath("interpreter"), r.problems());
  if (auto k = registry.read(PluginCategory::Interpreter, interpReader, "default")) rt.interpreter = std::move(*k);
  bool remote = rt.interpreter.kind == "io.l5d.namerd.http";
  if (remote && !rt.dtab.empty()) {
    r.problems().warning(r.childPath("dtab"),
                         "not used: with interpreter io.l5d.namerd.http the namer service's dtab applies "
                         "(per-request l5d-dtab still does)");
  }
  for (std::size_t i = 0; i < rt.servers.size(); ++i) {
    if (!remote && !rt.servers[i].ns.empty()) {
      r.problems().warning(r.childPath("servers[" + std::to_string(i) + "].namespace"),
                           "not used: a namespace applies only with interpreter io.l5d.namerd.http");
    }
  }

  if (auto prefix = r.optionalString("dstPrefix")) {
    auto p = dtab::Path::parse(*prefix);
    if (p) {
      rt.dstPrefix = *p;
    } else {
      r.problems().error(r.childPath("dstPrefix"), p.error().message());
    }
  }
  if (auto c = r.field("client")) rt.client = readClient(*c, registry);
  if (!rt.client.loadBalancer) {
    runtime::ConfigNode empty = runtime::ConfigNode::map({});
    rt.client.loadBalancer = registry.read(
        PluginCategory::LoadBalancer, ConfigReader(empty, r.childPath("client.loadBalancer"), r.problems()),
        "p2c");
  }
  if (auto s = r.field("service")) rt.service = readService(*s);

  rt.bindingTimeoutMs = r.integer("bindingTimeoutMs", rt.bindingTimeoutMs, 1, 3'600'000);
  rt.maxHeadersKB = r.integer("maxHeadersKB", rt.maxHeadersKB, 1, 1024);
  rt.maxInitialLineKB = r.integer("maxInitialLineKB", rt.maxInitialLineKB, 1, 1024);
  rt.maxRequestKB = r.integer("maxRequestKB", rt.maxRequestKB, 1, 1 << 30);
  rt.maxResponseKB = r.integer("maxResponseKB", rt.maxResponseKB, 1, 1 << 30);
  rt.streamingEnabled = r.boolean("streamingEnabled", rt.streamingEnabled);
  rt.maxCallDepth = r.integer("maxCallDepth", rt.maxCallDepth, 1, 1'000'000);
  rt.maxDtabHeaderBytes = r.integer("maxLocalDtabKB", 8, 1, 1024) * 1024;

  r.ignore("bindingCache", "binding caches are sized automatically");
  r.ignore("experimental", "every router feature here is supported as is");
  r.ignore("maxErrResponseKB", "error responses are streamed like any other");
  r.ignore("streamAfterContentLengthKB", "bodies are always streamed");
  r.ignore("timeoutMs", "a legacy key; use service.totalTimeoutMs");
  r.ignore("compressionLevel", "responses are passed through as they are");
  for (const char* key : {"httpAccessLog", "httpAccessLogRotateCount", "httpAccessLogRollPolicy",
                          "httpAccessLogAppend"}) {
    r.ignore(key, "access logs are not implemented yet");
  }
  unsupported(r, "announcers", "announcers");
  unsupported(r, "originator", "originator routers");
  unsupported(r, "loggers", "request loggers");
  r.finish();
  return rt;
}

// The `namers` list: each kind's own keys, plus `prefix` (default /<kind>).
std::vector<NamerConfig> readNamers(ConfigReader& r, const PluginRegistry& registry) {
  std::vector<NamerConfig> out;
  for (auto& n : r.list("namers")) {
    std::string prefixText;
    std::vector<KindedConfig> transformers;
    auto k = registry.read(PluginCategory::Namer, n, std::nullopt, [&](ConfigReader& nr) {
      prefixText = nr.string("prefix", "");
      nr.ignore("experimental", "every namer here is supported as is");
      for (auto& t : nr.list("transformers")) {
        if (auto tk = registry.read(PluginCategory::Transformer, t)) transformers.push_back(*tk);
      }
    });
    if (!k) continue;
    if (prefixText.empty()) prefixText = "/" + k->kind;
    auto p = dtab::Path::parse(prefixText);
    if (!p) {
      r.problems().error(n.childPath("prefix"), p.error().message());
      continue;
    }
    out.push_back({std::move(*k), dtab::Path{"#"} + *p, std::move(transformers)});
  }
  return out;
}

}  // namespace

Expected<Config, std::vector<std::string>> checkConfig(const runtime::ConfigNode& root,
                                                       const PluginRegistry& registry) {
  runtime::ConfigProblems problems;
  Config cfg;
  ConfigReader r(root, "", problems);
  if (r.expectMap()) {
    if (auto a = r.field("admin")) cfg.admin = readAdmin(*a);
    if (auto d = r.field("dns")) cfg.dns = readDns(*d);

    cfg.namers = readNamers(r, registry);

    auto routers = r.list("routers");
    if (routers.empty()) problems.error("routers", "at least one router is required");
    for (auto& rt : routers) cfg.routers.push_back(readRouter(rt, registry));

    for (auto& t : r.list("telemetry")) {
      if (auto k = registry.read(PluginCategory::Telemeter, t)) cfg.telemetry.push_back(std::move(*k));
    }
    r.ignore("usage", "Switchyard sends no usage data");
    unsupported(r, "tracers", "the legacy tracers list; use telemetry kind io.l5d.zipkin");
    r.finish();
  }

  // Cross-checks: labels name metrics and must be unique; two servers cannot
  // share an address (port 0 asks the system for a free port).
  std::set<std::string> labels;
  std::set<std::pair<std::string, std::uint16_t>> addrs;
  if (cfg.admin.port != 0) addrs.insert({cfg.admin.ip, cfg.admin.port});
  for (std::size_t i = 0; i < cfg.routers.size(); ++i) {
    const auto& rt = cfg.routers[i];
    std::string at = "routers[" + std::to_string(i) + "]";
    if (!labels.insert(rt.label).second) {
      problems.error(at + ".label", "\"" + rt.label + "\" is used by another router; labels must be unique");
    }
    for (std::size_t j = 0; j < rt.servers.size(); ++j) {
      const auto& s = rt.servers[j];
      if (s.port != 0 && !addrs.insert({s.ip, s.port}).second) {
        problems.error(at + ".servers[" + std::to_string(j) + "]",
                       s.ip + ":" + std::to_string(s.port) + " is already used by another server");
      }
    }
  }

  if (!problems.ok()) return Unexpected(problems.errors());
  cfg.warnings = problems.warnings();
  return cfg;
}

Expected<NamerServiceConfig, std::vector<std::string>> checkNamerConfig(const runtime::ConfigNode& root,
                                                                        const PluginRegistry& registry) {
  runtime::ConfigProblems problems;
  NamerServiceConfig cfg;
  cfg.admin.port = 9991;  // Namerd's
  ConfigReader r(root, "", problems);
  if (r.expectMap()) {
    if (auto a = r.field("admin")) {
      cfg.admin = readAdmin(*a);
      if (!a->has("port")) cfg.admin.port = 9991;
    }
    if (auto d = r.field("dns")) cfg.dns = readDns(*d);
    cfg.namers = readNamers(r, registry);
    if (auto s = r.field("storage")) {
      if (auto k = registry.read(PluginCategory::Storage, *s)) cfg.storage = std::move(*k);
    }
    for (auto& i : r.list("interfaces")) {
      if (auto k = registry.read(PluginCategory::Interface, i)) cfg.interfaces.push_back(std::move(*k));
    }
    if (auto a = r.field("auth"); a && a->expectMap()) {
      cfg.adminToken = a->string("adminToken", "");
      if (auto ns = a->field("namespaceTokens"); ns && ns->expectMap()) {
        for (const auto& [name, value] : ns->node().entries()) {
          if (value.text().empty()) {
            problems.error(ns->childPath(name), "expected a token (a non-empty string)");
            continue;
          }
          cfg.namespaceTokens[name] = value.text();
        }
      }
      a->finish();
    }
    for (auto& t : r.list("telemetry")) {
      if (auto k = registry.read(PluginCategory::Telemeter, t)) cfg.telemetry.push_back(std::move(*k));
    }
    r.ignore("usage", "Switchyard sends no usage data");
    r.finish();
  }
  if (!problems.ok()) return Unexpected(problems.errors());
  cfg.warnings = problems.warnings();
  return cfg;
}

}  // namespace switchyard::router
