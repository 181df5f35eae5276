#pragma once

// Http1Parser: llhttp behind our own types. Feeds bytes of one connection and
// reports each message as a head, body pieces and an end. It stops after
// every complete message (and after an upgrade), so its owner handles one
// message at a time: the bytes it did not consume stay with the owner until
// it asks for the next message. Limits on the request line and the header
// section are enforced here, with the status a server should answer.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/http_message.h"

namespace switchyard::runtime {

// How a message's body is delimited on the wire.
struct BodyFraming {
  enum Kind { None, ContentLength, Chunked, UntilClose };
  Kind kind = None;
  std::uint64_t length = 0;  // ContentLength only
};

class Http1Parser {
 public:
  enum class Type { Request, Response };

  struct Limits {
    std::size_t maxInitialLine = 4 * 1024;  // request line (URL) bytes
    std::size_t maxHeaderBytes = 8 * 1024;  // all field names and values
  };

  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void onRequestHead(RequestHead&&, const BodyFraming&) {}
    virtual void onResponseHead(ResponseHead&&, const BodyFraming&) {}
    virtual void onBody(std::string_view data) = 0;
    virtual void onMessageEnd() = 0;
  };

  enum class Status {
    NeedMore,    // everything consumed; feed more bytes
    MessageEnd,  // a message ended; `consumed` bytes were used
    Upgrade,     // an upgrade/CONNECT message ended; the rest is raw bytes
    Error,
  };
  struct Result {
    Status status;
    std::size_t consumed;
    std::string error;     // for Error: what was wrong, for a person
    int httpStatus = 400;  // for Error on requests: 400, 414 or 431
  };

  Http1Parser(Type type, Handler& handler, Limits limits);
  ~Http1Parser();
  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  Result feed(std::string_view data);
  // The peer closed: ends a body delimited by the close, or reports a
  // truncated message.
  Result finish();

  // The next response answers a HEAD request (no body whatever it says).
  void expectHeadResponse() { headResponse_ = true; }
  // Whether the connection may carry another message after this one.
  bool keepAlive() const;
  // True between a message's first byte and its end.
  bool inMessage() const { return inMessage_; }

 private:
  struct Impl;
  friend struct Impl;
  std::unique_ptr<Impl> impl_;
  Handler& handler_;
  Type type_;
  Limits limits_;
  bool headResponse_ = false;
  bool inMessage_ = false;
};

// Serialization of heads and chunked framing.
std::string serializeRequestHead(const RequestHead& head);
std::string serializeResponseHead(const ResponseHead& head);
std::string chunkHeader(std::size_t size);  // "1a2b\r\n"
inline constexpr std::string_view kChunkEnd = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
const char* reasonPhrase(int status);

}  // namespace switchyard::runtime
