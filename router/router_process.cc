#include "router/router_process.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <fstream>
#include <thread>

#include "router/namers.h"
#include "runtime/http_server.h"
#include "runtime/signal_watch.h"

namespace switchyard::router {

namespace {

bool sameNode(const runtime::ConfigNode& a, const runtime::ConfigNode& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case runtime::ConfigNode::Kind::Null:
      return true;
    case runtime::ConfigNode::Kind::Scalar:
      return a.text() == b.text() && a.quoted() == b.quoted();
    case runtime::ConfigNode::Kind::List:
      return std::equal(a.items().begin(), a.items().end(), b.items().begin(), b.items().end(), sameNode);
    case runtime::ConfigNode::Kind::Map:
      return std::equal(a.entries().begin(), a.entries().end(), b.entries().begin(), b.entries().end(),
                        [](const auto& x, const auto& y) { return x.first == y.first && sameNode(x.second, y.second); });
  }
  return false;
}

// The document without the routers' dtabs: what must stay the same for a
// reload to apply without a restart.
runtime::ConfigNode withoutDtabs(const runtime::ConfigNode& root) {
  if (!root.isMap()) return root;
  std::vector<std::pair<std::string, runtime::ConfigNode>> entries;
  for (const auto& [key, value] : root.entries()) {
    if (key != "routers" || !value.isList()) {
      entries.emplace_back(key, value);
      continue;
    }
    std::vector<runtime::ConfigNode> routers;
    for (const auto& r : value.items()) {
      if (!r.isMap()) {
        routers.push_back(r);
        continue;
      }
      std::vector<std::pair<std::string, runtime::ConfigNode>> kept;
      for (const auto& e : r.entries()) {
        if (e.first != "dtab" && e.first != "baseDtab") kept.push_back(e);
      }
      routers.push_back(runtime::ConfigNode::map(std::move(kept)));
    }
    entries.emplace_back(key, runtime::ConfigNode::list(std::move(routers)));
  }
  return runtime::ConfigNode::map(std::move(entries));
}

}  // namespace

RouterProcess::RouterProcess(Config config, runtime::ConfigNode source, const PluginRegistry& registry,
                             int workers, std::string configFile)
    : config_(std::move(config)), source_(std::move(source)), registry_(registry),
      configFile_(std::move(configFile)), workerCount_(workers) {
  for (const auto& rc : config_.routers) {
    auto plan = std::make_unique<RouterPlan>();
    plan->index = plans_.size();
    plan->config = rc;
    dtabs_.push_back(rc.dtab);
    std::vector<std::unique_ptr<Identifier>> ids;
    IdentifierContext ctx{rc.dstPrefix};
    for (const auto& k : rc.identifiers) ids.push_back(k.plugin->makeIdentifier(k.settings.get(), ctx));
    plan->identifier = std::make_unique<IdentifierChain>(std::move(ids));
    if (rc.client.loadBalancer && rc.client.loadBalancer->settings) {
      plan->balancer = *static_cast<const BalancerSettings*>(rc.client.loadBalancer->settings.get());
    } else {
      plan->balancer.kind = "p2c";
    }
    const std::vector<KindedConfig>* transformers = nullptr;
    if (rc.interpreter.kind == "default" && rc.interpreter.settings) {
      transformers = &static_cast<const DefaultInterpreterSettings*>(rc.interpreter.settings.get())->transformers;
    } else if (rc.interpreter.kind == "io.l5d.namerd.http") {
      transformers = &static_cast<const NamerdInterpreterSettings*>(rc.interpreter.settings.get())->transformers;
    }
    if (transformers) {
      for (const auto& t : *transformers) {
        plan->transformers.push_back(static_cast<const TransformerFactory*>(t.settings.get())->make());
      }
    }
    std::unique_ptr<namer::NamerdClient> remote;
    if (rc.interpreter.kind == "io.l5d.namerd.http") {
      plan->remote = static_cast<const NamerdInterpreterSettings*>(rc.interpreter.settings.get());
      remote = std::make_unique<namer::NamerdClient>(loop_, plan->remote->client, config_.dns, rc.label);
    }
    remotes_.push_back(std::move(remote));
    plans_.push_back(std::move(plan));
  }
  namers_ = makeNamerHosts(config_.namers, config_.dns, [this] {
    return hosts_ ? dtab::inetNamers(hosts_->current()) : std::vector<dtab::NamerEntry>{};
  });
  auto hosts = namer::HostResolver::create(loop_, config_.dns);
  if (hosts) {
    hosts_ = std::move(*hosts);
  } else {
    std::fprintf(stderr, "switchyard: warning: no DNS resolver (%s): host names under /$/inet will not resolve\n",
                 hosts.error().c_str());
  }
  naming_ = makeNaming(0);
}

