// `switchyard router -c CONFIG`: the per-node router, configured as Linkerd.

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <thread>

#include "app/commands.h"
#include "plugins/registry.h"
#include "router/config.h"
#include "router/router_process.h"
#include "runtime/config_node.h"

namespace switchyard::app {
namespace {

struct RouterOptions {
  std::string config;
  bool check = false;
  int workers = 0;
};

int runRouter(const RouterOptions& o) {
  auto doc = runtime::loadConfigFile(o.config);
  if (!doc) {
    std::cerr << "switchyard: " << doc.error() << "\n";
    return 2;
  }
  router::PluginRegistry registry = plugins::allPlugins();
  auto cfg = router::checkConfig(*doc, registry);
  if (!cfg) {
    for (const auto& e : cfg.error()) std::cerr << "switchyard: " << o.config << ": " << e << "\n";
    return 2;
  }
  for (const auto& w : cfg->warnings) std::cerr << "switchyard: warning: " << o.config << ": " << w << "\n";
  if (o.check) {
    std::cout << o.config << ": OK (" << cfg->routers.size() << " router(s), " << cfg->namers.size()
              << " namer(s))\n";
    return 0;
  }
  int workers = o.workers > 0 ? o.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  router::RouterProcess process(std::move(*cfg), std::move(*doc), registry, workers, o.config);
  return process.run();
}

}  // namespace

Run addRouterCommand(CLI::App& parent) {
  auto opts = std::make_shared<RouterOptions>();
  CLI::App* cmd = parent.add_subcommand("router", "Run the router (Linkerd 1.x configuration)");
  cmd->add_option("-c,--config", opts->config, "The router's config file (YAML or JSON)")->required();
  cmd->add_flag("--check", opts->check, "Validate the config and exit: 0 if valid, 2 with every problem if not");
  cmd->add_option("--workers", opts->workers, "Worker threads, each with its own event loop (default: cores)")
      ->check(CLI::Range(1, 256));
  return [opts] { return runRouter(*opts); };
}

}  // namespace switchyard::app
