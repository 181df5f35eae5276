#include "router/tracer.h"

#include <array>
#include <charconv>
#include <chrono>
#include <cstring>

#include "dtab/system_namers.h"
#include "router/trace.h"

namespace switchyard::router {

std::int64_t wallClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

bool validUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 4;
    if (n == 4 || (n > 0 && i + n >= s.size())) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

// The ASCII bytes a JSON string carries as they are.
constexpr std::array<bool, 256> kPlainAscii = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

// Whether 8 bytes are all plain ASCII (no control byte, quote, backslash,
// DEL or byte over 0x7f), tested at once.
bool plainWord(std::uint64_t x) {
  constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  auto hasZero = [&](std::uint64_t v) { return (v - ones) & ~v & highs; };
  std::uint64_t bad = ((x - ones * 0x20) & ~x & highs)  // a byte < 0x20
                      | hasZero(x ^ (ones * '"')) | hasZero(x ^ (ones * '\\')) | hasZero(x ^ (ones * 0x7f)) |
                      (x & highs);
  return bad == 0;
}

// Writes JSON text into room reserved beforehand: no capacity check per
// piece. Every string costs at most 6 bytes per byte (\u00XX) plus quotes.
class JsonWriter {
 public:
  explicit JsonWriter(char* p) : p_(p) {}
  char* end() const { return p_; }

  template <std::size_t N>
  void lit(const char (&text)[N]) {
    std::memcpy(p_, text, N - 1);
    p_ += N - 1;
  }
  void raw(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  // A string known to need no escape (a constant of ours).
  void plainString(std::string_view s) {
    *p_++ = '"';
    raw(s);
    *p_++ = '"';
  }
  void number(std::int64_t v) { p_ = std::to_chars(p_, p_ + 24, v).ptr; }
  void hexId(std::uint64_t id) {
    *p_++ = '"';
    writeHexId(p_, id);
    p_ += 16;
    *p_++ = '"';
  }
  // A JSON string. Bytes that are not UTF-8 (a peer's path may hold any) are
  // written as \u00XX, so the document stays valid.
  void string(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    *p_++ = '"';
    std::size_t i = 0;
    // Most strings are plain ASCII: 8 bytes at a time while they are.
    while (i + 8 <= s.size()) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (!plainWord(w)) break;
      std::memcpy(p_, s.data() + i, 8);
      p_ += 8;
      i += 8;
    }
    int utf8 = -1;  // checked at the first byte over 0x7f
    for (; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (kPlainAscii[c]) {
        *p_++ = static_cast<char>(c);
        continue;
      }
      if (c >= 0x80) {
        if (utf8 < 0) utf8 = validUtf8(s) ? 1 : 0;
        if (utf8 == 1) {
          *p_++ = static_cast<char>(c);
          continue;
        }
      }
      if (c == '"' || c == '\\') {
        *p_++ = '\\';
        *p_++ = static_cast<char>(c);
      } else {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        std::memcpy(p_, esc, 6);
        p_ += 6;
      }
    }
    *p_++ = '"';
  }

 private:
  char* p_;
};

}  // namespace

void appendSpanJson(std::string& out, const Span& s) {
  // Room for the worst case, written without further checks: a buffer on
  // the stack for the usual span, appended once (no zero-filling of spare
  // room); the string itself for a span with long strings.
  std::size_t strings = s.traceId.size() + s.kind.size() + s.name.size() + s.localService.size() + s.remoteIp.size();
  for (std::size_t i = 0; i < s.tagCount; ++i) strings += s.tags[i].first.size() + s.tags[i].second.size();
  std::size_t bound = 400 + 6 * strings + 3 * s.tagCount;
  char stack[4096];
  std::size_t at = out.size();
  bool onStack = bound <= sizeof stack;
  if (!onStack) out.resize(at + bound);
  char* start = onStack ? stack : out.data() + at;
  JsonWriter w(start);
  w.lit("{\"traceId\":");
  w.string(s.traceId);
  if (s.parentId != 0) {
    w.lit(",\"parentId\":");
    w.hexId(s.parentId);
  }
  w.lit(",\"id\":");
  w.hexId(s.id);
  w.lit(",\"kind\":");
  w.plainString(s.kind);
  w.lit(",\"name\":");
  w.string(s.name);
  w.lit(",\"timestamp\":");
  w.number(s.timestampUs);
  w.lit(",\"duration\":");
  w.number(std::max<std::int64_t>(s.durationUs, 1));
  w.lit(",\"localEndpoint\":{\"serviceName\":");
  w.string(s.localService);
  w.lit("}");
  if (!s.remoteIp.empty()) {
    if (s.remoteIp.find(':') == std::string_view::npos) {
      w.lit(",\"remoteEndpoint\":{\"ipv4\":");
    } else {
      w.lit(",\"remoteEndpoint\":{\"ipv6\":");
    }
    w.string(s.remoteIp);
    if (s.remotePort != 0) {
      w.lit(",\"port\":");
      w.number(s.remotePort);
    }
    w.lit("}");
  }
  if (s.tagCount > 0) {
    w.lit(",\"tags\":{");
    for (std::size_t i = 0; i < s.tagCount; ++i) {
      if (i > 0) w.lit(",");
      w.plainString(s.tags[i].first);
      w.lit(":");
      w.string(s.tags[i].second);
    }
    w.lit("}");
  }
  if (s.shared) w.lit(",\"shared\":true");
  if (s.debug) w.lit(",\"debug\":true");
  w.lit("}");
  std::size_t written = static_cast<std::size_t>(w.end() - start);
  if (onStack) {
    out.append(stack, written);
  } else {
    out.resize(at + written);
  }
}

