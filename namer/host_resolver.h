#pragma once

// HostResolver: the DNS behind /$/inet, /$/fixedinet and /$/io.buoyant.rinet
// in a running process. It keeps one answer per host name and publishes them
// as an immutable dtab::HostTable, replaced whole on every change. Looking up
// a name it does not know yet (on any thread: workers bind on theirs) asks
// the main loop to resolve it and answers Unknown, so the address is Pending
// until the answer is published.
//
// Answers are refreshed when their TTL, clamped to [minTtlSecs, maxTtlSecs],
// runs out. A refresh that fails (timeout, SERVFAIL, a refused server) keeps
// the last good addresses; NXDOMAIN makes the name negative, so a dtab
// alternative can take over. Main loop only; the snapshots it hands out are
// used on any thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtab/expected.h"
#include "dtab/system_namers.h"
#include "namer/dns_settings.h"
#include "namer/want.h"
#include "runtime/dns_resolver.h"
#include "runtime/loop.h"
#include "runtime/timer.h"

namespace switchyard::namer {

class HostResolver {
 public:
  static Expected<std::unique_ptr<HostResolver>, std::string> create(runtime::Loop& loop, const DnsSettings& settings);
  ~HostResolver();

  // `onChange` runs on the loop after current() changed.
  void start(std::function<void()> onChange);
  std::shared_ptr<const dtab::HostTable> current() const;

  struct HostStats {
    std::string host;
    std::string state;     // "resolved", "not_found", "failed", "pending"
    double ageSecs = 0;    // since the last good answer; 0 if none
  };
  struct Stats {
    std::uint64_t lookups = 0;
    std::uint64_t failures = 0;  // lookups that got no usable answer (not NXDOMAIN)
    std::vector<HostStats> hosts;
  };
  Stats stats() const;

  // At most this many names are kept; lookups of more stay Pending (and
  // time out as bindings do), so hostile per-request dtabs cannot grow it.
  static constexpr std::size_t kMaxHosts = 10'000;

 private:
  struct Entry {
    dtab::HostAnswer answer;
    std::uint64_t goodAtMs = 0;  // when the addresses were last confirmed
    std::uint64_t refreshAtMs = 0;
    bool inFlight = false;
  };
  class Snapshot;

  HostResolver(runtime::Loop& loop, const DnsSettings& settings);
  void want(const std::string& host);
  void resolve(const std::string& host);
  void answered(const std::string& host, runtime::DnsResolver::HostResult result);
  void publish();

  runtime::Loop& loop_;
  DnsSettings settings_;
  std::unique_ptr<runtime::DnsResolver> dns_;
  std::map<std::string, Entry> entries_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::shared_ptr<const WantFn> want_;
  std::function<void()> onChange_;
  runtime::Timer sweep_;
  std::uint64_t lookups_ = 0;
  std::uint64_t failures_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace switchyard::namer
