#include "router/tracer.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "router/trace.h"

namespace switchyard::router {

std::int64_t wallClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string spansJson(const std::vector<Span>& spans) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& s : spans) {
    nlohmann::ordered_json j;
    j["traceId"] = s.traceId;
    if (s.parentId != 0) j["parentId"] = hexId(s.parentId);
    j["id"] = hexId(s.id);
    j["kind"] = s.kind;
    j["name"] = s.name;
    j["timestamp"] = s.timestampUs;
    j["duration"] = std::max<std::int64_t>(s.durationUs, 1);
    j["localEndpoint"] = {{"serviceName", s.localService}};
    if (!s.remoteIp.empty()) {
      nlohmann::ordered_json remote;
      remote[s.remoteIp.find(':') == std::string::npos ? "ipv4" : "ipv6"] = s.remoteIp;
      if (s.remotePort != 0) remote["port"] = s.remotePort;
      j["remoteEndpoint"] = remote;
    }
    if (!s.tags.empty()) {
      nlohmann::ordered_json tags = nlohmann::ordered_json::object();
      for (const auto& [k, v] : s.tags) tags[k] = v;
      j["tags"] = tags;
    }
    if (s.shared) j["shared"] = true;
    if (s.debug) j["debug"] = true;
    out.push_back(std::move(j));
  }
  // Bytes a peer sent (a path) may not be UTF-8: replace rather than throw.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Tracer::Tracer(runtime::Loop& loop, ZipkinSettings settings,
               std::function<void(std::vector<Span>, std::uint64_t)> ship)
    : settings_(std::move(settings)), ship_(std::move(ship)), timer_(loop) {
  auto every = static_cast<std::uint64_t>(settings_.flushIntervalMs);
  timer_.start(every, [this] { flush(); }, every);
}

void Tracer::record(Span span) {
  // Bounded between flushes: a burst beyond the exporter's queue is dropped
  // here rather than carried to the main loop.
  if (buffer_.size() >= static_cast<std::size_t>(settings_.maxQueuedSpans)) {
    ++dropped_;
    return;
  }
  buffer_.push_back(std::move(span));
}

void Tracer::flush() {
  if (buffer_.empty() && dropped_ == 0) return;
  ship_(std::move(buffer_), dropped_);
  buffer_.clear();
  dropped_ = 0;
}

ZipkinExporter::ZipkinExporter(runtime::Loop& loop, ZipkinSettings settings)
    : loop_(loop), settings_(std::move(settings)), timeout_(loop), backoff_(loop) {}

ZipkinExporter::~ZipkinExporter() {
  if (stream_) stream_->setHandler(nullptr);
}

void ZipkinExporter::add(std::vector<Span> spans, std::uint64_t droppedElsewhere) {
  stats_.dropped += droppedElsewhere;
  for (auto& s : spans) {
    if (queue_.size() >= static_cast<std::size_t>(settings_.maxQueuedSpans)) {
      ++stats_.dropped;
      continue;
    }
    queue_.push_back(std::move(s));
  }
  sendNext();
}

void ZipkinExporter::sendNext() {
  if (inFlight_ > 0 || backingOff_ || queue_.empty()) return;
  auto addr = runtime::SocketAddress::parse(settings_.host, settings_.port);
  if (!addr) {
    done(false, addr.error());
    return;
  }
  std::size_t n = std::min<std::size_t>(queue_.size(), static_cast<std::size_t>(settings_.batchSize));
  std::vector<Span> batch(std::make_move_iterator(queue_.begin()),
                          std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
  inFlight_ = n;
  status_ = 0;
  std::string body = spansJson(batch);
  std::string request = "POST /api/v2/spans HTTP/1.1\r\nHost: " + addr->show() +
                        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n" + body;
  timeout_.start(5'000, [this] { done(false, "no answer within 5 s"); });
  connecting_ = runtime::TcpConnect::start(loop_, *addr, 2'000, [this, request](auto result) {
    loop_.deleteLater(std::move(connecting_));
    if (!result) {
      done(false, result.error());
      return;
    }
    stream_ = std::move(*result);
    parser_ = std::make_unique<runtime::Http1Parser>(runtime::Http1Parser::Type::Response, *this,
                                                     runtime::Http1Parser::Limits{8 * 1024, 64 * 1024});
    stream_->setHandler(this);
    stream_->startReading();
    stream_->write(request);
  });
}

void ZipkinExporter::onData(std::string_view data) {
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
  if (inFlight_ == 0) return;
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
  if (stream_) {
    stream_->setHandler(nullptr);
    stream_.reset();
  }
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
