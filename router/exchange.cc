#include "router/exchange.h"

#include <cctype>
#include <cstdio>

#include "router/hop_headers.h"
#include "router/server_connection.h"

namespace switchyard::router {

using runtime::BodyFraming;

namespace {

// The origin-form of a target: `http://h/a?b` -> `/a?b`.
std::string originForm(const std::string& target, std::string* authority) {
  if (target.empty() || target.front() == '/' || target == "*") return target;
  auto scheme = target.find("://");
  if (scheme == std::string::npos) return target;
  auto slash = target.find('/', scheme + 3);
  if (authority) *authority = target.substr(scheme + 3, slash == std::string::npos ? std::string::npos : slash - scheme - 3);
  if (slash == std::string::npos) {
    auto q = target.find('?', scheme + 3);
    return q == std::string::npos ? "/" : "/" + target.substr(q);
  }
  return target.substr(slash);
}

}  // namespace

Exchange::Exchange(Worker& worker, ServerConnection& server, Route route, runtime::RequestHead head,
                   const BodyFraming& framing, bool upgrade)
    : worker_(worker), server_(&server), route_(std::move(route)), upgrade_(upgrade),
      startMs_(worker.loop().nowMs()) {
  headRequest_ = head.method == "HEAD";
  idempotent_ = head.method == "GET" || head.method == "HEAD" || head.method == "OPTIONS" ||
                head.method == "PUT" || head.method == "DELETE" || head.method == "TRACE";
  chunkedIn_ = framing.kind == BodyFraming::Chunked;

  std::string authority;
  head.target = originForm(head.target, &authority);
  if (!head.headers.has("Host") && !authority.empty()) head.headers.add("Host", authority);
  stripHopByHop(head.headers, upgrade_);
  if (upgrade_) head.headers.add("Connection", "Upgrade");
  if (chunkedIn_) head.headers.add("Transfer-Encoding", "chunked");
  head.headers.add("Via", "1.1 switchyard");
  head.headers.set("l5d-dst-service", route_.logicalShown);
  head.headers.remove("l5d-dst-client");
  head.headers.remove("l5d-dst-residual");
  head.headers.set("l5d-reqid", hexId(worker_.rng()()));
  startTrace(head);
  head.versionMinor = 1;
  headPrefix_ = runtime::serializeRequestHead(head);
  headPrefix_.resize(headPrefix_.size() - 2);  // the blank line: head() adds it
}

void Exchange::startTrace(runtime::RequestHead& head) {
  auto& rng = worker_.rng();
  auto incoming = readTraceHeaders(head.headers);
  if (incoming) {
    serverTrace_ = *incoming;
    sharedSpan_ = true;
  } else {
    serverTrace_.traceId = newId(rng);
    serverTrace_.spanId = serverTrace_.traceId;
  }
  Tracer* tracer = worker_.tracer();
  if (!serverTrace_.sampled && tracer) {
    // The first traced hop decides; l5d-sample asks for a rate.
    double rate = requestedSampleRate(head.headers).value_or(tracer->sampleRate());
    serverTrace_.sampled = std::uniform_real_distribution<double>(0, 1)(rng) < rate;
  }
  head.headers.remove("l5d-sample");
  clientTrace_ = serverTrace_;
  clientTrace_.parentId = serverTrace_.spanId;
  clientTrace_.spanId = newId(rng);
  writeTraceHeaders(head.headers, clientTrace_);
  traced_ = tracer && (serverTrace_.debug || serverTrace_.sampled.value_or(false));
  if (traced_) {
    startWallUs_ = wallClockUs();
    method_ = head.method;
    path_ = head.path();
  }
}

void Exchange::recordSpans(int status, const std::string& error) {
  if (!traced_) return;
  traced_ = false;  // once
  Tracer* tracer = worker_.tracer();
  std::int64_t now = wallClockUs();
  std::string name = method_;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string& label = route_.plan->config.label;  // every route names its plan
  std::string traceId = traceIdHex(serverTrace_);
  const std::string& logical = route_.logicalShown;
  const std::string& bound = route_.boundShown;
  std::string statusText = status != 0 ? std::to_string(status) : std::string();
  std::string errorText = !error.empty() ? error : status >= 500 ? statusText : std::string();

  // The request's tags go on the server span; the client span says where it
  // went (the bound name, the endpoint) and how that went.
  if (attemptWallUs_ != 0 && !route_.pending()) {
    Span client;
    client.traceId = traceId;
    client.name = name;
    client.localService = label;
    client.debug = serverTrace_.debug;
    client.id = clientTrace_.spanId;
    client.parentId = clientTrace_.parentId;
    client.kind = "CLIENT";
    client.timestampUs = attemptWallUs_;
    client.durationUs = now - attemptWallUs_;
    client.remoteIp = route_.endpoint->endpoint.ip;
    client.remotePort = route_.endpoint->endpoint.port;
    client.tag("l5d.bound", bound);
    client.tag("l5d.endpoint", route_.endpoint->key);
    if (!statusText.empty()) client.tag("http.status_code", statusText);
    if (!errorText.empty()) client.tag("error", errorText);
    tracer->record(client);
  }
  Span span;
  span.traceId = traceId;
  span.name = name;
  span.localService = label;
  span.debug = serverTrace_.debug;
  span.tag("http.method", method_);
  span.tag("http.path", path_);
  span.tag("l5d.name", logical);
  if (!statusText.empty()) span.tag("http.status_code", statusText);
  if (!bound.empty()) span.tag("l5d.bound", bound);
  if (!errorText.empty()) span.tag("error", errorText);
  span.id = serverTrace_.spanId;
  span.parentId = serverTrace_.parentId;
  span.kind = "SERVER";
  span.timestampUs = startWallUs_;
  span.durationUs = now - startWallUs_;
  span.shared = sharedSpan_;
  tracer->record(span);
}

std::string Exchange::head() const {
  std::string h = headPrefix_;
  h += "l5d-dst-client: ";
  h += route_.boundShown;
  h += "\r\n";
  if (!route_.bound.residual.empty()) {
    h += "l5d-dst-residual: ";
    h += route_.bound.residual.show();
    h += "\r\n";
  }
  h += "\r\n";
  return h;
}

Exchange::~Exchange() { detach(); }

std::string Exchange::describeTarget() const {
  if (route_.pending()) return "a binding of " + route_.logicalName.show();
  return route_.endpoint->key + " (" + route_.bound.id.show() + ", for " + route_.logicalName.show() + ")";
}

void Exchange::start() {
  std::int64_t total = server_->plan().config.service.totalTimeoutMs;
  if (total > 0) {
    timeout_ = std::make_unique<runtime::Timer>(worker_.loop());
    timeout_->start(static_cast<std::uint64_t>(total), [this, total] {
      fail({Failure::Kind::Timeout,
            "exceeded " + std::to_string(total) + " ms service.totalTimeoutMs waiting for " + describeTarget(),
            false});
    });
  }
  if (route_.pending()) {
    waitForBinding();
    return;
  }
  beginAttempt();
}

void Exchange::beginAttempt() {
  if (traced_ && attemptWallUs_ == 0) attemptWallUs_ = wallClockUs();
  Balancer::started(*route_.endpoint);
  startAttemptTimer();
  startAttempt();
}

void Exchange::waitForBinding() {
  waiting_ = true;
  worker_.waitForNaming(this);
  std::int64_t ms = server_->plan().config.bindingTimeoutMs;
  bindingTimeout_ = std::make_unique<runtime::Timer>(worker_.loop());
  bindingTimeout_->start(static_cast<std::uint64_t>(ms), [this, ms] {
    std::string what = "an address";
    if (route_.tree) {
      what = describeLeaves(*route_.tree, [](const dtab::BoundName& l) {
        return l.addr.kind == dtab::Addr::Kind::Pending ? std::string("resolving") : std::string(dtab::kindName(l.addr.kind));
      });
    }
    fail({Failure::Kind::Timeout,
          "binding " + route_.logicalName.show() + " timed out after " + std::to_string(ms) +
              " ms (bindingTimeoutMs): waiting for " + what,
          false});
  });
}

void Exchange::stopWaiting() {
  if (!waiting_) return;
  waiting_ = false;
  worker_.stopWaiting(this);
  if (bindingTimeout_) bindingTimeout_->stop();
}

void Exchange::namingChanged() {
  auto next = worker_.rebind(route_);
  if (!next) {
    fail(next.error());
    return;
  }
  if (next->pending()) {
    route_.tree = next->tree;  // still waiting
    return;
  }
  stopWaiting();
  route_ = std::move(*next);
  if (server_) server_->rerouted(route_.bound.id);
  beginAttempt();
}

void Exchange::startAttempt() {
  if (auto pooled = worker_.pool().take(route_.endpoint->key)) {
    attach(std::move(pooled), true);
    return;
  }
  connect();
}

bool Exchange::requeue() {
  // Nothing was sent: the request (its body so far is in buffered_) can go
  // elsewhere. The failed endpoint is set aside by now, so the balancer, or
  // the union, chooses another.
  if (requeues_ >= kMaxRequeues || !server_ || !route_.tree) return false;
  auto next = worker_.reroute(route_);
  if (!next || next->endpoint == route_.endpoint) return false;  // nowhere else to go
  ++requeues_;
  route_ = std::move(*next);
  server_->rerouted(route_.bound.id);
  Balancer::started(*route_.endpoint);
  startAttempt();
  return true;
}
void Exchange::startAttemptTimer() {
  std::int64_t ms = server_->plan().config.client.requestAttemptTimeoutMs;
  if (ms <= 0) return;
  if (!attemptTimeout_) attemptTimeout_ = std::make_unique<runtime::Timer>(worker_.loop());
  attemptTimeout_->start(static_cast<std::uint64_t>(ms), [this, ms] {
    fail({Failure::Kind::Timeout,
          "exceeded " + std::to_string(ms) + " ms client.requestAttemptTimeoutMs waiting for " + describeTarget(),
          false});
  });
}

void Exchange::connect() {
  auto addr = runtime::SocketAddress::parse(route_.endpoint->endpoint.ip, route_.endpoint->endpoint.port);
  if (!addr) {
    fail({Failure::Kind::ConnectFailed, addr.error(), false});
    return;
  }
  auto timeoutMs = static_cast<std::uint64_t>(server_->plan().config.client.connectTimeoutMs);
  std::uint64_t startedMs = worker_.loop().nowMs();
  connecting_ = runtime::TcpConnect::start(worker_.loop(), *addr, timeoutMs, [this, startedMs, timeoutMs](auto result) {
    // connecting_ is this callback's owner: release it after the call.
    worker_.loop().deleteLater(std::move(connecting_));
    if (!result) {
      report(/*connectFailed=*/true);
      // A refused or reset connect is requeued; one that timed out is not,
      // or a black-holed endpoint would multiply the wait.
      if (worker_.loop().nowMs() - startedMs < timeoutMs && requeue()) return;
      fail({Failure::Kind::ConnectFailed,
            result.error() + " while forwarding to " + route_.bound.id.show() + " for " + route_.logicalName.show(),
            true});
      return;
    }
    attach(std::move(*result), false);
  });
}

void Exchange::attach(runtime::TcpStreamPtr stream, bool pooled) {
  upstream_ = std::move(stream);
  pooled_ = pooled;
  // Only idempotent requests are sent again: a POST the endpoint did process
  // before closing must not run twice.
  if (pooled_ && !retried_ && idempotent_) replay_ = std::string();
  parser_ = std::make_unique<runtime::Http1Parser>(runtime::Http1Parser::Type::Response, *this,
                                                   runtime::Http1Parser::Limits{16 * 1024, 64 * 1024});
  if (headRequest_) parser_->expectHeadResponse();
  upstream_->setHandler(this);
  upstream_->setOnDrained([this] {
    if (server_) server_->upstreamDrained();
  });
  upstream_->startReading();
  std::string first = head();
  sentHeadSize_ = first.size();
  first += buffered_;
  buffered_.clear();
  sendUpstream(std::move(first));
}

void Exchange::sendUpstream(std::string bytes) {
  if (!upstream_) {
    buffered_ += bytes;
    return;
  }
  if (replay_) {
    if (replay_->size() + bytes.size() <= kHighWater) {
      *replay_ += bytes;
    } else {
      replay_.reset();  // too much to hold: this request cannot be replayed
    }
  }
  upstream_->write(std::move(bytes));
}

std::size_t Exchange::upstreamBacklog() const {
  return buffered_.size() + (upstream_ ? upstream_->pendingWriteBytes() : 0);
}

void Exchange::requestBody(std::string_view data) {
  if (tunnel_ || finished_) return;
  if (chunkedIn_) {
    std::string framed = runtime::chunkHeader(data.size());
    framed += data;
    framed += runtime::kChunkEnd;
    sendUpstream(std::move(framed));
  } else {
    sendUpstream(std::string(data));
  }
}

void Exchange::requestEnd() {
  if (finished_) return;
  if (chunkedIn_) sendUpstream(std::string(runtime::kLastChunk));
  requestDone_ = true;
  maybeFinish();
}

void Exchange::tunnelFromClient(std::string_view data) {
  if (upstream_) upstream_->write(data);
}

void Exchange::clientClosed() {
  // The client went away: nothing more to do for it.
  server_ = nullptr;
  detach();
}

void Exchange::clientDrained() {
  if (upstream_ && !finished_) upstream_->startReading();
}

void Exchange::onData(std::string_view data) {
  if (tunnel_) {
    if (server_) {
      server_->client().write(data);
      if (server_->client().pendingWriteBytes() > kHighWater) upstream_->stopReading();
    }
    return;
  }
  // Everything this read produces for the client goes out in one write.
  // The client stream outlives this call even if the exchange finishes.
  runtime::TcpStream* client = server_ ? &server_->client() : nullptr;
  if (client) client->cork();
  feedResponse(data);
  if (client) client->uncork();
}

void Exchange::feedResponse(std::string_view data) {
  while (!data.empty() && parser_ && !finished_) {
    auto r = parser_->feed(data);
    if (r.status == runtime::Http1Parser::Status::Error) {
      report(false);
      if (!responseStarted_) {
        fail({Failure::Kind::BadResponse, describeTarget() + " sent an invalid response: " + r.error, false});
      } else {
        finished_ = true;
        if (server_) server_->exchangeAborted();
      }
      return;
    }
    data.remove_prefix(r.consumed);
    if (r.status == runtime::Http1Parser::Status::Upgrade && tunnel_) {
      // What follows the 101 belongs to the new protocol.
      if (!data.empty() && server_) server_->client().write(data);
      return;
    }
    if (r.status == runtime::Http1Parser::Status::NeedMore) return;
  }
}

void Exchange::onClosed(const std::string& error) {
  if (finished_) return;
  if (tunnel_) {
    finished_ = true;
    if (server_) server_->exchangeAborted();
    return;
  }
  if (parser_ && parser_->inMessage() && responseStarted_) {
    // A body delimited by the close ends here; anything else was truncated.
    auto r = parser_->finish();
    if (r.status == runtime::Http1Parser::Status::MessageEnd) return;
  }
  if (!responseStarted_ && pooled_ && replay_ && !retried_ && !parser_->inMessage()) {
    // The server closed a pooled connection as we reused it: send again on a
    // fresh one, which the client never notices.
    retried_ = true;
    buffered_ = std::move(*replay_) + buffered_;
    replay_.reset();
    buffered_.erase(0, sentHeadSize_);  // attach() sends the head again
    upstream_.reset();
    parser_.reset();
    startAttemptTimer();
    connect();
    return;
  }
  report(false);
  std::string why = error.empty() ? "the connection was closed" : error;
  if (!responseStarted_) {
    fail({Failure::Kind::ConnectFailed, describeTarget() + " closed the connection before responding: " + why, true});
    return;
  }
  finished_ = true;
  if (server_) server_->exchangeAborted();
}

void Exchange::onResponseHead(runtime::ResponseHead&& head, const BodyFraming& framing) {
  if (!server_) return;
  replay_.reset();  // a response began: never replay
  if (timeout_) timeout_->stop();
  if (attemptTimeout_) attemptTimeout_->stop();
  const RouterConfig& config = server_->plan().config;
  auto maxBody = static_cast<std::uint64_t>(config.maxResponseKB) * 1024;
  if (framing.kind == BodyFraming::ContentLength && framing.length > maxBody) {
    fail({Failure::Kind::BadResponse,
          describeTarget() + " sent a response body of " + std::to_string(framing.length) +
              " bytes, larger than maxResponseKB (" + std::to_string(config.maxResponseKB) + " KB)",
          false});
    return;
  }
  runtime::TcpStream& client = server_->client();
  if (head.status >= 100 && head.status < 200 && head.status != 101) {
    // Interim responses (100 Continue) go to HTTP/1.1 clients as they are.
    if (server_->clientVersionMinor() >= 1) {
      head.versionMinor = 1;
      client.write(runtime::serializeResponseHead(head));
    }
    return;
  }
  responseStarted_ = true;
  responseStatus_ = head.status;
  if (upgrade_ && head.status != 101) {
    // The endpoint refused the upgrade; the client's connection was handed
    // over as raw bytes already, so it ends with this response.
    closeClientAfter_ = true;
  }
  if (head.status == 101 && upgrade_) {
    tunnel_ = true;
    head.versionMinor = 1;
    client.write(runtime::serializeResponseHead(head));
    return;
  }
  stripHopByHop(head.headers, false);
  bool client11 = server_->clientVersionMinor() >= 1;
  bool bodyless = headRequest_ || head.status == 204 || head.status == 304;
  if (!bodyless && (framing.kind == BodyFraming::Chunked || framing.kind == BodyFraming::UntilClose)) {
    if (client11) {
      chunkedOut_ = true;
      head.headers.add("Transfer-Encoding", "chunked");
    } else {
      closeClientAfter_ = true;  // HTTP/1.0: the close ends the body
    }
  }
  if (!server_->clientKeepAlive() || closeClientAfter_) head.headers.add("Connection", "close");
  head.versionMinor = 1;
  client.write(runtime::serializeResponseHead(head));
}

void Exchange::onBody(std::string_view data) {
  if (!server_ || !responseStarted_ || finished_) return;
  const RouterConfig& config = server_->plan().config;
  responseBodyBytes_ += data.size();
  if (!config.streamingEnabled && responseBodyBytes_ > static_cast<std::uint64_t>(config.maxResponseKB) * 1024) {
    // Without streaming, maxResponseKB bounds chunked bodies too; the head
    // is out already, so the client sees the body cut off.
    report(false);
    finished_ = true;
    server_->exchangeAborted();
    return;
  }
  runtime::TcpStream& client = server_->client();
  if (chunkedOut_) {
    std::string framed = runtime::chunkHeader(data.size());
    framed += data;
    framed += runtime::kChunkEnd;
    client.write(std::move(framed));
  } else {
    client.write(data);
  }
  // The client is slower than the endpoint: stop reading until it catches up.
  if (client.pendingWriteBytes() > kHighWater && upstream_) upstream_->stopReading();
}

void Exchange::onMessageEnd() {
  if (!responseStarted_) return;  // an interim response ended
  if (tunnel_) return;
  if (chunkedOut_ && server_) server_->client().write(runtime::kLastChunk);
  responseDone_ = true;
  maybeFinish();
}

void Exchange::maybeFinish() {
  if (!responseDone_ || finished_) return;
  if (!requestDone_) {
    // The endpoint answered before the request ended: neither connection
    // can carry another message.
    finished_ = true;
    report(false);
    recordSpans(responseStatus_, {});
    upstream_.reset();
    if (server_) server_->exchangeDone(false);
    return;
  }
  finished_ = true;
  report(false);
  recordSpans(responseStatus_, {});
  bool reusable = parser_ && parser_->keepAlive() && upstream_ && !upstream_->writeFailed();
  if (reusable) {
    upstream_->setOnDrained(nullptr);
    worker_.pool().put(route_.endpoint->key, std::move(upstream_));
  } else {
    upstream_.reset();
  }
  if (server_) server_->exchangeDone(!closeClientAfter_);
}

void Exchange::report(bool connectFailed) {
  if (!route_.balancer || !route_.endpoint) return;
  std::uint64_t now = worker_.loop().nowMs();
  route_.balancer->finished(*route_.endpoint, now, static_cast<double>(now - startMs_), connectFailed);
  route_.balancer = nullptr;  // once
}

void Exchange::fail(Failure failure) {
  if (finished_) return;
  stopWaiting();
  finished_ = true;
  report(false);
  recordSpans(responseStarted_ ? responseStatus_ : failure.status(), failure.message);
  upstream_.reset();
  connecting_.reset();
  if (!server_) return;
  if (responseStarted_) {
    server_->exchangeAborted();
  } else {
    server_->exchangeFailed(failure);
  }
}

void Exchange::detach() {
  stopWaiting();
  recordSpans(responseStatus_, responseDone_ ? "" : "the exchange ended before the response did");
  finished_ = true;
  server_ = nullptr;
  if (timeout_) timeout_->stop();
  if (attemptTimeout_) attemptTimeout_->stop();
  connecting_.reset();
  if (upstream_) {
    upstream_->setHandler(nullptr);
    upstream_->setOnDrained(nullptr);
    upstream_.reset();
  }
  report(false);
}

}  // namespace switchyard::router
