// `switchyard namer -c CONFIG`: the namer service (Namerd's role). It keeps
// dtabs by namespace in its storage, hosts namers, and answers routers and
// operators over the io.l5d.httpController API; see namer/namer_api.h.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <tuple>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "dtab/system_namers.h"
#include "namer/host_resolver.h"
#include "namer/local_stores.h"
#include "namer/namer_api.h"
#include "plugins/registry.h"
#include "router/builtin_plugins.h"
#include "router/config.h"
#include "router/namers.h"
#include "runtime/config_node.h"
#include "runtime/http_server.h"
#include "runtime/signal_watch.h"

namespace switchyard::app {
namespace {

struct NamerOptions {
  std::string config;
  bool check = false;
};

class NamerProcess {
 public:
  NamerProcess(router::NamerServiceConfig config, std::string configPath)
      : config_(std::move(config)), configPath_(std::move(configPath)) {}

  int run() {
    std::signal(SIGPIPE, SIG_IGN);
    if (config_.storage) {
      store_ = config_.storage->plugin->makeStore(config_.storage->settings.get(), loop_);
    } else {
      std::fprintf(stderr, "switchyard: namer: no storage configured; keeping dtabs in %s\n",
                   router::NamerServiceConfig::kDefaultStorageDir);
      store_ = std::make_unique<namer::FileStore>(router::NamerServiceConfig::kDefaultStorageDir);
    }
    namers_ = router::makeNamerHosts(config_.namers, config_.dns, [this] {
      return hosts_ ? dtab::inetNamers(hosts_->current()) : std::vector<dtab::NamerEntry>{};
    });
    if (auto hosts = namer::HostResolver::create(loop_, config_.dns)) {
      hosts_ = std::move(*hosts);
    } else {
      std::fprintf(stderr, "switchyard: namer: warning: no DNS resolver (%s): host names under /$/inet will not resolve\n",
                   hosts.error().c_str());
    }

    namer::ApiAuth auth{config_.adminToken, config_.namespaceTokens};
    if (auth.open()) {
      std::fprintf(stderr,
                   "switchyard: namer: warning: no API tokens are configured (auth.adminToken, "
                   "auth.namespaceTokens): anyone who reaches the API can change every namespace\n");
    }
    api_ = std::make_unique<namer::NamerApi>(loop_, *store_, std::move(auth), [this] { return namers(); });

    // Nothing is served until the store's state is known: a store that
    // answers later (etcd) calls back from the loop.
    runtime::SignalWatch sigterm(loop_, SIGTERM, [this] { shutdown(); });
    runtime::SignalWatch sigint(loop_, SIGINT, [this] { shutdown(); });
    runtime::SignalWatch sighup(loop_, SIGHUP, [] {
      std::fprintf(stderr, "switchyard: namer: SIGHUP: nothing to reload (dtabs live in the storage; "
                           "a config change needs a restart)\n");
    });
    for (const auto& t : config_.telemetry) {
      if (t.kind == "io.l5d.prometheus") {
        prometheusPaths_.push_back(static_cast<const router::PrometheusSettings*>(t.settings.get())->path);
      } else {
        std::fprintf(stderr, "switchyard: namer: warning: telemetry kind %s is not used by the namer service\n",
                     t.kind.c_str());
      }
    }
    store_->start(
        [this](Expected<namer::NamespaceMap, std::string> first) {
          if (!first) {
            std::fprintf(stderr, "switchyard: namer: storage %s: %s\n", store_->describe().c_str(),
                         first.error().c_str());
            exitCode_ = 1;
            loop_.stop();
            return;
          }
          api_->setNamespaces(*first);
          if (!serve()) {
            exitCode_ = 1;
            loop_.stop();
          }
        },
        [this](const namer::NamespaceMap& map) { api_->setNamespaces(map); });
    loop_.run();
    api_.reset();
    admin_.reset();
    hosts_.reset();
    namers_.clear();
    store_.reset();
    loop_.drainDeferred();
    return exitCode_;
  }

