#pragma once

// Zipkin tracing: spans recorded on the workers, exported from the main loop.
//
// Each worker's Tracer writes the spans its requests finish as Zipkin v2 JSON
// into a buffer (bounded) and hands the text over once a second; the
// ZipkinExporter on the main loop queues it (bounded) and POSTs it to the
// collector over one keep-alive connection, one batch at a time. Nothing on
// the request path waits for the collector: a slow or dead one only makes
// spans be dropped, and counted. Spans are serialized where they are made,
// once, straight into the text that is sent.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "namer/dns_settings.h"
#include "runtime/dns_resolver.h"
#include "runtime/http1_parser.h"
#include "runtime/loop.h"
#include "runtime/tcp.h"
#include "runtime/timer.h"

namespace switchyard::router {

// io.l5d.zipkin's settings.
struct ZipkinSettings {
  std::string host = "127.0.0.1";  // an address, or a name resolved by DNS
  std::uint16_t port = 9411;
  double sampleRate = 0.001;
  std::int64_t batchSize = 1'000;       // spans per POST, at most
  std::int64_t maxQueuedSpans = 10'000; // in the exporter; more are dropped
  std::int64_t flushIntervalMs = 1'000;
};

// One span, its strings borrowed from the caller for the time of the call.
struct Span {
  std::string_view traceId;  // lower hex, 16 or 32 digits
  std::uint64_t id = 0;
  std::uint64_t parentId = 0;  // 0: a root span
  std::string_view kind = "SERVER";  // a constant: written without escaping
  std::string_view name;
  std::int64_t timestampUs = 0;  // epoch microseconds
  std::int64_t durationUs = 1;
  std::string_view localService;
  std::string_view remoteIp;
  std::uint16_t remotePort = 0;
  // Tags, in a fixed array: recording a span allocates nothing but its text.
  // Keys are constants of ours ("http.path"), written without escaping;
  // values are escaped.
  static constexpr std::size_t kMaxTags = 8;
  std::pair<std::string_view, std::string_view> tags[kMaxTags];
  std::size_t tagCount = 0;
  bool shared = false;
  bool debug = false;

  void tag(std::string_view key, std::string_view value) {
    if (tagCount < kMaxTags) tags[tagCount++] = {key, value};
  }
};

// Appends `span` as one Zipkin v2 JSON object.
void appendSpanJson(std::string& out, const Span& span);

// A batch of serialized spans: "{...},{...}" and how many.
struct SpanBatch {
  std::string json;
  std::size_t count = 0;
};

// Epoch microseconds now (spans' timestamps are wall-clock time).
std::int64_t wallClockUs();

class Tracer {
 public:
  // `ship` runs on the worker's loop with a batch and the number of spans
  // dropped here since the last one; it must hand them to the main loop.
  Tracer(runtime::Loop& loop, ZipkinSettings settings, std::function<void(SpanBatch, std::uint64_t dropped)> ship);
  double sampleRate() const { return settings_.sampleRate; }
  void record(const Span& span);

 private:
  void flush();
  ZipkinSettings settings_;
  std::function<void(SpanBatch, std::uint64_t)> ship_;
  SpanBatch buffer_;
  std::uint64_t dropped_ = 0;
  runtime::Timer timer_;
};

class ZipkinExporter final : public runtime::TcpStream::Handler, public runtime::Http1Parser::Handler {
 public:
  // `dns`: how a collector host name is resolved.
  ZipkinExporter(runtime::Loop& loop, ZipkinSettings settings, namer::DnsSettings dns);
  ~ZipkinExporter() override;
  void add(SpanBatch batch, std::uint64_t droppedElsewhere);

  struct Stats {
    std::uint64_t sent = 0;
    std::uint64_t dropped = 0;
    std::uint64_t failedBatches = 0;
  };
  Stats stats() const { return stats_; }

 private:
  void sendNext();
  void connect(const std::string& ip);
  void send();  // the POST under way, on stream_
  void done(bool ok, const std::string& why);
  // TcpStream::Handler
  void onData(std::string_view data) override;
  void onClosed(const std::string& error) override;
  // Http1Parser::Handler
  void onResponseHead(runtime::ResponseHead&& head, const runtime::BodyFraming& framing) override;
  void onBody(std::string_view) override {}
  void onMessageEnd() override;

  runtime::Loop& loop_;
  ZipkinSettings settings_;
  namer::DnsSettings dnsSettings_;
  std::unique_ptr<runtime::DnsResolver> dns_;  // only for a host name
  std::deque<SpanBatch> queue_;
  std::size_t queued_ = 0;    // spans in queue_
  std::size_t inFlight_ = 0;  // spans in the POST under way
  std::vector<std::string> request_;  // the POST in pieces: head, batches, brackets
  int status_ = 0;
  bool keepAlive_ = false;    // the collector keeps the connection
  bool backingOff_ = false;
  std::unique_ptr<runtime::TcpConnect> connecting_;
  runtime::TcpStreamPtr stream_;
  std::unique_ptr<runtime::Http1Parser> parser_;
  runtime::Timer timeout_;
  runtime::Timer backoff_;
  Stats stats_;
  std::string lastError_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace switchyard::router
