#pragma once

// HttpCall: one HTTP/1.1 request on its own connection, for control traffic
// (a namer's watch stream, etcd's gateway, the CLI), not for proxying. The
// response body arrives piece by piece as it is read, so a stream that never
// ends (a watch) is consumed as it goes. Destroying the call cancels it:
// no callback runs after that.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/http_message.h"
#include "runtime/loop.h"
#include "runtime/tcp.h"
#include "runtime/tls.h"

namespace switchyard::runtime {

class HttpCall {
 public:
  struct Request {
    std::string method = "GET";
    std::string target;  // `/api/1/dtabs`
    std::string host;    // the Host header
    HttpHeaders headers;
    std::string body;
    // The whole response must have arrived within this (0: no limit, as
    // for a watch stream that never ends).
    std::uint64_t timeoutMs = 0;
    // HTTPS when set: the server's certificate must chain to the context's
    // CAs and name `tlsServerName` (a host name, or a numeric address).
    std::shared_ptr<const TlsClientContext> tls;
    std::string tlsServerName;
  };
  struct Handler {
    std::function<void(const ResponseHead&)> onHead;
    std::function<void(std::string_view)> onBody;
    // Once: nullopt after a whole response, else why it failed (a connect
    // error, a malformed response, the connection lost mid-body).
    std::function<void(std::optional<std::string>)> onDone;
  };

  static std::unique_ptr<HttpCall> start(Loop& loop, const SocketAddress& addr, Request request, Handler handler,
                                         std::uint64_t connectTimeoutMs = 2'000);
  ~HttpCall();
  HttpCall(const HttpCall&) = delete;
  HttpCall& operator=(const HttpCall&) = delete;

 private:
  class Impl;
  explicit HttpCall(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A whole response, for callers that want one value.
struct HttpResult {
  int status = 0;
  HttpHeaders headers;
  std::string body;
};

// Runs one request on `loop` and collects the whole response (bodies over
// `maxBody` fail the call). The returned call must be kept until `done`.
std::unique_ptr<HttpCall> fetch(Loop& loop, const SocketAddress& addr, HttpCall::Request request,
                                std::function<void(Expected<HttpResult, std::string>)> done,
                                std::size_t maxBody = 16 << 20, std::uint64_t connectTimeoutMs = 2'000);

// Whole-response calls held until they finish, for an owner that starts
// several and may be destroyed first: destroying the set cancels every call
// in flight (no callback runs after that); a finished call is freed after
// its callback returns.
class FetchSet {
 public:
  explicit FetchSet(Loop& loop) : loop_(loop) {}
  ~FetchSet() {
    *alive_ = false;
    calls_.clear();
  }
  FetchSet(const FetchSet&) = delete;
  FetchSet& operator=(const FetchSet&) = delete;
  void fetch(const SocketAddress& addr, HttpCall::Request request,
             std::function<void(Expected<HttpResult, std::string>)> done, std::size_t maxBody = 16 << 20);

 private:
  Loop& loop_;
  std::map<std::uint64_t, std::unique_ptr<HttpCall>> calls_;
  std::uint64_t next_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace switchyard::runtime
