#include "router/builtin_plugins.h"

#include <algorithm>
#include <cstdlib>

#include "dtab/dtab.h"
#include "namer/local_stores.h"


namespace switchyard::router {

void addBuiltinPlugins(PluginRegistry& registry) {
  // The registry is captured by pointer: it outlives every check it runs.
  PluginRegistry* reg = &registry;
  registry.add({PluginCategory::Interpreter, "default",
                [reg](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                  auto s = std::make_shared<DefaultInterpreterSettings>();
                  for (auto& t : r.list("transformers")) {
                    if (auto k = reg->read(PluginCategory::Transformer, t)) s->transformers.push_back(*k);
                  }
                  return s;
                },
                nullptr, nullptr, nullptr});
  auto balancer = [](std::string kind, bool ewma) {
    return Plugin{PluginCategory::LoadBalancer, kind,
                  [kind, ewma](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                    auto s = std::make_shared<BalancerSettings>();
                    s->kind = kind;
                    if (kind != "roundRobin") s->maxEffort = r.integer("maxEffort", 5, 1, 100);
                    if (ewma) s->decayTimeMs = r.integer("decayTimeMs", 10'000, 1, 3'600'000);
                    r.ignore("enableProbation", "unhealthy endpoints are handled by the balancer");
                    return s;
                  },
                  nullptr, nullptr, nullptr};
  };
  registry.add({PluginCategory::Telemeter, "io.l5d.prometheus",
                [](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                  auto s = std::make_shared<PrometheusSettings>();
                  s->path = r.string("path", s->path);
                  if (s->path.empty() || s->path.front() != '/') {
                    r.problems().error(r.childPath("path"), "expected a path starting with /, got \"" + s->path + "\"");
                  }
                  s->prefix = r.string("prefix", "");
                  return s;
                },
                nullptr, nullptr, nullptr});
  registry.add({PluginCategory::Telemeter, "io.l5d.zipkin",
                [](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                  auto s = std::make_shared<ZipkinSettings>();
                  std::string host = r.string("host", "localhost");
                  if (host == "localhost") host = "127.0.0.1";
                  if (host.empty()) r.problems().error(r.childPath("host"), "expected an address or a host name");
                  s->host = host;  // a name is resolved through the dns block's servers
                  s->port = static_cast<std::uint16_t>(r.integer("port", 9411, 1, 65535));
                  s->sampleRate = r.number("sampleRate", 0.001, 0.0, 1.0);
                  s->batchSize = r.integer("batchSize", s->batchSize, 1, 10'000);
                  s->maxQueuedSpans = r.integer("maxQueuedSpans", s->maxQueuedSpans, 1, 1'000'000);
                  return s;
                },
                nullptr, nullptr, nullptr});
  registry.add({PluginCategory::Interpreter, "io.l5d.namerd.http",
                [reg](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                  auto s = std::make_shared<NamerdInterpreterSettings>();
                  std::string dst = r.requiredString("dst");
                  auto path = dtab::Path::parse(dst);
                  bool ok = path && path->size() == 4 && (*path)[0] == "$" && (*path)[1] == "inet";
                  int port = 0;
                  if (ok) {
                    std::string p((*path)[3]);
                    ok = !p.empty() && p.size() <= 5 && p.find_first_not_of("0123456789") == std::string::npos;
                    if (ok) port = std::stoi(p);
                    ok = ok && port > 0 && port < 65536;
                  }
                  if (!dst.empty() && !ok) {
                    r.problems().error(r.childPath("dst"),
                                       "expected /$/inet/<host>/<port> (the namer service's address), got \"" + dst + "\"");
                  } else if (ok) {
                    s->client.host = std::string((*path)[2]);
                    s->client.port = static_cast<std::uint16_t>(port);
                  }
                  if (auto ns = r.field("namespace")) {
                    if (ns->node().kind() == runtime::ConfigNode::Kind::Map) {
                      s->header = ns->requiredString("header");
                      s->ns = ns->string("default", s->ns);
                      for (auto& a : ns->list("allowed")) {
                        if (!namer::validNamespaceName(a.node().text())) {
                          a.error("invalid namespace name \"" + a.node().text() + "\"");
                          continue;
                        }
                        s->allowed.push_back(a.node().text());
                      }
                      if (!s->allowed.empty() &&
                          std::find(s->allowed.begin(), s->allowed.end(), s->ns) == s->allowed.end()) {
                        r.problems().error(ns->childPath("default"),
                                           "\"" + s->ns + "\" must be one of `allowed` (requests without the header use it)");
                      }
                      ns->finish();
                    } else {
                      s->ns = r.string("namespace", s->ns);
                    }
                    if (!namer::validNamespaceName(s->ns)) {
                      r.problems().error(r.childPath("namespace"), "invalid namespace name \"" + s->ns + "\"");
                    }
                  }
                  if (auto retry = r.field("retry"); retry && retry->expectMap()) {
                    // Seconds, as Linkerd's; a key not given keeps the default.
                    if (retry->has("baseSeconds")) {
                      s->client.retryBaseMs = static_cast<std::uint64_t>(retry->integer("baseSeconds", 1, 1, 3600)) * 1000;
                    }
                    if (retry->has("maxSeconds")) {
                      s->client.retryMaxMs = static_cast<std::uint64_t>(retry->integer("maxSeconds", 10, 1, 3600)) * 1000;
                    }
                    if (s->client.retryMaxMs < s->client.retryBaseMs) {
                      r.problems().error(retry->childPath("maxSeconds"), "must be at least baseSeconds");
                    }
                    retry->finish();
                  }
                  r.ignore("periodSecs", "bindings arrive on watch streams, not by polling");
                  r.ignore("experimental", "every interpreter here is supported as is");
                  if (r.has("tls")) r.problems().error(r.childPath("tls"), "TLS to the namer service is not supported by Switchyard yet");
                  for (auto& t : r.list("transformers")) {
                    if (auto k = reg->read(PluginCategory::Transformer, t)) s->transformers.push_back(*k);
                  }
                  return s;
                },
                nullptr, nullptr, nullptr});
  registry.add({PluginCategory::Interface, "io.l5d.httpController",
                [](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                  auto s = std::make_shared<HttpControllerSettings>();
                  s->ip = r.string("ip", s->ip);
                  s->port = static_cast<std::uint16_t>(r.integer("port", s->port, 0, 65535));
                  if (r.has("tls")) r.problems().error(r.childPath("tls"), "TLS on the namer API is not supported by Switchyard yet");
                  r.ignore("socketOptions", "sockets use the system's defaults");
                  return s;
                },
                nullptr, nullptr, nullptr});
  // Namerd's other interfaces serve Linkerd's thrift and gRPC interpreters;
  // Switchyard routers bind over HTTP. Configs that list them (nearly all
  // do, next to httpController) load, and say what is not served.
  for (const char* kind : {"io.l5d.thriftNameInterpreter", "io.l5d.mesh"}) {
    registry.add({PluginCategory::Interface, kind,
                  [kind](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                    r.warning(std::string(kind) +
                              " is not served: Switchyard routers bind through io.l5d.httpController "
                              "(interpreter io.l5d.namerd.http); this interface is skipped");
                    for (const auto& entry : r.node().entries()) r.has(entry.first);
                    return std::make_shared<int>(0);
                  },
                  nullptr, nullptr, nullptr});
  }
  registry.add(storagePlugin<MemoryStoreSettings>(
      "io.l5d.inMemory",
      [](runtime::ConfigReader& r) -> std::optional<MemoryStoreSettings> {
        MemoryStoreSettings s;
        if (auto ns = r.field("namespaces"); ns && ns->expectMap()) {
          for (const auto& [name, value] : ns->node().entries()) {
            std::string at = ns->childPath(name);
            if (!namer::validNamespaceName(name)) {
              r.problems().error(at, "invalid namespace name: use 1-128 of A-Z a-z 0-9 . _ -");
              continue;
            }
            auto d = dtab::Dtab::parse(value.text());
            if (!d) {
              r.problems().error(at, "invalid dtab: " + d.error().message());
              continue;
            }
            s.namespaces[name] = namer::StoredNamespace{d->show(), {}, {}};
          }
        }
        return s;
      },
      [](const MemoryStoreSettings& s, runtime::Loop&) -> std::unique_ptr<namer::DtabStore> {
        return std::make_unique<namer::MemoryStore>(s.namespaces);
      }));
  registry.add(storagePlugin<FileStoreSettings>(
      "file",
      [](runtime::ConfigReader& r) -> std::optional<FileStoreSettings> {
        FileStoreSettings s;
        s.dir = r.requiredString("dir");
        return s;
      },
      [](const FileStoreSettings& s, runtime::Loop&) -> std::unique_ptr<namer::DtabStore> {
        return std::make_unique<namer::FileStore>(s.dir);
      }));
  registry.add({PluginCategory::Telemeter, "io.l5d.recentRequests",
                [](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                  auto s = std::make_shared<RecentRequestsSettings>();
                  if (!r.has("sampleRate")) {
                    r.problems().error(r.childPath("sampleRate"), "required: the share of requests to keep, 0.0 to 1.0");
                  }
                  s->sampleRate = r.number("sampleRate", 1.0, 0.0, 1.0);
                  s->capacity = r.integer("capacity", s->capacity, 1, 10'000);
                  return s;
                },
                nullptr, nullptr, nullptr});
  auto transformer = [](std::string kind, auto read) {
    return Plugin{PluginCategory::Transformer, std::move(kind),
                  [read](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
                    auto make = read(r);
                    return std::make_shared<TransformerFactory>(TransformerFactory{std::move(make)});
                  },
                  nullptr, nullptr, nullptr};
  };
  registry.add(transformer("io.l5d.port", [](runtime::ConfigReader& r) {
    if (!r.has("port")) r.problems().error(r.childPath("port"), "required: the port every endpoint is sent to");
    auto port = static_cast<std::uint16_t>(r.integer("port", 1, 1, 65535));
    return std::function<std::shared_ptr<const Transformer>()>([port] { return portTransformer(port); });
  }));
  registry.add(transformer("io.l5d.k8s.localnode", [](runtime::ConfigReader& r) {
    // Endpoints are matched by node name (NODE_NAME) whatever hostNetwork
    // says; without NODE_NAME, by POD_IP's /24 as Linkerd did.
    r.boolean("hostNetwork", false);
    return std::function<std::shared_ptr<const Transformer>()>([] {
      const char* node = std::getenv("NODE_NAME");
      const char* podIp = std::getenv("POD_IP");
      return localNodeTransformer(node ? node : "", podIp ? podIp : "");
    });
  }));
  registry.add(transformer("io.l5d.k8s.daemonset", [](runtime::ConfigReader& r) {
    std::string ns = r.requiredString("namespace");
    std::string service = r.requiredString("service");
    std::string port = r.requiredString("port");
    // Router pods are matched by node name either way; hostNetwork changes nothing.
    r.boolean("hostNetwork", false);
    r.ignore("k8sHost", "router pods are looked up through the io.l5d.k8s namer's API server");
    r.ignore("k8sPort", "router pods are looked up through the io.l5d.k8s namer's API server");
    return std::function<std::shared_ptr<const Transformer>()>([ns, service, port] {
      return daemonSetTransformer(dtab::Path{"#", "io.l5d.k8s"}, ns, port, service);
    });
  }));
  registry.add(transformer("io.l5d.localhost", [](runtime::ConfigReader&) {
    return std::function<std::shared_ptr<const Transformer>()>([] { return localhostTransformer(); });
  }));
  registry.add(transformer("io.l5d.specificHost", [](runtime::ConfigReader& r) {
    // Resolved when the router starts, not by --check: a name that does not
    // resolve then fails the requests it would carry, and nothing else.
    std::string host = r.requiredString("host");
    return std::function<std::shared_ptr<const Transformer>()>([host] { return specificHostTransformer(host); });
  }));
  // io.l5d.replace and io.l5d.const take a path.
  auto pathTransformer = [transformer](std::string kind, std::shared_ptr<const Transformer> (*make)(dtab::Path)) {
    return transformer(std::move(kind), [make](runtime::ConfigReader& r) {
      auto path = dtab::Path::parse(r.requiredString("path"));
      if (!path) r.problems().error(r.childPath("path"), path.error().message());
      dtab::Path p = path ? *path : dtab::Path{};
      return std::function<std::shared_ptr<const Transformer>()>([make, p] { return make(p); });
    });
  };
  registry.add(pathTransformer("io.l5d.replace", replaceTransformer));
  registry.add(pathTransformer("io.l5d.const", constTransformer));
  registry.add(balancer("p2c", false));
  registry.add(balancer("ewma", true));
  registry.add(balancer("roundRobin", false));
}

}  // namespace switchyard::router