Tracer::Tracer(runtime::Loop& loop, ZipkinSettings settings, std::function<void(SpanBatch, std::uint64_t)> ship)
    : settings_(std::move(settings)), ship_(std::move(ship)), timer_(loop) {
  auto every = static_cast<std::uint64_t>(settings_.flushIntervalMs);
  timer_.start(every, [this] { flush(); }, every);
}

void Tracer::record(const Span& span) {
  // Bounded between flushes: a burst beyond the exporter's queue is dropped
  // here rather than carried to the main loop.
  if (buffer_.count >= static_cast<std::size_t>(settings_.maxQueuedSpans)) {
    ++dropped_;
    return;
  }
  if (buffer_.count > 0) {
    buffer_.json += ',';
  } else {
    buffer_.json.reserve(static_cast<std::size_t>(std::min<std::int64_t>(settings_.batchSize, 1'000)) * 640);
  }
  appendSpanJson(buffer_.json, span);
  ++buffer_.count;
  // A full batch goes at once rather than wait for the timer.
  if (buffer_.count >= static_cast<std::size_t>(settings_.batchSize)) flush();
}

void Tracer::flush() {
  if (buffer_.count == 0 && dropped_ == 0) return;
  ship_(std::move(buffer_), dropped_);
  buffer_ = SpanBatch{};
  dropped_ = 0;
}

ZipkinExporter::ZipkinExporter(runtime::Loop& loop, ZipkinSettings settings, namer::DnsSettings dns)
    : loop_(loop), settings_(std::move(settings)), dnsSettings_(std::move(dns)), timeout_(loop), backoff_(loop) {}

ZipkinExporter::~ZipkinExporter() {
  *alive_ = false;
  if (stream_) stream_->setHandler(nullptr);
}

void ZipkinExporter::add(SpanBatch batch, std::uint64_t droppedElsewhere) {
  stats_.dropped += droppedElsewhere;
  if (batch.count == 0) return;
  if (queued_ + batch.count > static_cast<std::size_t>(settings_.maxQueuedSpans)) {
    stats_.dropped += batch.count;
    return;
  }
  queued_ += batch.count;
  queue_.push_back(std::move(batch));
  sendNext();
}

void ZipkinExporter::sendNext() {
  if (inFlight_ > 0 || backingOff_ || queue_.empty()) return;
  // Whole worker batches, up to batchSize spans (at least one batch),
  // written once into the request.
  std::size_t n = 0;
  std::size_t batches = 0;
  std::size_t bodySize = 2;
  for (const auto& b : queue_) {
    if (n > 0 && n + b.count > static_cast<std::size_t>(settings_.batchSize)) break;
    n += b.count;
    bodySize += b.json.size() + (batches > 0 ? 1 : 0);
    ++batches;
  }
  // The head, then each batch's text as it is: no copy into one string.
  request_.clear();
  request_.push_back("POST /api/v2/spans HTTP/1.1\r\nHost: " + settings_.host + ":" + std::to_string(settings_.port) +
                     "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(bodySize) +
                     "\r\n\r\n[");
  for (std::size_t i = 0; i < batches; ++i) {
    if (i > 0) request_.push_back(",");
    request_.push_back(std::move(queue_.front().json));
    queued_ -= queue_.front().count;
    queue_.pop_front();
  }
  request_.push_back("]");
  inFlight_ = n;
  timeout_.start(5'000, [this] { done(false, "no answer within 5 s"); });
  if (stream_) {
    send();  // the kept-alive connection
    return;
  }
  if (dtab::parseIpLiteral(settings_.host)) {
    connect(settings_.host);
    return;
  }
  // A host name: looked up for each new connection.
  if (!dns_) {
    auto dns = namer::makeDnsResolver(loop_, dnsSettings_);
    if (!dns) {
      done(false, "no DNS resolver for " + settings_.host + ": " + dns.error());
      return;
    }
    dns_ = std::move(*dns);
  }
  dns_->resolveHost(settings_.host, [this, alive = alive_](runtime::DnsResolver::HostResult r) {
    if (!*alive || inFlight_ == 0) return;  // gone, or timed out meanwhile
    if (r.status != runtime::DnsResolver::Status::Ok) {
      done(false, "cannot resolve " + settings_.host + ": " + r.error);
      return;
    }
    connect(r.addresses.front());
  });
}

void ZipkinExporter::connect(const std::string& ip) {
  auto addr = runtime::SocketAddress::parse(ip, settings_.port);
  if (!addr) {
    done(false, addr.error());
    return;
  }
  connecting_ = runtime::TcpConnect::start(loop_, *addr, 2'000, [this](auto result) {
    loop_.deleteLater(std::move(connecting_));
    if (!result) {
      done(false, result.error());
      return;
    }
    stream_ = std::move(*result);
    stream_->setHandler(this);
    stream_->startReading();
    send();
  });
}

void ZipkinExporter::send() {
  status_ = 0;
  parser_ = std::make_unique<runtime::Http1Parser>(runtime::Http1Parser::Type::Response, *this,
                                                   runtime::Http1Parser::Limits{8 * 1024, 64 * 1024});
  for (auto& piece : request_) stream_->write(std::move(piece));
  request_.clear();
}

void ZipkinExporter::onData(std::string_view data) {
  if (inFlight_ == 0) {
    // Nothing was asked: the collector is closing or misbehaving.
    if (stream_) loop_.defer([this] { stream_.reset(); });
    return;
  }
  while (!data.empty() && parser_ && inFlight_ > 0) {
    auto r = parser_->feed(data);
    if (r.status == runtime::Http1Parser::Status::Error) {
      done(false, "invalid response: " + r.error);
      return;
    }
    data.remove_prefix(r.consumed);
    if (r.status == runtime::Http1Parser::Status::NeedMore) return;
  }
}

void ZipkinExporter::onClosed(const std::string& error) {
  if (inFlight_ == 0) {
    // An idle kept-alive connection closed: the next POST opens another.
    if (stream_) {
      stream_->setHandler(nullptr);
      loop_.defer([this] { stream_.reset(); });
    }
    return;
  }
  if (parser_ && parser_->inMessage() && status_ != 0) {
    parser_->finish();  // a body delimited by the close
    if (inFlight_ == 0) return;
  }
  done(false, error.empty() ? "the collector closed the connection" : error);
}

void ZipkinExporter::onResponseHead(runtime::ResponseHead&& head, const runtime::BodyFraming&) {
  status_ = head.status;
}

void ZipkinExporter::onMessageEnd() {
  if (status_ >= 100 && status_ < 200) return;  // an interim response
  keepAlive_ = parser_ && parser_->keepAlive();
  done(status_ >= 200 && status_ < 300, "the collector answered " + std::to_string(status_));
}

void ZipkinExporter::done(bool ok, const std::string& why) {
  if (inFlight_ == 0 && ok) return;
  timeout_.stop();
  if (ok) {
    stats_.sent += inFlight_;
  } else {
    stats_.dropped += inFlight_;
    ++stats_.failedBatches;
    if (why != lastError_) {
      std::fprintf(stderr, "switchyard: zipkin: sending spans to %s:%u failed: %s (spans are dropped until it works)\n",
                   settings_.host.c_str(), settings_.port, why.c_str());
      lastError_ = why;
    }
  }
  if (ok) lastError_.clear();
  inFlight_ = 0;
  // Released after this callback: we may be inside the parser or stream.
  if (connecting_) loop_.deleteLater(std::move(connecting_));
  if (parser_) loop_.deleteLater(std::move(parser_));
  if (stream_ && !(ok && keepAlive_)) {
    stream_->setHandler(nullptr);
    stream_.reset();
  }
  keepAlive_ = false;
  if (!ok) {
    // A failing collector is tried again after a second, not in a loop.
    backingOff_ = true;
    backoff_.start(1'000, [this] {
      backingOff_ = false;
      sendNext();
    });
    return;
  }
  loop_.defer([this] { sendNext(); });
}

}  // namespace switchyard::router
