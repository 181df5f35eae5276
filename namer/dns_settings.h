#pragma once

// The `dns` block of a router's (or the namer's) config: how host names are
// resolved, for /$/inet and for namers that use DNS.

#include <cstdint>
#include <string>
#include <memory>
#include <vector>

#include "dtab/expected.h"
#include "runtime/dns_resolver.h"
#include "runtime/loop.h"

namespace switchyard::namer {

struct DnsSettings {
  std::vector<std::string> servers;  // "ip" or "ip:port"; empty: resolv.conf
  std::int64_t minTtlSecs = 5;       // answers are kept at least this long...
  std::int64_t maxTtlSecs = 300;     // ...and at most this long
  std::int64_t timeoutMs = 2'000;    // per try, per server
};

// Whether `text` names a DNS server as the resolver takes it: a numeric
// "ip", "ip:port", or "[ipv6]:port" (servers are not looked up by name).
bool isDnsServerAddress(const std::string& text);

// A resolver on `loop` that asks the `dns` block's servers (or resolv.conf's).
Expected<std::unique_ptr<runtime::DnsResolver>, std::string> makeDnsResolver(runtime::Loop& loop,
                                                                            const DnsSettings& settings);

}  // namespace switchyard::namer
