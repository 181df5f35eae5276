#pragma once

// ClientPool: idle keep-alive connections to endpoints, per worker. A
// connection is put back only between messages; while idle, a close or any
// unexpected byte from the server drops it. Idle connections older than
// `idleTimeMs` are closed by a sweep, and at most `maxIdle` wait per endpoint.

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "runtime/loop.h"
#include "runtime/tcp.h"
#include "runtime/timer.h"

namespace switchyard::router {

class ClientPool {
 public:
  ClientPool(runtime::Loop& loop, std::uint64_t idleTimeMs, std::size_t maxIdle);
  ~ClientPool();

  // An idle connection to `key` ("ip:port"), or null. It is still reading,
  // with no handler: set one before returning to the loop.
  runtime::TcpStreamPtr take(const std::string& key);
  void put(const std::string& key, runtime::TcpStreamPtr stream);
  std::size_t idleCount() const;

 private:
  struct Idle;
  void drop(Idle* idle);

  runtime::Loop& loop_;
  std::uint64_t idleTimeMs_;
  std::size_t maxIdle_;
  std::map<std::string, std::list<std::unique_ptr<Idle>>> idle_;
  runtime::Timer sweep_;
};

}  // namespace switchyard::router
