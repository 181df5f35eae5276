#include "router/plugin_registry.h"

namespace switchyard::router {

const char* categoryName(PluginCategory category) {
  switch (category) {
    case PluginCategory::Identifier:
      return "identifier";
    case PluginCategory::Namer:
      return "namer";
    case PluginCategory::Interpreter:
      return "interpreter";
    case PluginCategory::Transformer:
      return "transformer";
    case PluginCategory::Telemeter:
      return "telemeter";
    case PluginCategory::LoadBalancer:
      return "load balancer";
    case PluginCategory::Storage:
      return "storage";
    case PluginCategory::Interface:
      return "interface";
  }
  return "plugin";
}

void PluginRegistry::add(Plugin plugin) {
  auto key = std::make_pair(plugin.category, plugin.kind);
  plugins_.insert_or_assign(std::move(key), std::move(plugin));
}

const Plugin* PluginRegistry::find(PluginCategory category, std::string_view kind) const {
  auto it = plugins_.find(std::make_pair(category, std::string(kind)));
  return it == plugins_.end() ? nullptr : &it->second;
}

std::string PluginRegistry::known(PluginCategory category) const {
  std::string out;
  for (const auto& [key, plugin] : plugins_) {
    if (key.first != category) continue;
    out += (out.empty() ? "" : ", ") + plugin.kind;
  }
  return out.empty() ? "none yet" : out;
}

std::optional<KindedConfig> PluginRegistry::read(PluginCategory category, runtime::ConfigReader r,
                                                 std::optional<std::string> fallbackKind,
                                                 const std::function<void(runtime::ConfigReader&)>& common) const {
  if (!r.expectMap()) return std::nullopt;
  std::optional<std::string> kind = r.optionalString("kind");
  if (!kind) kind = fallbackKind;
  if (!kind) {
    r.problems().error(r.childPath("kind"), std::string("required: the ") + categoryName(category) +
                                                " kind; known: " + known(category));
    return std::nullopt;
  }
  const Plugin* plugin = find(category, *kind);
  if (!plugin) {
    r.problems().error(r.childPath("kind"), "unknown " + std::string(categoryName(category)) +
                                                " kind \"" + *kind + "\"; known: " + known(category));
    return std::nullopt;
  }
  if (common) common(r);
  KindedConfig out{*kind, r.path(), plugin, nullptr};
  out.settings = plugin->check ? plugin->check(r) : nullptr;
  r.finish();
  return out;
}

}  // namespace switchyard::router
