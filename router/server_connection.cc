#include "router/server_connection.h"

#include "router/exchange.h"
#include "router/hop_headers.h"
#include "router/worker.h"

namespace switchyard::router {

namespace {

runtime::Http1Parser::Limits limitsOf(const RouterPlan& plan) {
  return {static_cast<std::size_t>(plan.config.maxInitialLineKB) * 1024,
          static_cast<std::size_t>(plan.config.maxHeadersKB) * 1024};
}

}  // namespace

ServerConnection::ServerConnection(Worker& worker, const RouterPlan& plan, const ServerConfig& server,
                                   std::string serverKey, runtime::TcpStreamPtr stream)
    : worker_(worker), plan_(plan), config_(server), stream_(std::move(stream)),
      parser_(runtime::Http1Parser::Type::Request, *this, limitsOf(plan)), serverKey_(std::move(serverKey)) {
  ++worker_.metrics(plan_).connections[serverKey_];
  stream_->setHandler(this);
  stream_->setOnDrained([this] {
    if (exchange_) exchange_->clientDrained();
    updateReading();
  });
  stream_->startReading();
  await(Wait::Idle);
}

ServerConnection::~ServerConnection() {
  *alive_ = false;
  --worker_.metrics(plan_).connections[serverKey_];
  if (!recorded_) recordRequest(0);
  if (exchange_) exchange_->detach();
}

bool ServerConnection::idle() const { return !exchange_ && !parser_.inMessage() && pending_.empty(); }

void ServerConnection::drain() {
  draining_ = true;
  if (idle()) close();
}

void ServerConnection::await(Wait what) {
  wait_ = what;
  std::int64_t ms = what == Wait::Idle ? config_.idleTimeoutMs : what == Wait::Head ? config_.headerTimeoutMs : 0;
  deadlineMs_ = ms > 0 ? worker_.loop().nowMs() + static_cast<std::uint64_t>(ms) : 0;
}

void ServerConnection::checkTimeouts(std::uint64_t nowMs) {
  if (closing_ || deadlineMs_ == 0 || nowMs < deadlineMs_) return;
  if (wait_ == Wait::Idle) {
    close();
  } else if (wait_ == Wait::Head) {
    await(Wait::None);
    discardBody_ = true;
    sendFailure({Failure::Kind::HeadTimeout,
                 "the request head was not complete within " + std::to_string(config_.headerTimeoutMs) +
                     " ms (servers[].headerTimeoutMs)",
                 false},
                /*close=*/true);
  }
}

void ServerConnection::onData(std::string_view data) {
  if (closing_) return;
  // The first byte of a request starts its head's deadline.
  if (wait_ == Wait::Idle) await(Wait::Head);
  if (upgraded_) {
    if (exchange_) {
      exchange_->tunnelFromClient(data);
      updateReading();
    }
    return;
  }
  if (pending_.empty() && !waiting_) {
    // The common case: parse straight from the read buffer and keep only
    // what is left over (a pipelined request, a partial head).
    std::size_t used = parseFrom(data);
    if (!closing_ && used < data.size()) pending_.append(data.substr(used));
  } else {
    pending_.append(data);
    if (!waiting_) parse();
  }
  if (!closing_) updateReading();
}

void ServerConnection::parse() {
  std::size_t used = parseFrom(pending_);
  if (closing_) {
    pending_.clear();
  } else {
    pending_.erase(0, used);
  }
}

std::size_t ServerConnection::parseFrom(std::string_view data) {
  std::size_t used = 0;
  while (used < data.size() && !waiting_ && !closing_) {
    auto r = parser_.feed(data.substr(used));
    using S = runtime::Http1Parser::Status;
    if (r.status == S::Error) {
      if (exchange_ && exchange_->responseStarted()) {
        // Broken mid-body after the response began: nothing more can be said.
        close();
        return data.size();
      }
      if (exchange_) {
        // The endpoint got part of a request: that connection goes too.
        exchange_->detach();
        worker_.loop().deleteLater(std::move(exchange_));
      }
      sendFailure({Failure::Kind::BadRequest, r.error, false, r.httpStatus}, /*close=*/true);
      return data.size();
    }
    used += r.consumed;
    if (r.status == S::Upgrade) {
      upgraded_ = true;
      waiting_ = true;
      if (exchange_ && used < data.size()) exchange_->tunnelFromClient(data.substr(used));
      return data.size();
    }
    if (r.status == S::NeedMore) return used;
  }
  return used;
}

void ServerConnection::updateReading() {
  if (closing_) return;
  // Stop reading while bytes pile up: unparsed pipelined requests, or a
  // request body the endpoint has not taken yet.
  bool full = pending_.size() > kHighWater || (exchange_ && exchange_->upstreamBacklog() > kHighWater) ||
              stream_->pendingWriteBytes() > kHighWater;
  if (full) {
    stream_->stopReading();
  } else {
    stream_->startReading();
  }
}

void ServerConnection::upstreamDrained() { updateReading(); }

void ServerConnection::rerouted(const dtab::Path& client) { clientId_ = client.show().substr(1); }

void ServerConnection::recordRequest(int status) {
  if (recorded_) return;
  recorded_ = true;
  double ms = static_cast<double>(runtime::Loop::nowUs() - startUs_) / 1000.0;
  RouterMetrics& m = worker_.metrics(plan_);
  m.servers[serverKey_].record(status, ms);
  if (!service_.empty()) m.services[service_].record(status, ms);
  if (!clientId_.empty()) m.clients[clientId_].record(status, ms);
  if (recent_ && worker_.recent()) {
    RecentRequest r = std::move(*recent_);
    recent_.reset();
    r.service = service_;
    r.client = clientId_;
    r.status = status;
    r.durationMs = ms;
    if (exchange_) {
      r.traceId = exchange_->traceId();
      r.endpoint = exchange_->endpointKey();
    }
    worker_.recent()->add(std::move(r));
  }
}

void ServerConnection::onRequestHead(runtime::RequestHead&& head, const runtime::BodyFraming& framing) {
  await(Wait::None);
  startUs_ = runtime::Loop::nowUs();
  recorded_ = false;
  bodyBytes_ = 0;
  service_.clear();
  clientId_.clear();
  recent_.reset();
  if (RecentRequests* recent = worker_.recent(); recent && recent->sample(worker_.rng())) {
    recent_.emplace();
    recent_->wallUs = wallClockUs();
    recent_->router = plan_.config.label;
    recent_->method = head.method;
    recent_->host = std::string(head.headers.get("host").value_or(""));
    recent_->path = std::string(head.path());
  }
  requestDone_ = false;
  discardBody_ = false;
  versionMinor_ = head.versionMinor;
  keepAlive_ = parser_.keepAlive() && !draining_;
  if (head.method == "CONNECT") {
    discardBody_ = true;
    keepAlive_ = false;
    sendFailure({Failure::Kind::BadRequest, "CONNECT is not supported: send plain HTTP requests", false}, true);
    return;
  }
  auto maxBody = static_cast<std::uint64_t>(plan_.config.maxRequestKB) * 1024;
  if (framing.kind == runtime::BodyFraming::ContentLength && framing.length > maxBody) {
    discardBody_ = true;
    keepAlive_ = false;
    sendFailure({Failure::Kind::RequestTooLarge,
                 "the request body of " + std::to_string(framing.length) + " bytes is larger than maxRequestKB (" +
                     std::to_string(plan_.config.maxRequestKB) + " KB)",
                 false},
                true);
    return;
  }
  bool upgrade = wantsUpgrade(head.headers);
  auto route = worker_.route(plan_, config_, head);
  if (!route) {
    // A request without a body keeps its connection; one with a body (or an
    // upgrade) closes it after the answer rather than read what it sends.
    discardBody_ = true;
    if (framing.kind != runtime::BodyFraming::None || upgrade) keepAlive_ = false;
    if (!route.error().service.empty()) service_ = route.error().service.substr(1);
    sendFailure(route.error(), !keepAlive_);
    return;
  }
  // Metrics scope names are paths without their leading slash, as Linkerd's.
  service_ = route->logicalShown.substr(1);
  clientId_ = route->pending() ? std::string() : route->boundShown.substr(1);
  exchange_ = std::make_unique<Exchange>(worker_, *this, std::move(*route), std::move(head), framing, upgrade);
  exchange_->start();
}

void ServerConnection::onBody(std::string_view data) {
  if (discardBody_ || !exchange_) return;
  bodyBytes_ += data.size();
  if (!plan_.config.streamingEnabled && bodyBytes_ > static_cast<std::uint64_t>(plan_.config.maxRequestKB) * 1024) {
    // Without streaming, maxRequestKB bounds chunked bodies too.
    if (exchange_->responseStarted()) {
      close();
      return;
    }
    exchange_->detach();
    worker_.loop().deleteLater(std::move(exchange_));
    discardBody_ = true;
    keepAlive_ = false;
    sendFailure({Failure::Kind::RequestTooLarge,
                 "the request body is larger than maxRequestKB (" + std::to_string(plan_.config.maxRequestKB) +
                     " KB; streamingEnabled is false)",
                 false},
                true);
    return;
  }
  exchange_->requestBody(data);
}

void ServerConnection::onMessageEnd() {
  // Nothing more is parsed until this request's response is done.
  waiting_ = true;
  requestDone_ = true;
  if (exchange_ && !discardBody_) exchange_->requestEnd();
  if (!exchange_ && discardBody_) finishExchange();
}

void ServerConnection::sendFailure(const Failure& failure, bool closeAfter) {
  if (recorded_) startUs_ = runtime::Loop::nowUs();  // a malformed request: no head was read
  recorded_ = false;
  recordRequest(failure.status());
  FailureResponse resp = respond(failure, closeAfter || !keepAlive_);
  resp.head.versionMinor = 1;
  stream_->write(runtime::serializeResponseHead(resp.head) + resp.body);
  if (closeAfter || !keepAlive_) {
    closing_ = true;
    // The client may still be sending (a body we refused, an oversized
    // header): read and drop it for a moment so that closing does not reset
    // the connection before the client has read this response.
    stream_->lingerClose(2000);
    worker_.connectionClosed(this);
    return;
  }
  // Keep-alive: the next request may be parsed once this one's body is in.
  if (requestDone_) finishExchange();
}

void ServerConnection::exchangeFailed(const Failure& failure) {
  worker_.loop().deleteLater(std::move(exchange_));
  discardBody_ = true;
  sendFailure(failure, !requestDone_);
}

void ServerConnection::exchangeDone(bool reusable) {
  recordRequest(exchange_ ? exchange_->responseStatus() : 0);
  if (exchange_) exchange_->detach();
  worker_.loop().deleteLater(std::move(exchange_));
  if (!reusable || !keepAlive_ || !requestDone_ || draining_ || upgraded_) {
    closing_ = true;
    if (!requestDone_ && !upgraded_) {
      // The endpoint answered before the client finished sending (a 413, a
      // redirect): keep reading and dropping for a moment, so the close does
      // not reset the connection before the client has read the answer.
      stream_->lingerClose(2000);
    } else {
      stream_->stopReading();
      stream_->closeAfterWrites(kStalledWriteMs);
    }
    worker_.connectionClosed(this);
    return;
  }
  finishExchange();
}

void ServerConnection::exchangeAborted() {
  recordRequest(0);
  if (exchange_) exchange_->detach();
  worker_.loop().deleteLater(std::move(exchange_));
  close();
}

void ServerConnection::finishExchange() {
  waiting_ = false;
  requestDone_ = false;
  discardBody_ = false;
  if (draining_) {
    close();
    return;
  }
  await(pending_.empty() ? Wait::Idle : Wait::Head);
  // Pipelined requests that arrived meanwhile.
  if (!pending_.empty()) {
    // Parse on the next turn: we may be deep in the previous exchange's stack.
    worker_.loop().defer([this, alive = alive_] {
      if (*alive) {
        parse();
        updateReading();
      }
    });
  }
  updateReading();
}

void ServerConnection::onClosed(const std::string&) {
  // The client went away (or broke). Whatever was in flight is dropped.
  if (exchange_) {
    exchange_->clientClosed();
    worker_.loop().deleteLater(std::move(exchange_));
  }
  close();
}

void ServerConnection::close() {
  if (closing_) {
    return;
  }
  closing_ = true;
  stream_->stopReading();
  if (exchange_) {
    exchange_->detach();
    worker_.loop().deleteLater(std::move(exchange_));
  }
  worker_.connectionClosed(this);
}

}  // namespace switchyard::router
