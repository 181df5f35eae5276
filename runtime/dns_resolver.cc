#include "runtime/dns_resolver.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <uv.h>

#include <algorithm>
#include <mutex>

namespace switchyard::runtime {

namespace {

constexpr int kClassIn = 1;
constexpr int kTypeSrv = 33;

// Smallest TTL among the answer records of a DNS message (c-ares parses SRV
// records but drops their TTLs); 0 if the message is malformed.
std::uint32_t answerTtl(const unsigned char* m, int len) {
  auto n = static_cast<std::size_t>(len);
  if (n < 12) return 0;
  std::size_t qd = (m[4] << 8) | m[5];
  std::size_t an = (m[6] << 8) | m[7];
  std::size_t at = 12;
  auto skipName = [&]() -> bool {
    while (at < n) {
      unsigned char l = m[at];
      if ((l & 0xC0) == 0xC0) {
        at += 2;  // a compression pointer ends the name
        return at <= n;
      }
      at += 1 + l;
      if (l == 0) return at <= n;
    }
    return false;
  };
  for (std::size_t i = 0; i < qd; ++i) {
    if (!skipName() || at + 4 > n) return 0;
    at += 4;
  }
  std::uint32_t ttl = 0;
  bool any = false;
  for (std::size_t i = 0; i < an; ++i) {
    if (!skipName() || at + 10 > n) break;
    std::uint32_t t = (std::uint32_t{m[at + 4]} << 24) | (std::uint32_t{m[at + 5]} << 16) |
                      (std::uint32_t{m[at + 6]} << 8) | m[at + 7];
    std::size_t rdlen = (m[at + 8] << 8) | m[at + 9];
    at += 10 + rdlen;
    ttl = any ? std::min(ttl, t) : t;
    any = true;
  }
  return ttl;
}

DnsResolver::Status statusOf(int code) {
  if (code == ARES_SUCCESS) return DnsResolver::Status::Ok;
  if (code == ARES_ENOTFOUND || code == ARES_ENODATA) return DnsResolver::Status::NotFound;
  return DnsResolver::Status::Failed;
}

template <class Result>
struct Request {
  std::function<void(Result)> done;
  std::shared_ptr<bool> alive;
};

}  // namespace

struct DnsResolver::Poll {
  int fd = -1;
  uv_poll_t* handle = nullptr;
  DnsResolver* owner = nullptr;
};

DnsResolver::DnsResolver(Loop& loop) : loop_(loop) {}

Expected<std::unique_ptr<DnsResolver>, std::string> DnsResolver::create(Loop& loop, const Options& options) {
  static std::once_flag once;
  static int initStatus = ARES_SUCCESS;
  std::call_once(once, [] { initStatus = ares_library_init(ARES_LIB_INIT_ALL); });
  if (initStatus != ARES_SUCCESS) return Unexpected(std::string("c-ares: ") + ares_strerror(initStatus));

  std::unique_ptr<DnsResolver> r(new DnsResolver(loop));
  ares_options opts{};
  opts.sock_state_cb = [](void* data, ares_socket_t fd, int readable, int writable) {
    onSocketState(data, fd, readable, writable);
  };
  opts.sock_state_cb_data = r.get();
  opts.timeout = static_cast<int>(options.timeoutMs);
  opts.tries = options.tries;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  int rc = ares_init_options(&r->channel_, &opts, mask);
  if (rc != ARES_SUCCESS) return Unexpected(std::string("c-ares: ") + ares_strerror(rc));
  if (!options.servers.empty()) {
    std::string csv;
    for (const auto& s : options.servers) csv += (csv.empty() ? "" : ",") + s;
    rc = ares_set_servers_ports_csv(r->channel_, csv.c_str());
    if (rc != ARES_SUCCESS) {
      return Unexpected("invalid DNS server list \"" + csv + "\": " + ares_strerror(rc) +
                        " (expected host or host:port, [v6]:port)");
    }
    r->servers_ = csv;
  } else {
    r->servers_ = "resolv.conf's";
  }
  r->timer_ = new uv_timer_t;
  uv_timer_init(loop.uv(), r->timer_);
  r->timer_->data = r.get();
  return r;
}

DnsResolver::~DnsResolver() {
  *alive_ = false;
  // Pending queries are answered with ARES_EDESTRUCTION (to nobody) and
  // their sockets closed, through onSocketState.
  if (channel_ != nullptr) ares_destroy(channel_);
  for (auto& p : polls_) {
    uv_poll_stop(p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(p->handle), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  }
  polls_.clear();
  if (timer_ != nullptr) {
    timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

std::string DnsResolver::describeServers() const { return servers_; }

void DnsResolver::onSocketState(void* data, int fd, int readable, int writable) {
  auto* self = static_cast<DnsResolver*>(data);
  auto it = std::find_if(self->polls_.begin(), self->polls_.end(), [fd](const auto& p) { return p->fd == fd; });
  if (!readable && !writable) {
    if (it == self->polls_.end()) return;
    uv_poll_stop((*it)->handle);
    uv_close(reinterpret_cast<uv_handle_t*>((*it)->handle),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    self->polls_.erase(it);
    return;
  }
  Poll* p;
  if (it == self->polls_.end()) {
    auto poll = std::make_unique<Poll>();
    poll->fd = fd;
    poll->owner = self;
    poll->handle = new uv_poll_t;
    if (uv_poll_init_socket(self->loop_.uv(), poll->handle, fd) != 0) {
      // Cannot watch this socket: its query times out, as a lost packet would.
      delete poll->handle;
      return;
    }
    poll->handle->data = poll.get();
    p = poll.get();
    self->polls_.push_back(std::move(poll));
  } else {
    p = it->get();
  }
  int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  uv_poll_start(p->handle, events, [](uv_poll_t* h, int status, int ev) {
    auto* poll = static_cast<Poll*>(h->data);
    DnsResolver* owner = poll->owner;  // `poll` may be gone after processing
    int fdNow = poll->fd;
    bool r = status < 0 || (ev & UV_READABLE);
    bool w = status < 0 || (ev & UV_WRITABLE);
    ares_process_fd(owner->channel_, r ? fdNow : ARES_SOCKET_BAD, w ? fdNow : ARES_SOCKET_BAD);
    owner->rearmTimer();
  });
}

void DnsResolver::rearmTimer() {
  timeval tv{};
  timeval* t = ares_timeout(channel_, nullptr, &tv);
  if (t == nullptr) {
    uv_timer_stop(timer_);
    return;
  }
  std::uint64_t ms = static_cast<std::uint64_t>(t->tv_sec) * 1000 + static_cast<std::uint64_t>(t->tv_usec) / 1000;
  uv_timer_start(timer_, [](uv_timer_t* h) {
    auto* self = static_cast<DnsResolver*>(h->data);
    if (self == nullptr) return;
    ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    self->rearmTimer();
  }, std::max<std::uint64_t>(ms, 1), 0);
}

void DnsResolver::resolveHost(const std::string& name, std::function<void(HostResult)> done) {
  auto* req = new Request<HostResult>{std::move(done), alive_};
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;  // sorting would connect() a UDP socket per address
  ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints,
                   [](void* arg, int status, int, ares_addrinfo* info) {
                     std::unique_ptr<Request<HostResult>> r(static_cast<Request<HostResult>*>(arg));
                     HostResult result;
                     result.status = statusOf(status);
                     if (status != ARES_SUCCESS) result.error = ares_strerror(status);
                     if (info != nullptr) {
                       std::vector<std::string> v4, v6;
                       bool anyTtl = false;
                       for (ares_addrinfo_node* n = info->nodes; n != nullptr; n = n->ai_next) {
                         char text[INET6_ADDRSTRLEN] = {};
                         if (n->ai_family == AF_INET) {
                           inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(n->ai_addr)->sin_addr, text, sizeof text);
                           if (std::find(v4.begin(), v4.end(), text) == v4.end()) v4.emplace_back(text);
                         } else if (n->ai_family == AF_INET6) {
                           inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(n->ai_addr)->sin6_addr, text,
                                     sizeof text);
                           if (std::find(v6.begin(), v6.end(), text) == v6.end()) v6.emplace_back(text);
                         } else {
                           continue;
                         }
                         auto ttl = static_cast<std::uint32_t>(std::max(n->ai_ttl, 0));
                         result.ttlSecs = anyTtl ? std::min(result.ttlSecs, ttl) : ttl;
                         anyTtl = true;
                       }
                       ares_freeaddrinfo(info);
                       // Servers rotate record order; a set is a set.
                       std::sort(v4.begin(), v4.end());
                       std::sort(v6.begin(), v6.end());
                       result.addresses = std::move(v4);
                       result.addresses.insert(result.addresses.end(), v6.begin(), v6.end());
                     }
                     if (result.status == Status::Ok && result.addresses.empty()) {
                       result.status = Status::NotFound;
                       result.error = "no A or AAAA record";
                     }
                     if (*r->alive) r->done(std::move(result));
                   },
                   req);
  if (*alive_) rearmTimer();
}

void DnsResolver::resolveSrv(const std::string& name, std::function<void(SrvResult)> done) {
  auto* req = new Request<SrvResult>{std::move(done), alive_};
  ares_query(channel_, name.c_str(), kClassIn, kTypeSrv,
             [](void* arg, int status, int, unsigned char* abuf, int alen) {
               std::unique_ptr<Request<SrvResult>> r(static_cast<Request<SrvResult>*>(arg));
               SrvResult result;
               result.status = statusOf(status);
               if (status != ARES_SUCCESS) result.error = ares_strerror(status);
               if (status == ARES_SUCCESS && abuf != nullptr) {
                 ares_srv_reply* srv = nullptr;
                 int rc = ares_parse_srv_reply(abuf, alen, &srv);
                 if (rc == ARES_SUCCESS) {
                   for (ares_srv_reply* s = srv; s != nullptr; s = s->next) {
                     result.targets.push_back({s->host, s->port, s->priority, s->weight});
                   }
                   ares_free_data(srv);
                   result.ttlSecs = answerTtl(abuf, alen);
                 } else {
                   result.status = statusOf(rc);
                   result.error = std::string("bad SRV answer: ") + ares_strerror(rc);
                 }
               }
               if (result.status == Status::Ok && result.targets.empty()) {
                 result.status = Status::NotFound;
                 result.error = "no SRV record";
               }
               if (*r->alive) r->done(std::move(result));
             },
             req);
  if (*alive_) rearmTimer();
}

}  // namespace switchyard::runtime
