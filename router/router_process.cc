#include "router/router_process.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "runtime/signal_watch.h"

namespace switchyard::router {

RouterProcess::RouterProcess(Config config, runtime::ConfigNode source, const PluginRegistry&, int workers)
    : config_(std::move(config)), source_(std::move(source)), workerCount_(workers) {
  for (const auto& rc : config_.routers) {
    auto plan = std::make_unique<RouterPlan>();
    plan->config = rc;
    std::vector<std::unique_ptr<Identifier>> ids;
    IdentifierContext ctx{rc.dstPrefix};
    for (const auto& k : rc.identifiers) ids.push_back(k.plugin->makeIdentifier(k.settings.get(), ctx));
    plan->identifier = std::make_unique<IdentifierChain>(std::move(ids));
    if (rc.client.loadBalancer && rc.client.loadBalancer->settings) {
      plan->balancer = *static_cast<const BalancerSettings*>(rc.client.loadBalancer->settings.get());
    } else {
      plan->balancer.kind = "p2c";
    }
    plans_.push_back(std::move(plan));
  }
  for (const auto& n : config_.namers) {
    if (!n.plugin.plugin->makeNamer) continue;
    namers_.emplace_back(n.prefix, n.plugin.plugin->makeNamer(n.plugin.settings.get(), n.prefix));
  }
  auto state = std::make_shared<NamingState>();
  for (auto& [prefix, host] : namers_) state->namers.push_back({prefix, host->current()});
  naming_ = state;
}

RouterProcess::~RouterProcess() {
  workers_.clear();
  admin_.reset();
  namers_.clear();
}

void RouterProcess::publishNaming() {
  auto state = std::make_shared<NamingState>();
  state->generation = naming_->generation + 1;
  for (auto& [prefix, host] : namers_) state->namers.push_back({prefix, host->current()});
  naming_ = state;
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->loop().post([worker, state] { worker->setNaming(state); });
  }
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
  AdminServer::Context ctx{&plans_, &source_, [this] { return naming_; }, [this] { shutdown(); },
                           [this](auto done) { collectMetrics(std::move(done)); }, {}};
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

  // SIGTERM and SIGINT drain, on the main loop.
  runtime::SignalWatch sigterm(loop_, SIGTERM, [this] { shutdown(); });
  runtime::SignalWatch sigint(loop_, SIGINT, [this] { shutdown(); });

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

  admin_.reset();
  namers_.clear();
  workers_.clear();
  std::fprintf(stderr, "switchyard: stopped\n");
  return 0;
}

}  // namespace switchyard::router
