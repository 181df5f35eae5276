#pragma once

// The namers every process has under `/$/` (Finagle's and Linkerd's):
//   /$/inet/<host>/<port>[/rest]   and /$/inet/<port>[/rest] (host: localhost)
//   /$/fixedinet/...               the same shapes
//   /$/nil[/...]                   Empty ($)
//   /$/fail[/...]                  Fail (!)
//   /$/io.buoyant.rinet/<port>/<host>[/rest]   (any other shape: Neg)
//   /$/io.buoyant.hostportPfx/<pfx>/<host>:<port>/rest -> /<pfx>/<host>/<port>/rest
//   /$/io.buoyant.porthostPfx/<pfx>/<host>:<port>/rest -> /<pfx>/<port>/<host>/rest
//     (exactly one ':', port a lowercase DNS label or number; else Neg)
// An inet leaf whose host is an IP literal (or `localhost`) carries its
// address. A host name is looked up in a HostTable: a process with a DNS
// resolver builds the inet namers over its table (inetNamers), and they then
// take precedence over these; without one (the command line), a host name's
// Addr is Failed with a message saying so.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dtab/addr.h"
#include "dtab/namer.h"

namespace switchyard::dtab {

// In the order delegation tries them (after the configured namers).
const std::vector<NamerEntry>& systemNamers();

// What the inet namers know of a host name now.
struct HostAnswer {
  enum class Kind {
    Unknown,    // not resolved yet: the address is Pending
    Addresses,  // `ips` (numeric, canonical text)
    NotFound,   // the name does not exist (NXDOMAIN): a negative binding
    Failed,     // no answer has ever been had: `error` says why
  };
  Kind kind = Kind::Unknown;
  std::vector<std::string> ips;
  std::string error;
};

// Host names to addresses, as of one moment. Implementations are immutable
// snapshots, called from any thread; looking up an unknown host may ask the
// owner to resolve it (and publish a new snapshot).
class HostTable {
 public:
  virtual ~HostTable() = default;
  virtual HostAnswer lookup(const std::string& host) const = 0;
};

// /$/inet, /$/fixedinet and /$/io.buoyant.rinet over `hosts`.
std::vector<NamerEntry> inetNamers(std::shared_ptr<const HostTable> hosts);

// Names of the `/$/<name>` namers, for error messages.
std::string systemNamerNames();

// Parses a numeric IPv4 literal in any of the forms Java and inet_aton accept
// (`127.0.0.1`, `127.1`, `10.65536`) or an IPv6 literal (with or without
// brackets), and returns it in canonical text form; nullopt if not a literal.
std::optional<std::string> parseIpLiteral(std::string_view host);

// A DNS label as RFC 1123 has it, lower case: 1-63 of a-z, 0-9 and '-', not
// beginning or ending with '-' (Kubernetes' namespace and Service names).
bool isDnsLabel(std::string_view s);

}  // namespace switchyard::dtab
