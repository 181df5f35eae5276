#pragma once

// The configured namers, built: one NamerHost per `namers` entry, wrapped in
// its own transformers (Linkerd's `namers[].transformers`) when it has any.
// Shared by the router and the namer service.

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "dtab/path.h"
#include "namer/dns_settings.h"
#include "namer/namer_host.h"
#include "router/config.h"

namespace switchyard::router {

using NamerHosts = std::vector<std::pair<dtab::Path, std::unique_ptr<namer::NamerHost>>>;

// A transformed namer's transformers look names up through every namer as
// it is before its own transformers, then through `systemNamers()` (the
// process's resolving /$/inet ones), asked for on the main loop each time.
NamerHosts makeNamerHosts(const std::vector<NamerConfig>& namers, const namer::DnsSettings& dns,
                          std::function<std::vector<dtab::NamerEntry>()> systemNamers);

}  // namespace switchyard::router
