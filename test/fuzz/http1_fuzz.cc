// libFuzzer target for the HTTP/1 codec that faces every client and backend.
// The input is split in two at its first byte (so messages arrive in pieces),
// fed as requests and as responses. Properties besides "no crash, no
// sanitizer report": the parser never claims more bytes than it was given,
// every error carries a status and a message, and a head it accepts has
// only token characters in its field names.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/http1_parser.h"

using namespace switchyard::runtime;

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

bool isToken(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

struct Sink : Http1Parser::Handler {
  void onRequestHead(RequestHead&& h, const BodyFraming&) override { check(h.headers); }
  void onResponseHead(ResponseHead&& h, const BodyFraming&) override { check(h.headers); }
  void onBody(std::string_view) override {}
  void onMessageEnd() override {}
  static void check(const HttpHeaders& headers) {
    for (const auto& [name, value] : headers.entries()) require(isToken(name));
  }
};

void run(Http1Parser::Type type, std::string_view data, std::size_t split) {
  Sink sink;
  Http1Parser parser(type, sink, Http1Parser::Limits{1024, 4096});
  std::string_view parts[2] = {data.substr(0, split), data.substr(split)};
  for (std::string_view part : parts) {
    // Keep feeding what is left, message after message, as the router does.
    for (int guard = 0; !part.empty() && guard < 1000; ++guard) {
      auto r = parser.feed(part);
      require(r.consumed <= part.size());
      if (r.status == Http1Parser::Status::Error) {
        require(!r.error.empty() && r.httpStatus >= 400);
        return;
      }
      if (r.status == Http1Parser::Status::Upgrade) return;
      part.remove_prefix(r.consumed);
      if (r.status == Http1Parser::Status::NeedMore) break;
    }
  }
  (void)parser.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t split = text.empty() ? 0 : data[0] % (text.size() + 1);
  run(Http1Parser::Type::Request, text, split);
  run(Http1Parser::Type::Response, text, split);
  return 0;
}