 private:
  // Listens (API and admin) and starts the namers; false after saying why not.
  bool serve() {
    std::vector<router::HttpControllerSettings> interfaces;
    for (const auto& i : config_.interfaces) {
      if (i.kind != "io.l5d.httpController") continue;  // warned about at load
      interfaces.push_back(*static_cast<const router::HttpControllerSettings*>(i.settings.get()));
    }
    if (interfaces.empty()) interfaces.emplace_back();  // Namerd's default: 127.0.0.1:4180
    nlohmann::json apiPorts = nlohmann::json::array();
    for (const auto& i : interfaces) {
      auto port = api_->listen(i.ip, i.port);
      if (!port) {
        std::fprintf(stderr, "switchyard: namer: cannot serve the API on %s:%u: %s\n", i.ip.c_str(), i.port,
                     port.error().c_str());
        return false;
      }
      std::fprintf(stderr, "switchyard: namer: API on %s:%u (storage: %s)\n", i.ip.c_str(), *port,
                   store_->describe().c_str());
      apiPorts.push_back(*port);
    }
    admin_ = std::make_unique<runtime::HttpServer>(
        loop_, runtime::HttpServer::Options{64 * 1024, 64 * 1024, 8 << 20, "admin"},
        [this](runtime::HttpRequest&& req, std::shared_ptr<runtime::HttpResponder> r) { admin(req, *r); });
    auto adminPort = admin_->listen(config_.admin.ip, config_.admin.port);
    if (!adminPort) {
      std::fprintf(stderr, "switchyard: namer: cannot serve admin on %s:%u: %s\n", config_.admin.ip.c_str(),
                   config_.admin.port, adminPort.error().c_str());
      return false;
    }
    std::fprintf(stderr, "switchyard: namer: admin on %s:%u\n", config_.admin.ip.c_str(), *adminPort);
    // Ports asked as 0 are told to whoever started us (tests), as the router does.
    if (const char* portsFile = std::getenv("SWITCHYARD_PORTS_FILE")) {
      std::string tmp = std::string(portsFile) + ".tmp";
      std::ofstream(tmp) << nlohmann::json{{"admin", *adminPort}, {"api", apiPorts}}.dump() << "\n";
      std::rename(tmp.c_str(), portsFile);
    }

    for (auto& [prefix, host] : namers_) host->start(loop_, [this] { api_->namingChanged(); });
    if (hosts_) hosts_->start([this] { api_->namingChanged(); });
    return true;
  }

  std::vector<dtab::NamerEntry> namers() const {
    std::vector<dtab::NamerEntry> out;
    for (const auto& [prefix, host] : namers_) out.push_back({prefix, host->current()});
    if (hosts_) {
      for (auto& e : dtab::inetNamers(hosts_->current())) out.push_back(std::move(e));
    }
    return out;
  }

