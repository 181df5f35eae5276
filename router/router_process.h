#pragma once

// RouterProcess: `switchyard router`. Builds the plans from a checked config,
// starts the namers and the admin server on the main loop and the workers on
// their threads, and runs until SIGTERM/SIGINT or POST /admin/shutdown, which
// drain: stop accepting, let requests in flight finish (up to
// admin.shutdownGraceMs), then exit 0.

#include <memory>
#include <string>
#include <vector>

#include "namer/host_resolver.h"
#include "namer/namerd_client.h"
#include "router/admin_server.h"
#include "router/config.h"
#include "namer/namer_host.h"
#include "router/router_plan.h"
#include "router/worker.h"
#include "runtime/config_node.h"
#include "runtime/fs_watch.h"
#include "runtime/loop.h"

namespace switchyard::router {

class RouterProcess {
 public:
  RouterProcess(Config config, runtime::ConfigNode source, const PluginRegistry& registry, int workers,
                std::string configFile);
  ~RouterProcess();

  // Binds every port (or fails, naming the one that could not be bound),
  // then serves until shut down. Returns the exit status.
  int run();

 private:
  void publishNaming();
  std::shared_ptr<NamingState> makeNaming(std::uint64_t generation) const;
  // Reads the config file again and applies its dtabs if it is valid.
  void reload(const char* why);
  void shutdown();
  std::string portsJson() const;
  void collectMetrics(std::function<void(MetricsSnapshot)> done);
  std::vector<ProcessMetric> processMetrics() const;

  Config config_;
  runtime::ConfigNode source_;
  const PluginRegistry& registry_;
  std::string configFile_;
  std::vector<dtab::Dtab> dtabs_;  // the current ones, per router
  int workerCount_;
  runtime::Loop loop_;
  std::vector<std::unique_ptr<RouterPlan>> plans_;
  std::vector<std::pair<dtab::Path, std::unique_ptr<namer::NamerHost>>> namers_;
  std::unique_ptr<namer::HostResolver> hosts_;  // DNS for /$/inet; null if it could not start
  // Per router: the namer service's client if it binds through one, else null.
  std::vector<std::unique_ptr<namer::NamerdClient>> remotes_;
  std::unique_ptr<ZipkinExporter> zipkin_;      // with an io.l5d.zipkin telemeter
  std::shared_ptr<const NamingState> naming_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_;
  std::uint16_t adminPort_ = 0;
  std::vector<std::vector<std::uint16_t>> ports_;
  bool shuttingDown_ = false;
  std::unique_ptr<runtime::FsWatch> configWatch_;
};

}  // namespace switchyard::router
