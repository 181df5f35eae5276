#pragma once

// TCP on the loop: listeners, accepted and connected streams. A TcpStream is
// owned through TcpStreamPtr; dropping it closes the socket, and no callback
// of the stream runs after that (the libuv handle lives on until its close
// callback, as libuv requires, but talks to nobody).
//
// Backpressure is explicit: readers stop reading (stopReading) when the
// other side is slow, writers look at pendingWriteBytes() and wait for
// onDrained before writing more.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "dtab/expected.h"
#include "runtime/loop.h"

struct uv_tcp_s;
struct uv_timer_s;

namespace switchyard::runtime {

// A numeric IPv4 or IPv6 address and port.
class SocketAddress {
 public:
  static Expected<SocketAddress, std::string> parse(const std::string& ip, std::uint16_t port);
  // A numeric address as parse(), or a host name through the system's
  // resolver, which blocks: for start-up and command-line tools only,
  // never on a loop that serves traffic.
  static Expected<SocketAddress, std::string> resolveBlocking(const std::string& host, std::uint16_t port);
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  std::uint16_t port() const;
  std::string show() const;  // 127.0.0.1:80, [::1]:80

 private:
  sockaddr_storage storage_{};
};

class TcpStream {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // Bytes arrived. The view is valid only during the call.
    virtual void onData(std::string_view data) = 0;
    // The peer closed its side (or the connection broke: `error` says how).
    virtual void onClosed(const std::string& error) = 0;
  };
  struct Closer {
    void operator()(TcpStream* s) const { s->close(); }
  };

  void setHandler(Handler* handler) { handler_ = handler; }
  void startReading();
  void stopReading();
  bool isReading() const { return reading_; }

  // Queues bytes for sending; the stream copies nothing it can send at once.
  void write(std::string data);
  void write(std::string_view data) { write(std::string(data)); }
  std::size_t pendingWriteBytes() const { return pendingBytes_ + corked_.size(); }
  // Between cork() and uncork(), writes are gathered and sent as one (a
  // response head and the body that came in the same read: one syscall).
  void cork() { ++corks_; }
  void uncork();
  // Runs whenever the write queue becomes empty.
  void setOnDrained(std::function<void()> fn) { onDrained_ = std::move(fn); }
  // Sends FIN once everything queued is written.
  void shutdownWrite();
  // Closes once everything queued is written (or at once if nothing is).
  // A peer that takes none of it for `stallMs` is cut off (0: never).
  void closeAfterWrites(std::uint64_t stallMs = 30'000);
  // Sends FIN after what is queued, then reads and drops whatever the peer
  // still sends, and closes on its EOF or after `timeoutMs`: a response that
  // refuses a request is not lost to a reset. No callbacks after this.
  void lingerClose(std::uint64_t timeoutMs);

  std::string peer() const;
  bool writeFailed() const { return writeFailed_; }

 private:
  friend class TcpListener;
  friend class TcpConnect;
  struct WriteReq;

  explicit TcpStream(Loop& loop);
  ~TcpStream() = default;
  void close();  // via TcpStreamPtr only
  void fail(const std::string& error);
  void maybeDrained();
  void closeHandle();
  void flushCorked();  // ends any cork: what is gathered is written
  void armCloseTimer(std::uint64_t ms);  // closeHandle() after `ms`

  static void onAlloc(void* handle, std::size_t suggested, void* buf);
  static void onRead(void* stream, long nread, const void* buf);
  static void onWrite(void* req, int status);

  Loop& loop_;
  uv_tcp_s* tcp_;
  Handler* handler_ = nullptr;
  std::function<void()> onDrained_;
  std::size_t pendingBytes_ = 0;
  bool reading_ = false;
  bool closed_ = false;
  bool closeWhenDrained_ = false;
  bool shutdownWhenDrained_ = false;
  bool writeFailed_ = false;
  bool ownerGone_ = false;
  bool lingering_ = false;
  int corks_ = 0;
  std::string corked_;
  std::uint64_t stallMs_ = 0;  // closeAfterWrites' limit
  uv_timer_s* closeTimer_ = nullptr;  // lingerClose's or closeAfterWrites'
};

using TcpStreamPtr = std::unique_ptr<TcpStream, TcpStream::Closer>;

class TcpListener {
 public:
  using OnAccept = std::function<void(TcpStreamPtr)>;
  // SO_REUSEPORT lets several loops listen on one address, the kernel
  // spreading connections among them. `First` opens such a group (and fails
  // if anyone already listens there), `Join` joins it, `No` binds alone.
  enum class ReusePort { No, First, Join };
  static Expected<std::unique_ptr<TcpListener>, std::string> listen(Loop& loop,
                                                                     const SocketAddress& addr,
                                                                     ReusePort reusePort, OnAccept onAccept);
  ~TcpListener();
  std::uint16_t port() const { return port_; }
  // Stops accepting; the listening socket is closed.
  void stop();

 private:
  explicit TcpListener(Loop& loop) : loop_(loop) {}
  static void onConnection(void* server, int status);

  Loop& loop_;
  uv_tcp_s* tcp_ = nullptr;
  OnAccept onAccept_;
  std::uint16_t port_ = 0;
};

// One connection attempt with a timeout. Destroying it cancels the attempt:
// the callback then never runs.
class TcpConnect {
 public:
  using Done = std::function<void(Expected<TcpStreamPtr, std::string>)>;
  static std::unique_ptr<TcpConnect> start(Loop& loop, const SocketAddress& addr, std::uint64_t timeoutMs,
                                           Done done);
  ~TcpConnect();

 private:
  explicit TcpConnect(Loop& loop) : loop_(loop) {}
  void finish(Expected<TcpStreamPtr, std::string> result);

  Loop& loop_;
  TcpStream* stream_ = nullptr;  // owned until handed over
  uv_timer_s* timer_ = nullptr;
  void* req_ = nullptr;
  Done done_;
  std::string target_;
};

}  // namespace switchyard::runtime
