#include "runtime/tcp.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>

namespace switchyard::runtime {

// ---------------------------------------------------------------------------
// SocketAddress

Expected<SocketAddress, std::string> SocketAddress::parse(const std::string& ip, std::uint16_t port) {
  SocketAddress a;
  std::string host = ip;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (uv_ip4_addr(host.c_str(), port, v4) == 0) return a;
  if (uv_ip6_addr(host.c_str(), port, v6) == 0) return a;
  return Unexpected("'" + ip + "' is not a numeric IP address");
}

Expected<SocketAddress, std::string> SocketAddress::resolveBlocking(const std::string& host, std::uint16_t port) {
  if (auto a = parse(host, port)) return a;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0) {
    return Unexpected("cannot resolve " + host + ": " + gai_strerror(rc));
  }
  char buf[INET6_ADDRSTRLEN] = {};
  if (res->ai_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, buf, sizeof buf);
  }
  ::freeaddrinfo(res);
  return parse(buf, port);
}

std::uint16_t SocketAddress::port() const {
  if (storage_.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
}

namespace {

// "127.0.0.1:80" or "[::1]:80".
std::string showSockaddr(const sockaddr_storage& ss) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  uv_ip4_name(a, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port));
}

}  // namespace

std::string SocketAddress::show() const { return showSockaddr(storage_); }

// ---------------------------------------------------------------------------
// TcpStream
//
// Memory: the object is freed when both its owner has let go (Closer) and
// libuv has closed the handle. Either may come first; callbacks find
// `handler_` null once the owner is gone.

struct TcpStream::WriteReq {
  uv_write_t req;
  std::string data;
  TcpStream* stream;
  std::size_t sent = 0;  // bytes of `data` written before the request was queued
  std::size_t size() const { return data.size() - sent; }
};

namespace {

// One read buffer per loop thread: libuv calls alloc and read back to back
// for one stream, and the handler consumes the bytes before returning.
thread_local char tReadBuffer[64 * 1024];

}  // namespace

TcpStream::TcpStream(Loop& loop) : loop_(loop), tcp_(new uv_tcp_t) {
  uv_tcp_init(loop_.uv(), tcp_);
  tcp_->data = this;
}

void TcpStream::onAlloc(void*, std::size_t, void* buf) {
  *static_cast<uv_buf_t*>(buf) = uv_buf_init(tReadBuffer, sizeof tReadBuffer);
}

void TcpStream::onRead(void* stream, long nread, const void* buf) {
  auto* s = static_cast<TcpStream*>(static_cast<uv_tcp_t*>(stream)->data);
  if (s->lingering_) {
    if (nread < 0) s->closeHandle();  // EOF or error: done lingering
    return;
  }
  if (nread > 0) {
    if (s->handler_) {
      s->handler_->onData(std::string_view(static_cast<const uv_buf_t*>(buf)->base,
                                           static_cast<std::size_t>(nread)));
    }
    return;
  }
  if (nread == 0) return;  // EAGAIN
  s->stopReading();
  s->fail(nread == UV_EOF ? std::string() : std::string(uv_strerror(static_cast<int>(nread))));
}

void TcpStream::fail(const std::string& error) {
  if (Handler* h = handler_) h->onClosed(error);
}

void TcpStream::startReading() {
  if (reading_ || closed_) return;
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(tcp_),
                [](uv_handle_t* h, std::size_t n, uv_buf_t* b) { onAlloc(h, n, b); },
                [](uv_stream_t* st, ssize_t n, const uv_buf_t* b) { onRead(st, n, b); });
}