  void admin(const runtime::HttpRequest& req, runtime::HttpResponder& r) {
    std::string path = req.path();
    if (path == "/admin/ping") return r.reply(200, "text/plain", "pong");
    // One metric: its metrics.json name, its Prometheus family and labels.
    struct Metric {
      std::string name, family, labels;
      bool counter;
      std::string help;
      double value;
    };
    const auto& s = api_->stats();
    std::vector<Metric> metrics = {
        {"namer/api/requests", "namer_api_requests", "", true, "API requests", double(s.requests)},
        {"namer/api/writes", "namer_api_writes", "", true, "Namespace writes acknowledged", double(s.writes)},
        {"namer/api/rejected", "namer_api_rejected", "", true, "API requests answered 4xx", double(s.rejected)},
        {"namer/api/watches", "namer_api_watches", "", false, "Watch streams open now", double(s.watches)},
        {"namer/api/updates_sent", "namer_api_updates_sent", "", true, "Changes sent on watch streams",
         double(s.updatesSent)},
    };
    for (const auto& [prefix, host] : namers_) {
      std::string label;  // a Prometheus label value: \ and " escaped
      for (char ch : prefix.show()) label += ch == '\\' || ch == '"' ? std::string("\\") + ch : std::string(1, ch);
      for (const auto& st : host->stats()) {
        metrics.push_back({"namer" + prefix.show() + "/" + st.name, "namer_" + st.name,
                           "namer=\"" + label + "\"", st.counter, st.help, st.value});
      }
    }
    if (path == "/admin/metrics.json") {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& m : metrics) j[m.name] = m.value;
      return r.reply(200, "application/json", j.dump());
    }
    if (path == "/admin/metrics/prometheus" ||
        std::find(prometheusPaths_.begin(), prometheusPaths_.end(), path) != prometheusPaths_.end()) {
      // A family's samples together, its HELP and TYPE once.
      std::stable_sort(metrics.begin(), metrics.end(),
                       [](const Metric& x, const Metric& y) { return x.family < y.family; });
      std::string out;
      for (std::size_t i = 0; i < metrics.size(); ++i) {
        const Metric& m = metrics[i];
        std::string n = m.family + (m.counter ? "_total" : "");
        if (i == 0 || metrics[i - 1].family != m.family) {
          out += "# HELP " + n + " " + m.help + "\n# TYPE " + n + (m.counter ? " counter\n" : " gauge\n");
        }
        char value[32];
        std::snprintf(value, sizeof value, "%.17g", m.value);
        out += n + (m.labels.empty() ? "" : "{" + m.labels + "}") + " " + value + "\n";
      }
      return r.reply(200, "text/plain; version=0.0.4", out);
    }
    if (path == "/admin/shutdown") {
      if (req.method != "POST") return r.reply(405, "text/plain", "POST to shut down\n");
      loop_.defer([this] { shutdown(); });
      return r.reply(200, "text/plain", "shutting down\n");
    }
    r.reply(404, "text/plain", "no such admin path: " + path + "\n");
  }

  void shutdown() {
    if (api_) api_->stop();
    if (admin_) {
      admin_->stop();
      admin_->closeAll();
    }
    loop_.stop();
  }

  router::NamerServiceConfig config_;
  std::string configPath_;
  runtime::Loop loop_;
  std::unique_ptr<namer::DtabStore> store_;
  std::vector<std::pair<dtab::Path, std::unique_ptr<namer::NamerHost>>> namers_;
  std::unique_ptr<namer::HostResolver> hosts_;
  std::unique_ptr<namer::NamerApi> api_;
  std::unique_ptr<runtime::HttpServer> admin_;
  std::vector<std::string> prometheusPaths_;
  int exitCode_ = 0;
};

int runNamer(const NamerOptions& o) {
  auto doc = runtime::loadConfigFile(o.config);
  if (!doc) {
    std::cerr << "switchyard: " << doc.error() << "\n";
    return 2;
  }
  router::PluginRegistry registry = plugins::allPlugins();
  auto cfg = router::checkNamerConfig(*doc, registry);
  if (!cfg) {
    for (const auto& e : cfg.error()) std::cerr << "switchyard: " << o.config << ": " << e << "\n";
    return 2;
  }
  for (const auto& w : cfg->warnings) std::cerr << "switchyard: warning: " << o.config << ": " << w << "\n";
  if (o.check) {
    std::cout << o.config << ": OK (" << cfg->namers.size() << " namer(s), storage "
              << (cfg->storage ? cfg->storage->kind : std::string("file")) << ")\n";
    return 0;
  }
  NamerProcess process(std::move(*cfg), o.config);
  return process.run();
}

}  // namespace

Run addNamerCommand(CLI::App& parent) {
  auto opts = std::make_shared<NamerOptions>();
  CLI::App* cmd = parent.add_subcommand("namer", "Run the namer service (Namerd's configuration and HTTP API)");
  cmd->add_option("-c,--config", opts->config, "The namer's config file (YAML or JSON)")->required();
  cmd->add_flag("--check", opts->check, "Validate the config and exit: 0 if valid, 2 with every problem if not");
  return [opts] { return runNamer(*opts); };
}

}  // namespace switchyard::app
