#pragma once

// PluginRegistry: every `kind` a config may name, by category, with the check
// of its settings and the factory that builds it. router/ defines the
// interfaces; plugins/ implements the kinds, and plugins/registry.cc lists
// them all explicitly (no self-registering statics). Only the executable's
// main sees both.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dtab/path.h"
#include "router/identifier.h"
#include "namer/dtab_store.h"
#include "namer/namer_host.h"
#include "runtime/config_reader.h"

namespace switchyard::router {

enum class PluginCategory { Identifier, Namer, Interpreter, Transformer, Telemeter, LoadBalancer, Storage, Interface };

// "identifier", "namer", ...: for messages.
const char* categoryName(PluginCategory category);

// What an identifier is built with besides its own settings.
struct IdentifierContext {
  dtab::Path dstPrefix;  // the router's, `/svc` by default
};

struct Plugin {
  PluginCategory category;
  std::string kind;
  // Reads the block's own keys (the reader has `kind` marked already);
  // returns the typed settings the factory needs. Errors go to the reader.
  std::function<std::shared_ptr<const void>(runtime::ConfigReader&)> check;
  // Identifier plugins only.
  std::function<std::unique_ptr<Identifier>(const void* settings, const IdentifierContext&)>
      makeIdentifier;
  // Namer plugins only.
  std::function<std::unique_ptr<namer::NamerHost>(const void* settings, const namer::NamerContext&)> makeNamer;
  // Storage plugins only (the namer service's `storage`).
  std::function<std::unique_ptr<namer::DtabStore>(const void* settings, runtime::Loop&)> makeStore;
};

// Typed builders, so that a plugin never casts: `read` checks the block and
// returns its settings (nullopt once it has reported a problem); the factory
// gets them back as they were read.
template <class Settings>
using SettingsReader = std::function<std::optional<Settings>(runtime::ConfigReader&)>;

template <class Settings>
std::function<std::shared_ptr<const void>(runtime::ConfigReader&)> typedCheck(SettingsReader<Settings> read) {
  return [read = std::move(read)](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
    auto settings = read(r);
    if (!settings) return nullptr;
    return std::make_shared<const Settings>(std::move(*settings));
  };
}

template <class Settings>
Plugin identifierPlugin(
    std::string kind, SettingsReader<Settings> read,
    std::function<std::unique_ptr<Identifier>(const Settings&, const IdentifierContext&)> make) {
  Plugin p{PluginCategory::Identifier, std::move(kind), typedCheck<Settings>(std::move(read)), nullptr, nullptr, nullptr};
  p.makeIdentifier = [make = std::move(make)](const void* s, const IdentifierContext& ctx) {
    return make(*static_cast<const Settings*>(s), ctx);
  };
  return p;
}

template <class Settings>
Plugin namerPlugin(std::string kind, SettingsReader<Settings> read,
                   std::function<std::unique_ptr<namer::NamerHost>(const Settings&, const namer::NamerContext&)> make) {
  Plugin p{PluginCategory::Namer, std::move(kind), typedCheck<Settings>(std::move(read)), nullptr, nullptr, nullptr};
  p.makeNamer = [make = std::move(make)](const void* s, const namer::NamerContext& ctx) {
    return make(*static_cast<const Settings*>(s), ctx);
  };
  return p;
}

template <class Settings>
Plugin storagePlugin(std::string kind, SettingsReader<Settings> read,
                     std::function<std::unique_ptr<namer::DtabStore>(const Settings&, runtime::Loop&)> make) {
  Plugin p{PluginCategory::Storage, std::move(kind), typedCheck<Settings>(std::move(read)), nullptr, nullptr, nullptr};
  p.makeStore = [make = std::move(make)](const void* s, runtime::Loop& loop) {
    return make(*static_cast<const Settings*>(s), loop);
  };
  return p;
}

// A `{kind: ..., ...}` block that passed its plugin's check.
struct KindedConfig {
  std::string kind;
  std::string path;  // where in the file, for later messages
  const Plugin* plugin = nullptr;
  std::shared_ptr<const void> settings;
};

class PluginRegistry {
 public:
  void add(Plugin plugin);
  const Plugin* find(PluginCategory category, std::string_view kind) const;
  // The known kinds of a category, comma-separated, for messages.
  std::string known(PluginCategory category) const;

  // Reads a kinded block at `r`: `kind` (or `fallbackKind` when the block has
  // none) must be registered; the plugin checks the rest; unknown keys are
  // errors. nullopt after recording an error.
  // `common` reads keys every kind of the category has (a namer's `prefix`)
  // before the plugin's own check.
  std::optional<KindedConfig> read(PluginCategory category, runtime::ConfigReader r,
                                   std::optional<std::string> fallbackKind = std::nullopt,
                                   const std::function<void(runtime::ConfigReader&)>& common = {}) const;

 private:
  std::map<std::pair<PluginCategory, std::string>, Plugin, std::less<>> plugins_;
};

}  // namespace switchyard::router