std::shared_ptr<NamingState> RouterProcess::makeNaming(std::uint64_t generation) const {
  auto state = std::make_shared<NamingState>();
  state->generation = generation;
  state->dtabs = dtabs_;
  for (const auto& [prefix, host] : namers_) state->namers.push_back({prefix, host->current()});
  for (const auto& r : remotes_) {
    state->remote.push_back(r ? r->current() : nullptr);
    state->wantRemote.push_back(r ? r->want() : nullptr);
  }
  // The resolving inet namers come before the system ones, which answer a
  // host name with "no resolver".
  if (hosts_) {
    for (auto& e : dtab::inetNamers(hosts_->current())) state->namers.push_back(std::move(e));
  }
  return state;
}

RouterProcess::~RouterProcess() {
  workers_.clear();
  remotes_.clear();
  admin_.reset();
  hosts_.reset();
  namers_.clear();
}

void RouterProcess::publishNaming() {
  std::shared_ptr<const NamingState> state = makeNaming(naming_->generation + 1);
  naming_ = state;
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->loop().post([worker, state] { worker->setNaming(state); });
  }
}

void RouterProcess::reload(const char* why) {
  if (shuttingDown_) return;
  auto doc = runtime::loadConfigFile(configFile_);
  if (!doc) {
    std::fprintf(stderr, "switchyard: reload (%s) failed, keeping the running config: %s\n", why, doc.error().c_str());
    return;
  }
  if (sameNode(*doc, source_)) return;  // the file was touched, not changed
  auto cfg = checkConfig(*doc, registry_);
  if (!cfg) {
    for (const auto& e : cfg.error()) {
      std::fprintf(stderr, "switchyard: reload (%s) failed, keeping the running config: %s: %s\n", why,
                   configFile_.c_str(), e.c_str());
    }
    return;
  }
  bool onlyDtabs = sameNode(withoutDtabs(*doc), withoutDtabs(source_));
  if (!onlyDtabs) {
    std::fprintf(stderr,
                 "switchyard: reload (%s): %s changed beyond routers[].dtab; only dtabs are applied while "
                 "running, the rest takes effect at the next start\n",
                 why, configFile_.c_str());
  }
  std::vector<std::string> changed;
  for (const auto& rc : cfg->routers) {
    for (const auto& plan : plans_) {
      if (plan->config.label != rc.label || dtabs_[plan->index].show() == rc.dtab.show()) continue;
      dtabs_[plan->index] = rc.dtab;
      changed.push_back("router " + rc.label + " has a new dtab: " + rc.dtab.show());
    }
  }
  if (onlyDtabs) source_ = std::move(*doc);
  if (changed.empty()) return;
  for (const auto& line : changed) std::fprintf(stderr, "switchyard: reload (%s): %s\n", why, line.c_str());
  publishNaming();
}

