#pragma once

// HttpServer: a small HTTP/1.1 server for control planes (the admin port,
// the namer service's API), not for proxying. Each request is read whole (up
// to a body limit) and handed to one handler, which answers at once or later,
// whole or as a chunked stream that lasts until it ends it or the client
// goes away. Requests on one connection are answered in order: the next one
// is parsed only after the current reply ended.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "dtab/expected.h"
#include "runtime/http_message.h"
#include "runtime/loop.h"
#include "runtime/tcp.h"

namespace switchyard::runtime {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: `/a?b`
  HttpHeaders headers;
  std::string body;
  std::string peer;  // ip:port of the client

  std::string path() const;                                  // the target before `?`
  std::optional<std::string> query(std::string_view key) const;  // percent-decoded
};

// The answer side of one request. The handler may keep it (a shared_ptr)
// and answer after returning; every call after the client went away is a
// no-op.
class HttpResponder {
 public:
  // A whole response; `headers` adds to Content-Type and Content-Length.
  void reply(int status, std::string_view contentType, std::string body, HttpHeaders headers = {});
  // A streamed response: chunked, until end() or until the client goes.
  void startStream(int status, std::string_view contentType, HttpHeaders headers = {});
  // One chunk of a stream. False if the client is gone (or was cut off for
  // not reading: more than the server's maxStreamBacklog unsent).
  bool write(std::string_view data);
  void end();
  bool gone() const { return conn_ == nullptr; }
  // Runs once, on the loop, if the client goes before the response ended.
  void onGone(std::function<void()> fn) { onGone_ = std::move(fn); }

 private:
  friend class HttpServer;
  class Conn;
  explicit HttpResponder(Conn* conn) : conn_(conn) {}
  void detach();
  Conn* conn_;
  bool started_ = false;
  bool streaming_ = false;
  std::function<void()> onGone_;
};

class HttpServer {
 public:
  struct Options {
    std::size_t maxBodyBytes = 1 << 20;
    std::size_t maxHeaderBytes = 64 * 1024;
    // Unsent stream bytes beyond which a client that does not read is cut off.
    std::size_t maxStreamBacklog = 8 << 20;
    std::string name = "server";  // in error messages: "admin", "namer API"
  };
  using Handler = std::function<void(HttpRequest&&, std::shared_ptr<HttpResponder>)>;

  HttpServer(Loop& loop, Options options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Expected<std::uint16_t, std::string> listen(const std::string& ip, std::uint16_t port);
  // Stops accepting; open connections (and streams) stay.
  void stop();
  // Ends every connection, streams included.
  void closeAll();

 private:
  friend class HttpResponder::Conn;
  Loop& loop_;
  Options options_;
  Handler handler_;
  std::unique_ptr<TcpListener> listener_;
  std::set<HttpResponder::Conn*> conns_;
};

// The percent-decoded value of `key` in a target's query (`/p?a=1&b=x%20y`),
// or nullopt when the key is absent.
std::optional<std::string> queryValue(std::string_view target, std::string_view key);
// Percent-decoding of a query value (`+` is a space).
std::string percentDecode(std::string_view s);
// Percent-encoding for a query value: everything but unreserved characters.
std::string percentEncode(std::string_view s);

}  // namespace switchyard::runtime
