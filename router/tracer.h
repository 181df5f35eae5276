#pragma once

// Zipkin tracing: spans recorded on the workers, exported from the main loop.
//
// Each worker's Tracer buffers the spans its requests finish (bounded) and
// hands them over in batches once a second; the ZipkinExporter on the main
// loop queues them (bounded) and POSTs them as Zipkin v2 JSON to the
// collector, one batch at a time. Nothing on the request path waits for the
// collector: a slow or dead one only makes spans be dropped, and counted.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/http1_parser.h"
#include "runtime/loop.h"
#include "runtime/tcp.h"
#include "runtime/timer.h"

namespace switchyard::router {

// io.l5d.zipkin's settings.
struct ZipkinSettings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9411;
  double sampleRate = 0.001;
  std::int64_t batchSize = 100;         // spans per POST
  std::int64_t maxQueuedSpans = 10'000; // in the exporter; more are dropped
  std::int64_t flushIntervalMs = 1'000;
};

struct Span {
  std::string traceId;  // lower hex, 16 or 32 digits
  std::uint64_t id = 0;
  std::uint64_t parentId = 0;  // 0: a root span
  const char* kind = "SERVER";
  std::string name;
  std::int64_t timestampUs = 0;  // epoch microseconds
  std::int64_t durationUs = 1;
  std::string localService;
  std::string remoteIp;
  std::uint16_t remotePort = 0;
  std::vector<std::pair<std::string, std::string>> tags;
  bool shared = false;
  bool debug = false;
};

// Zipkin v2 JSON: a list of spans.
std::string spansJson(const std::vector<Span>& spans);

// Epoch microseconds now (spans' timestamps are wall-clock time).
std::int64_t wallClockUs();

class Tracer {
 public:
  // `ship` runs on the worker's loop with a batch and the number of spans
  // dropped here since the last one; it must hand them to the main loop.
  Tracer(runtime::Loop& loop, ZipkinSettings settings,
         std::function<void(std::vector<Span>, std::uint64_t dropped)> ship);
  double sampleRate() const { return settings_.sampleRate; }
  void record(Span span);

 private:
  void flush();
  ZipkinSettings settings_;
  std::function<void(std::vector<Span>, std::uint64_t)> ship_;
  std::vector<Span> buffer_;
  std::uint64_t dropped_ = 0;
  runtime::Timer timer_;
};

class ZipkinExporter final : public runtime::TcpStream::Handler, public runtime::Http1Parser::Handler {
 public:
  ZipkinExporter(runtime::Loop& loop, ZipkinSettings settings);
  ~ZipkinExporter() override;
  void add(std::vector<Span> spans, std::uint64_t droppedElsewhere);

  struct Stats {
    std::uint64_t sent = 0;
    std::uint64_t dropped = 0;
    std::uint64_t failedBatches = 0;
  };
  Stats stats() const { return stats_; }

 private:
  void sendNext();
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
  std::deque<Span> queue_;
  std::size_t inFlight_ = 0;  // spans in the POST under way
  int status_ = 0;
  bool backingOff_ = false;
  std::unique_ptr<runtime::TcpConnect> connecting_;
  runtime::TcpStreamPtr stream_;
  std::unique_ptr<runtime::Http1Parser> parser_;
  runtime::Timer timeout_;
  runtime::Timer backoff_;
  Stats stats_;
  std::string lastError_;
};

}  // namespace switchyard::router