std::vector<ProcessMetric> RouterProcess::processMetrics() const {
  std::vector<ProcessMetric> out;
  if (zipkin_) {
    auto z = zipkin_->stats();
    out.push_back({"zipkin/spans_sent", "zipkin:spans_sent", {}, true, "Spans the collector accepted",
                   static_cast<double>(z.sent)});
    out.push_back({"zipkin/spans_dropped", "zipkin:spans_dropped", {}, true,
                   "Spans dropped: queue full, or the collector failed or was unreachable",
                   static_cast<double>(z.dropped)});
    out.push_back({"zipkin/batches_failed", "zipkin:batches_failed", {}, true, "Span batches the collector did not accept",
                   static_cast<double>(z.failedBatches)});
  }
  for (std::size_t i = 0; i < remotes_.size(); ++i) {
    if (!remotes_[i]) continue;
    auto st = remotes_[i]->stats();
    const std::string& label = plans_[i]->config.label;
    std::string at = "rt/" + label + "/interpreter/namerd/";
    std::vector<std::pair<std::string, std::string>> l{{"rt", label}};
    out.push_back({at + "names", "rt:interpreter:namerd:names", l, false,
                   "Names this router follows through the namer service", static_cast<double>(st.names)});
    out.push_back({at + "streams_connected", "rt:interpreter:namerd:streams_connected", l, false,
                   "Watch streams open to the namer service now (fewer than names: routing on last bindings)",
                   static_cast<double>(st.connected)});
    out.push_back({at + "reconnects", "rt:interpreter:namerd:reconnects", l, true,
                   "Watch streams to the namer service that broke and were reopened", static_cast<double>(st.reconnects)});
    out.push_back({at + "updates", "rt:interpreter:namerd:updates", l, true,
                   "Bound trees received from the namer service", static_cast<double>(st.updates)});
  }
  for (const auto& [prefix, host] : namers_) {
    for (const auto& st : host->stats()) {
      out.push_back({"namer" + prefix.show() + "/" + st.name, "namer:" + st.name, {{"namer", prefix.show()}},
                     st.counter, st.help, st.value});
    }
  }
  if (!hosts_) return out;
  auto st = hosts_->stats();
  out.push_back({"inet/dns/lookups", "inet:dns:lookups", {}, true, "DNS lookups of /$/inet host names",
                 static_cast<double>(st.lookups)});
  out.push_back({"inet/dns/failures", "inet:dns:failures", {}, true,
                 "DNS lookups that got no usable answer (timeouts, SERVFAIL; not NXDOMAIN)",
                 static_cast<double>(st.failures)});
  for (const auto& h : st.hosts) {
    // A host element may hold any byte; a '/' would add a level to the name.
    std::string shown;
    for (char ch : h.host) shown += ch == '/' ? std::string("%2F") : std::string(1, ch);
    std::string at = "inet/dns/host/" + shown + "/";
    out.push_back({at + "resolved", "inet:dns:resolved", {{"host", h.host}}, false,
                   "1 if the host name has addresses now", h.state == "resolved" ? 1.0 : 0.0});
    out.push_back({at + "age_secs", "inet:dns:age_secs", {{"host", h.host}}, false,
                   "Seconds since the host's addresses were last confirmed by DNS", h.ageSecs});
  }
  return out;
}

void RouterProcess::collectMetrics(std::function<void(MetricsSnapshot)> done) {
  // Each worker copies its own metrics on its own loop and posts the copy
  // back here: no lock anywhere, and the request path never waits.
  struct Gather {
    MetricsSnapshot merged;
    std::size_t left;
    std::function<void(MetricsSnapshot)> done;
  };
  auto g = std::make_shared<Gather>(Gather{{}, workers_.size(), std::move(done)});
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->loop().post([this, worker, g] {
      MetricsSnapshot copy = worker->metricsSnapshot();
      loop_.post([g, copy = std::move(copy)] {
        for (const auto& [label, m] : copy) g->merged[label].merge(m);
        if (--g->left == 0) g->done(std::move(g->merged));
      });
    });
  }
}

