#pragma once

#include "router/plugin_registry.h"

namespace switchyard::plugins {

// io.l5d.dnssrv: /#/io.l5d.dnssrv/<srv-record-name>[/rest] binds to the
// addresses of the SRV record's targets, each at the record's port, weighted
// by its weight (only the targets of the lowest priority value serve, as RFC
// 2782 says). Records are looked up when first asked for (the request waits,
// up to bindingTimeoutMs) and refreshed every refreshIntervalSeconds, or
// sooner when their TTL is shorter. A record that does not exist is a
// negative binding; a lookup that fails keeps the last good addresses.
// Config as Linkerd's: refreshIntervalSeconds (5), dnsHosts (["ip",
// "ip:port"], overriding the `dns` block's servers).
router::Plugin dnsSrvNamer();

}  // namespace switchyard::plugins
