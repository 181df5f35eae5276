// Real Linkerd 1.x configs (test/compat/linkerd-configs/): each loads, or is
// refused only for kinds, protocols or keys Switchyard names as missing. Any
// other error (an unknown key, a type error) means our reading of Linkerd's
// schema is wrong, and fails the test.

#include <catch2/catch.hpp>
#include <filesystem>
#include <iostream>
#include <map>

#include "plugins/registry.h"
#include "router/config.h"

using namespace switchyard;

namespace {

// What a rejection may say: the kind, protocol or feature it lacks.
bool namesWhatIsMissing(const std::string& e) {
  return e.find("kind \"") != std::string::npos || e.find("unknown protocol") != std::string::npos ||
         e.find("not supported by Switchyard yet") != std::string::npos;
}

// Files that are not configs at all, with why; they must be refused.
const std::map<std::string, std::string> kNotConfigs = {
    {"linkerd__linkerd_docs_routers__block1.yaml", "a docs outline with `...` placeholders"},
};

}  // namespace

TEST_CASE("every real-world Linkerd config loads or names what it lacks", "[compat]") {
  const router::PluginRegistry registry = plugins::allPlugins();
  std::size_t files = 0;
  std::size_t loaded = 0;
  std::map<std::string, int> missing;  // first error per refused file, kind part
  for (const auto& entry : std::filesystem::directory_iterator(SWITCHYARD_COMPAT_DIR "/linkerd-configs")) {
    ++files;
    std::string name = entry.path().filename().string();
    INFO(name);
    auto doc = runtime::loadConfigFile(entry.path().string());
    if (!doc) FAIL(doc.error());
    auto cfg = router::checkConfig(*doc, registry);
    if (kNotConfigs.count(name)) {
      CHECK_FALSE(cfg);
      continue;
    }
    if (cfg) {
      ++loaded;
      continue;
    }
    for (const auto& e : cfg.error()) {
      INFO(e);
      CHECK(namesWhatIsMissing(e));
      auto colon = e.find(": ");
      ++missing[e.substr(colon + 2, 80)];
    }
  }
  CHECK(files >= 100);
  std::cout << "compat: " << loaded << " of " << files << " Linkerd configs load; refusals:\n";
  for (const auto& [what, n] : missing) std::cout << "  " << n << "x " << what << "\n";
}

TEST_CASE("every real-world Namerd config loads or names what it lacks", "[compat]") {
  const router::PluginRegistry registry = plugins::allPlugins();
  std::size_t files = 0;
  std::size_t loaded = 0;
  std::map<std::string, int> missing;
  for (const auto& entry : std::filesystem::directory_iterator(SWITCHYARD_COMPAT_DIR "/namerd-configs")) {
    ++files;
    std::string name = entry.path().filename().string();
    INFO(name);
    auto doc = runtime::loadConfigFile(entry.path().string());
    if (!doc) FAIL(doc.error());
    auto cfg = router::checkNamerConfig(*doc, registry);
    if (cfg) {
      ++loaded;
      continue;
    }
    for (const auto& e : cfg.error()) {
      INFO(e);
      CHECK(namesWhatIsMissing(e));
      auto colon = e.find(": ");
      ++missing[e.substr(colon + 2, 80)];
    }
  }
  CHECK(files >= 15);
  std::cout << "compat: " << loaded << " of " << files << " Namerd configs load; refusals:\n";
  for (const auto& [what, n] : missing) std::cout << "  " << n << "x " << what << "\n";
}
