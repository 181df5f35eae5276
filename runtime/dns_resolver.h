#pragma once

// DnsResolver: asynchronous DNS on the loop, c-ares driven by libuv polls and
// one timer (never the blocking getaddrinfo on a loop thread). Loop thread
// only (a loop may have several). Callbacks run on the loop; none runs after
// the resolver is destroyed.
//
//   resolveHost  A and AAAA (and the hosts file first, as the system does),
//                with the smallest TTL of the answer
//   resolveSrv   SRV records: target, port, priority and weight, and the TTL

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dtab/expected.h"
#include "runtime/loop.h"

struct ares_channeldata;
struct uv_timer_s;

namespace switchyard::runtime {

class DnsResolver {
 public:
  struct Options {
    // "host" or "host:port" (IPv6: "[::1]:5353"); empty: the system's
    // resolv.conf.
    std::vector<std::string> servers;
    std::uint64_t timeoutMs = 2'000;  // per try, per server
    int tries = 2;
  };

  enum class Status {
    Ok,
    NotFound,  // NXDOMAIN, or the name has no record of the type asked
    Failed,    // timeout, SERVFAIL, refused, a bad answer: `error` says which
  };

  struct HostResult {
    Status status = Status::Failed;
    std::vector<std::string> addresses;  // canonical text, IPv4 first
    std::uint32_t ttlSecs = 0;
    std::string error;
  };

  struct SrvTarget {
    std::string host;
    std::uint16_t port = 0;
    std::uint16_t priority = 0;
    std::uint16_t weight = 0;
  };
  struct SrvResult {
    Status status = Status::Failed;
    std::vector<SrvTarget> targets;
    std::uint32_t ttlSecs = 0;
    std::string error;
  };

  static Expected<std::unique_ptr<DnsResolver>, std::string> create(Loop& loop, const Options& options);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  void resolveHost(const std::string& name, std::function<void(HostResult)> done);
  void resolveSrv(const std::string& name, std::function<void(SrvResult)> done);

  // "127.0.0.1:5353,..." or "resolv.conf's": for messages.
  std::string describeServers() const;

 private:
  struct Poll;
  explicit DnsResolver(Loop& loop);
  static void onSocketState(void* data, int fd, int readable, int writable);
  void rearmTimer();

  Loop& loop_;
  ares_channeldata* channel_ = nullptr;
  uv_timer_s* timer_ = nullptr;
  std::vector<std::unique_ptr<Poll>> polls_;
  std::string servers_;
  // Cleared on destruction: c-ares then calls every pending callback with
  // ARES_EDESTRUCTION, which must reach nobody.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace switchyard::runtime