void TcpStream::stopReading() {
  if (!reading_ || closed_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
}

void TcpStream::uncork() {
  if (corks_ > 0 && --corks_ == 0) flushCorked();
}

void TcpStream::flushCorked() {
  corks_ = 0;
  if (corked_.empty()) return;
  std::string data = std::move(corked_);
  corked_.clear();
  write(std::move(data));
}

void TcpStream::write(std::string data) {
  if (closed_ || writeFailed_ || data.empty()) return;
  if (corks_ > 0) {
    corked_ += data;
    return;
  }
  std::size_t sent = 0;
  if (pendingBytes_ == 0) {
    // Most writes fit the socket buffer: send now, queue only the rest
    // (from where the write stopped: no copy of what is left).
    uv_buf_t b = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
    int n = uv_try_write(reinterpret_cast<uv_stream_t*>(tcp_), &b, 1);
    if (n == static_cast<int>(data.size())) return;
    if (n > 0) sent = static_cast<std::size_t>(n);
  }
  auto* w = new WriteReq{{}, std::move(data), this, sent};
  w->req.data = w;
  pendingBytes_ += w->size();
  uv_buf_t b = uv_buf_init(w->data.data() + w->sent, static_cast<unsigned>(w->size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &b, 1,
                    [](uv_write_t* req, int status) { onWrite(req, status); });
  if (rc != 0) {
    // The socket is unusable; the read side reports the failure.
    pendingBytes_ -= w->size();
    delete w;
    writeFailed_ = true;
  }
}

void TcpStream::onWrite(void* req, int status) {
  auto* w = static_cast<WriteReq*>(static_cast<uv_write_t*>(req)->data);
  TcpStream* s = w->stream;
  s->pendingBytes_ -= w->size();
  delete w;
  if (s->closed_) return;
  if (status < 0) {
    s->writeFailed_ = true;
    s->stopReading();
    if (s->ownerGone_ || s->closeWhenDrained_) {
      s->closeHandle();
      return;
    }
    s->fail(uv_strerror(status));
    return;
  }
  if (s->closeWhenDrained_ && s->closeTimer_ != nullptr) s->armCloseTimer(s->stallMs_);  // progress
  s->maybeDrained();
}

void TcpStream::closeHandle() {
  if (closed_) return;
  closed_ = true;
  if (closeTimer_ != nullptr) {
    closeTimer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(closeTimer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    closeTimer_ = nullptr;
  }
  reading_ = false;
  handler_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
    auto* st = static_cast<TcpStream*>(h->data);
    delete reinterpret_cast<uv_tcp_t*>(h);
    st->tcp_ = nullptr;
    if (st->ownerGone_) delete st;  // else the owner's Closer frees it
  });
}

void TcpStream::maybeDrained() {
  if (pendingBytes_ != 0) return;
  if (closeWhenDrained_) {
    closeWhenDrained_ = false;
    closeHandle();
    return;
  }
  if (shutdownWhenDrained_) {
    shutdownWhenDrained_ = false;
    auto* req = new uv_shutdown_t;
    uv_shutdown(req, reinterpret_cast<uv_stream_t*>(tcp_), [](uv_shutdown_t* r, int) { delete r; });
  }
  if (onDrained_) {
    auto fn = onDrained_;
    fn();
  }
}

void TcpStream::shutdownWrite() {
  if (closed_) return;
  flushCorked();
  shutdownWhenDrained_ = true;
  maybeDrained();
}

void TcpStream::closeAfterWrites(std::uint64_t stallMs) {
  if (closed_) return;
  flushCorked();
  closeWhenDrained_ = true;
  if (pendingBytes_ > 0 && stallMs > 0) {
    stallMs_ = stallMs;
    armCloseTimer(stallMs);  // restarted by every write that completes
  }
  maybeDrained();
}

void TcpStream::armCloseTimer(std::uint64_t ms) {
  if (closeTimer_ == nullptr) {
    closeTimer_ = new uv_timer_t;
    uv_timer_init(loop_.uv(), closeTimer_);
    closeTimer_->data = this;
  }
  uv_timer_start(closeTimer_, [](uv_timer_t* t) {
    if (auto* s = static_cast<TcpStream*>(t->data)) s->closeHandle();
  }, ms, 0);
}

void TcpStream::lingerClose(std::uint64_t timeoutMs) {
  if (closed_ || lingering_) return;
  flushCorked();
  lingering_ = true;
  handler_ = nullptr;
  onDrained_ = nullptr;
  shutdownWrite();
  startReading();  // no-op if already reading: the callbacks are the same
  armCloseTimer(timeoutMs);
}

void TcpStream::close() {
  ownerGone_ = true;
  handler_ = nullptr;
  onDrained_ = nullptr;
  if (tcp_ == nullptr) {  // the handle is already closed
    delete this;
    return;
  }
  if (lingering_ && !closed_) return;  // the linger ends it, then frees us
  // A closeAfterWrites() in progress finishes first (the last response
  // must reach the client); the write callbacks close and free us.
  if (closeWhenDrained_ && pendingBytes_ > 0 && !closed_) return;
  closeHandle();
}

std::string TcpStream::peer() const {
  if (tcp_ == nullptr) return "?";
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return showSockaddr(ss);
}

// ---------------------------------------------------------------------------
// TcpListener

Expected<std::unique_ptr<TcpListener>, std::string> TcpListener::listen(Loop& loop, const SocketAddress& addr,
                                                                         ReusePort reusePort, OnAccept onAccept) {
  int fd = ::socket(addr.get()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unexpected("socket(): " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = addr.get()->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (reusePort == ReusePort::Join) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  } else if (reusePort == ReusePort::First && addr.port() != 0) {
    // SO_REUSEPORT would let us share the port with another process of the
    // same user; a plain bind first makes sure nobody else has it.
    int probe = ::socket(addr.get()->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = ::bind(probe, addr.get(), len);
    std::string err = rc != 0 ? std::strerror(errno) : "";
    ::close(probe);
    if (rc != 0) {
      ::close(fd);
      return Unexpected("cannot listen on " + addr.show() + ": " + err);
    }
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  } else if (reusePort == ReusePort::First) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  // Accepted sockets inherit TCP_NODELAY from the listener on Linux: set
  // once here rather than with one more system call per connection.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::bind(fd, addr.get(), len) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return Unexpected("cannot listen on " + addr.show() + ": " + err);
  }
  std::unique_ptr<TcpListener> l(new TcpListener(loop));
  l->onAccept_ = std::move(onAccept);
  l->tcp_ = new uv_tcp_t;
  uv_tcp_init(loop.uv(), l->tcp_);
  l->tcp_->data = l.get();
  uv_tcp_open(l->tcp_, fd);
  int rc = uv_listen(reinterpret_cast<uv_stream_t*>(l->tcp_), 1024,
                     [](uv_stream_t* s, int status) { onConnection(s, status); });
  if (rc != 0) return Unexpected("cannot listen on " + addr.show() + ": " + uv_strerror(rc));
  sockaddr_storage bound{};
  int blen = sizeof bound;
  uv_tcp_getsockname(l->tcp_, reinterpret_cast<sockaddr*>(&bound), &blen);
  l->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return l;
}

void TcpListener::onConnection(void* server, int status) {
  auto* l = static_cast<TcpListener*>(static_cast<uv_tcp_t*>(server)->data);
  if (status < 0 || l == nullptr) return;  // EMFILE and friends: try again on the next one
  TcpStreamPtr s(new TcpStream(l->loop_));
  if (uv_accept(reinterpret_cast<uv_stream_t*>(l->tcp_), reinterpret_cast<uv_stream_t*>(s->tcp_)) != 0) return;
  l->onAccept_(std::move(s));
}

void TcpListener::stop() {
  if (tcp_ == nullptr) return;
  tcp_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  tcp_ = nullptr;
}

TcpListener::~TcpListener() { stop(); }

// ---------------------------------------------------------------------------
// TcpConnect

std::unique_ptr<TcpConnect> TcpConnect::start(Loop& loop, const SocketAddress& addr, std::uint64_t timeoutMs,
                                              Done done) {
  std::unique_ptr<TcpConnect> c(new TcpConnect(loop));
  c->done_ = std::move(done);
  c->target_ = addr.show();
  c->stream_ = new TcpStream(loop);
  auto* req = new uv_connect_t;
  req->data = c.get();
  c->req_ = req;
  int rc = uv_tcp_connect(req, c->stream_->tcp_, addr.get(), [](uv_connect_t* r, int status) {
    auto* self = static_cast<TcpConnect*>(r->data);
    delete r;
    if (self == nullptr) return;  // cancelled
    self->req_ = nullptr;
    if (status != 0) {
      self->finish(Unexpected("connect to " + self->target_ + " failed: " + uv_strerror(status)));
      return;
    }
    uv_tcp_nodelay(self->stream_->tcp_, 1);
    TcpStreamPtr s(self->stream_);
    self->stream_ = nullptr;
    self->finish(std::move(s));
  });
  if (rc != 0) {
    delete req;
    c->req_ = nullptr;
    std::string err = "connect to " + c->target_ + " failed: " + uv_strerror(rc);
    // Report on the next turn so the caller never sees its callback run
    // before start() returns.
    TcpConnect* raw = c.get();
    c->timer_ = new uv_timer_t;
    uv_timer_init(loop.uv(), c->timer_);
    c->timer_->data = raw;
    raw->target_ = err;
    uv_timer_start(c->timer_, [](uv_timer_t* t) {
      auto* self = static_cast<TcpConnect*>(t->data);
      self->finish(Unexpected(self->target_));
    }, 0, 0);
    return c;
  }
  c->timer_ = new uv_timer_t;
  uv_timer_init(loop.uv(), c->timer_);
  c->timer_->data = c.get();
  uv_timer_start(c->timer_, [](uv_timer_t* t) {
    auto* self = static_cast<TcpConnect*>(t->data);
    if (self->req_ != nullptr) static_cast<uv_connect_t*>(self->req_)->data = nullptr;
    self->req_ = nullptr;
    self->finish(Unexpected("connect to " + self->target_ + " timed out"));
  }, timeoutMs, 0);
  return c;
}

void TcpConnect::finish(Expected<TcpStreamPtr, std::string> result) {
  if (timer_ != nullptr) {
    timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
  if (stream_ != nullptr) {
    stream_->close();
    stream_ = nullptr;
  }
  // The callback may destroy this object: it is the last thing done here.
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(std::move(result));
}

TcpConnect::~TcpConnect() {
  if (req_ != nullptr) static_cast<uv_connect_t*>(req_)->data = nullptr;
  done_ = nullptr;
  if (timer_ != nullptr) {
    timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
  if (stream_ != nullptr) stream_->close();
}

}  // namespace switchyard::runtime
