#include "router/namers.h"

#include "router/builtin_plugins.h"
#include "router/transformer.h"

namespace switchyard::router {

NamerHosts makeNamerHosts(const std::vector<NamerConfig>& namers, const namer::DnsSettings& dns,
                          std::function<std::vector<dtab::NamerEntry>()> systemNamers) {
  // The hosts before any transformer; the wrappers own them and outlive
  // every call of the lookup below, which runs only through a wrapper.
  auto bases = std::make_shared<std::vector<std::pair<dtab::Path, namer::NamerHost*>>>();
  auto baseNamers = [bases, systemNamers = std::move(systemNamers)] {
    std::vector<dtab::NamerEntry> out;
    for (const auto& [prefix, host] : *bases) out.push_back({prefix, host->current()});
    if (systemNamers) {
      for (auto& e : systemNamers()) out.push_back(std::move(e));
    }
    return out;
  };
  NamerHosts out;
  for (const auto& n : namers) {
    if (!n.plugin.plugin->makeNamer) continue;
    auto host = n.plugin.plugin->makeNamer(n.plugin.settings.get(), {n.prefix, dns});
    bases->push_back({n.prefix, host.get()});
    Transformers transformers;
    for (const auto& t : n.transformers) {
      transformers.push_back(static_cast<const TransformerFactory*>(t.settings.get())->make());
    }
    out.emplace_back(n.prefix,
                     transformingNamer(std::move(host), std::move(transformers), baseNamers));
  }
  return out;
}

}  // namespace switchyard::router