std::string RouterProcess::portsJson() const {
  std::string out = "{\"admin\": " + std::to_string(adminPort_) + ", \"routers\": {";
  for (std::size_t r = 0; r < plans_.size(); ++r) {
    if (r) out += ", ";
    out += "\"" + plans_[r]->config.label + "\": [";
    for (std::size_t s = 0; s < ports_[r].size(); ++s) out += (s ? ", " : "") + std::to_string(ports_[r][s]);
    out += "]";
  }
  return out + "}}";
}

void RouterProcess::shutdown() {
  if (shuttingDown_) return;
  shuttingDown_ = true;
  std::fprintf(stderr, "switchyard: draining (up to %lld ms)\n", static_cast<long long>(config_.admin.shutdownGraceMs));
  auto grace = static_cast<std::uint64_t>(config_.admin.shutdownGraceMs);
  for (auto& w : workers_) w->drain(grace);
  // The workers end their loops; the main loop ends once they are joined.
  std::thread([this] {
    for (auto& w : workers_) w->join();
    loop_.post([this] { loop_.stop(); });
  }).detach();
}

int RouterProcess::run() {
  // A peer that closes while we write must be an error on that socket, not
  // a SIGPIPE that kills the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Listen on everything first: a port that cannot be bound is a start-up
  // error, before any request is served.
  std::vector<std::vector<std::uint16_t>> wanted;
  for (const auto& p : plans_) {
    wanted.emplace_back();
    for (const auto& s : p->config.servers) wanted.back().push_back(s.port);
  }
  for (int i = 0; i < workerCount_; ++i) {
    auto w = std::make_unique<Worker>(plans_, naming_);
    auto bound = w->listen(wanted, /*first=*/i == 0);
    if (!bound) {
      std::fprintf(stderr, "switchyard: %s\n", bound.error().c_str());
      return 1;
    }
    // Port 0: later workers share the port the first one got.
    wanted = *bound;
    ports_ = *bound;
    workers_.push_back(std::move(w));
  }
  for (const auto& t : config_.telemetry) {
    if (t.kind != "io.l5d.zipkin") continue;
    const auto& settings = *static_cast<const ZipkinSettings*>(t.settings.get());
    zipkin_ = std::make_unique<ZipkinExporter>(loop_, settings, config_.dns);
    for (auto& w : workers_) {
      // Batches travel from each worker's loop to the exporter on this one.
      w->setTracer(std::make_unique<Tracer>(w->loop(), settings, [this](SpanBatch batch, std::uint64_t dropped) {
        loop_.post([this, batch = std::move(batch), dropped]() mutable { zipkin_->add(std::move(batch), dropped); });
      }));
    }
    break;  // one exporter
  }
  AdminServer::Context ctx{&plans_, &source_, [this] { return naming_; }, [this] { shutdown(); },
                           [this](auto done) { collectMetrics(std::move(done)); },
                           [this] { return processMetrics(); }, {}, {}, {}};
  ctx.remoteDelegate = [this](const RouterPlan& plan, const std::string& dtab, const std::string& path,
                              std::function<void(Expected<std::string, std::string>)> done) {
    auto& remote = remotes_[plan.index];
    std::string target = "/api/1/delegate/" + runtime::percentEncode(plan.remote->ns) +
                         "?path=" + runtime::percentEncode(path) + "&dtab=" + runtime::percentEncode(dtab);
    remote->get(target, [done = std::move(done)](Expected<runtime::HttpResult, std::string> r) {
      if (!r) return done(Unexpected(r.error()));
      if (r->status != 200) return done(Unexpected("answered " + std::to_string(r->status) + ": " + r->body));
      done(std::move(r->body));
    });
  };
  for (const auto& t : config_.telemetry) {
    if (t.kind != "io.l5d.recentRequests") continue;
    const auto* settings = static_cast<const RecentRequestsSettings*>(t.settings.get());
    for (auto& w : workers_) w->setRecent(std::make_unique<RecentRequests>(*settings));
    std::size_t capacity = static_cast<std::size_t>(settings->capacity);
    ctx.collectRecent = [this, capacity](std::function<void(std::vector<RecentRequest>)> done) {
      // As metrics: each worker copies its ring on its own loop.
      struct Gather {
        std::vector<RecentRequest> all;
        std::size_t left;
        std::function<void(std::vector<RecentRequest>)> done;
      };
      auto g = std::make_shared<Gather>(Gather{{}, workers_.size(), std::move(done)});
      for (auto& w : workers_) {
        Worker* worker = w.get();
        worker->loop().post([this, worker, g, capacity] {
          std::vector<RecentRequest> copy;
          if (worker->recent()) copy.assign(worker->recent()->entries().begin(), worker->recent()->entries().end());
          loop_.post([g, capacity, copy = std::move(copy)]() mutable {
            for (auto& r : copy) g->all.push_back(std::move(r));
            if (--g->left == 0) g->done(newest(std::move(g->all), capacity));
          });
        });
      }
    };
    break;  // one
  }
  for (const auto& t : config_.telemetry) {
    if (t.kind != "io.l5d.prometheus") continue;
    const auto* s = static_cast<const PrometheusSettings*>(t.settings.get());
    ctx.prometheusPaths.emplace_back(s->path, s->prefix);
  }
  admin_ = std::make_unique<AdminServer>(loop_, std::move(ctx));
  auto adminPort = admin_->listen(config_.admin.ip, config_.admin.port);
  if (!adminPort) {
    std::fprintf(stderr, "switchyard: %s\n", adminPort.error().c_str());
    return 1;
  }
  adminPort_ = *adminPort;

  for (auto& [prefix, host] : namers_) host->start(loop_, [this] { publishNaming(); });
  if (hosts_) hosts_->start([this] { publishNaming(); });
  for (auto& r : remotes_) {
    if (r) r->start([this] { publishNaming(); });
  }

  // SIGTERM and SIGINT drain, on the main loop.
  runtime::SignalWatch sigterm(loop_, SIGTERM, [this] { shutdown(); });
  runtime::SignalWatch sigint(loop_, SIGINT, [this] { shutdown(); });
  // Dtab changes apply at once: on SIGHUP, or when the config's directory
  // changes (an editor's save, a Kubernetes ConfigMap's symlink swap).
  runtime::SignalWatch sighup(loop_, SIGHUP, [this] { reload("SIGHUP"); });
  if (!configFile_.empty()) {
    auto slash = configFile_.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : configFile_.substr(0, slash);
    configWatch_ = runtime::FsWatch::start(loop_, dir, 100, [this] { reload("the file changed"); });
  }

  for (auto& w : workers_) w->startThread();

  if (const char* portsFile = std::getenv("SWITCHYARD_PORTS_FILE")) {
    std::string tmp = std::string(portsFile) + ".tmp";
    std::ofstream(tmp) << portsJson() << "\n";
    std::rename(tmp.c_str(), portsFile);
  }
  for (std::size_t r = 0; r < plans_.size(); ++r) {
    for (std::size_t s = 0; s < ports_[r].size(); ++s) {
      std::fprintf(stderr, "switchyard: router %s serving on %s:%u\n", plans_[r]->config.label.c_str(),
                   plans_[r]->config.servers[s].ip.c_str(), ports_[r][s]);
    }
  }
  std::fprintf(stderr, "switchyard: admin on %s:%u, %d worker(s)\n", config_.admin.ip.c_str(), adminPort_,
               workerCount_);

  loop_.run();

  configWatch_.reset();
  admin_.reset();
  workers_.clear();
  zipkin_.reset();
  hosts_.reset();
  remotes_.clear();
  namers_.clear();
  workers_.clear();
  std::fprintf(stderr, "switchyard: stopped\n");
  return 0;
}

}  // namespace switchyard::router
