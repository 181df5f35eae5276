#include "router/client_pool.h"

#include <algorithm>

namespace switchyard::router {

struct ClientPool::Idle final : runtime::TcpStream::Handler {
  ClientPool* pool;
  std::string key;
  runtime::TcpStreamPtr stream;
  std::uint64_t since;

  // A server may close an idle connection at any time; bytes from it while
  // idle are a protocol error. Either way the connection is no longer usable.
  void onData(std::string_view) override { pool->drop(this); }
  void onClosed(const std::string&) override { pool->drop(this); }
};

ClientPool::ClientPool(runtime::Loop& loop, std::uint64_t idleTimeMs, std::size_t maxIdle)
    : loop_(loop), idleTimeMs_(idleTimeMs), maxIdle_(maxIdle), sweep_(loop) {
  std::uint64_t every = std::max<std::uint64_t>(100, std::min<std::uint64_t>(idleTimeMs_ / 2, 1000));
  sweep_.start(every, [this] {
    std::uint64_t now = loop_.nowMs();
    for (auto& [key, list] : idle_) {
      list.remove_if([&](const std::unique_ptr<Idle>& i) { return now - i->since >= idleTimeMs_; });
    }
  }, every);
}

ClientPool::~ClientPool() = default;

runtime::TcpStreamPtr ClientPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  // Most recently used first: it is the least likely to have been closed.
  std::unique_ptr<Idle> idle = std::move(it->second.back());
  it->second.pop_back();
  runtime::TcpStreamPtr s = std::move(idle->stream);
  // Still reading: the taker sets its handler right away, and leaving the
  // read on saves two epoll_ctl calls per request.
  s->setHandler(nullptr);
  return s;
}

void ClientPool::put(const std::string& key, runtime::TcpStreamPtr stream) {
  auto& list = idle_[key];
  if (list.size() >= maxIdle_) return;  // dropping `stream` closes it
  auto idle = std::make_unique<Idle>();
  idle->pool = this;
  idle->key = key;
  idle->since = loop_.nowMs();
  idle->stream = std::move(stream);
  idle->stream->setHandler(idle.get());
  idle->stream->startReading();
  list.push_back(std::move(idle));
}

void ClientPool::drop(Idle* idle) {
  auto it = idle_.find(idle->key);
  if (it == idle_.end()) return;
  auto& list = it->second;
  for (auto li = list.begin(); li != list.end(); ++li) {
    if (li->get() != idle) continue;
    // Called from the connection's own callback: free it after.
    loop_.deleteLater(std::move(*li));
    list.erase(li);
    return;
  }
}

std::size_t ClientPool::idleCount() const {
  std::size_t n = 0;
  for (const auto& [k, l] : idle_) n += l.size();
  return n;
}

}  // namespace switchyard::router
