#include "plugins/namers/fs.h"

#include <dirent.h>

#include <fstream>
#include <sstream>

#include "dtab/system_namers.h"
#include "runtime/fs_watch.h"

namespace switchyard::plugins {
namespace {

using dtab::Addr;
using dtab::BoundName;
using dtab::Name;
using dtab::NameTree;
using dtab::Path;

// One directory read: service name -> its Addr.
class FsSnapshot final : public dtab::Namer {
 public:
  FsSnapshot(Path prefix, std::map<std::string, Addr> services)
      : prefix_(std::move(prefix)), services_(std::move(services)) {}

  dtab::NamerResult lookup(const Path& residual) const override {
    if (residual.empty()) return NameTree<Name>::neg();
    auto it = services_.find(residual[0]);
    if (it == services_.end()) return NameTree<Name>::neg();
    return NameTree<Name>::leaf(BoundName{prefix_ + residual.take(1), residual.drop(1), it->second});
  }

 private:
  Path prefix_;
  std::map<std::string, Addr> services_;
};

class FsNamerHost final : public namer::NamerHost {
 public:
  FsNamerHost(FsNamerSettings settings, Path prefix)
      : settings_(std::move(settings)), prefix_(std::move(prefix)) {
    snapshot_ = read();
  }

  void start(runtime::Loop& loop, std::function<void()> onChange) override {
    watch_ = runtime::FsWatch::start(loop, settings_.rootDir, /*settleMs=*/20, [this, onChange] {
      snapshot_ = read();
      onChange();
    });
  }

  std::shared_ptr<const dtab::Namer> current() const override { return snapshot_; }

 private:
  std::shared_ptr<const dtab::Namer> read() const {
    std::map<std::string, Addr> services;
    if (DIR* dir = ::opendir(settings_.rootDir.c_str())) {
      while (dirent* e = ::readdir(dir)) {
        std::string name = e->d_name;
        if (name.empty() || name[0] == '.') continue;  // hidden files and editors' temp files
        std::string file = settings_.rootDir + "/" + name;
        std::ifstream in(file, std::ios::binary);
        if (!in) continue;  // a directory, or gone since readdir
        std::ostringstream text;
        text << in.rdbuf();
        services[name] = parseFsAddrs(text.str(), file);
      }
      ::closedir(dir);
    }
    return std::make_shared<FsSnapshot>(prefix_, std::move(services));
  }

  FsNamerSettings settings_;
  Path prefix_;
  std::shared_ptr<const dtab::Namer> snapshot_;
  std::unique_ptr<runtime::FsWatch> watch_;
};

}  // namespace

Addr parseFsAddrs(const std::string& text, const std::string& filename) {
  std::vector<dtab::Endpoint> endpoints;
  std::istringstream lines(text);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string host;
    std::string port;
    std::string extra;
    if (!(words >> host)) continue;  // blank
    std::string where = filename + ":" + std::to_string(n);
    if (!(words >> port) || (words >> extra)) {
      return Addr::failed(where + ": expected `host port`, got '" + line + "'");
    }
    std::optional<std::string> ip = host == "localhost" ? "127.0.0.1" : dtab::parseIpLiteral(host);
    if (!ip) return Addr::failed(where + ": '" + host + "' is not an IP address (host names need DNS)");
    unsigned long p = 0;
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        (p = std::stoul(port)) == 0 || p > 65535) {
      return Addr::failed(where + ": '" + port + "' is not a port 1-65535");
    }
    endpoints.push_back({*ip, static_cast<std::uint16_t>(p), 1.0, {}});
  }
  return Addr::bound(std::move(endpoints));
}

router::Plugin fsNamer() {
  return router::namerPlugin<FsNamerSettings>(
      "io.l5d.fs", [](runtime::ConfigReader& r) { return FsNamerSettings{r.requiredString("rootDir")}; },
      [](const FsNamerSettings& s, const namer::NamerContext& ctx) { return std::make_unique<FsNamerHost>(s, ctx.prefix); });
}

}  // namespace switchyard::plugins
