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

ServerConnection::ServerConnection(Worker& worker, const RouterPlan& plan, bool clearContext,
                                   runtime::TcpStreamPtr stream)
    : worker_(worker), plan_(plan), clearContext_(clearContext), stream_(std::move(stream)),
      parser_(runtime::Http1Parser::Type::Request, *this, limitsOf(plan)) {
  plan_.stats->connections.fetch_add(1, std::memory_order_relaxed);
  plan_.stats->connects.fetch_add(1, std::memory_order_relaxed);
  stream_->setHandler(this);
  stream_->setOnDrained([this] {
    if (exchange_) exchange_->clientDrained();
    updateReading();
  });
  stream_->startReading();
}

ServerConnection::~ServerConnection() {
  *alive_ = false;
  plan_.stats->connections.fetch_sub(1, std::memory_order_relaxed);
  if (exchange_) exchange_->detach();
}

bool ServerConnection::idle() const { return !exchange_ && !parser_.inMessage() && pending_.empty(); }

void ServerConnection::drain() {
  draining_ = true;
  if (idle()) close();
}

void ServerConnection::onData(std::string_view data) {
  if (closing_) return;
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
      plan_.stats->requestErrors.fetch_add(1, std::memory_order_relaxed);
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

void ServerConnection::onRequestHead(runtime::RequestHead&& head, const runtime::BodyFraming& framing) {
  plan_.stats->requests.fetch_add(1, std::memory_order_relaxed);
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
  bool upgrade = wantsUpgrade(head.headers);
  auto route = worker_.route(plan_, clearContext_, head);
  if (!route) {
    // A request without a body keeps its connection; one with a body (or an
    // upgrade) closes it after the answer rather than read what it sends.
    discardBody_ = true;
    if (framing.kind != runtime::BodyFraming::None || upgrade) keepAlive_ = false;
    sendFailure(route.error(), !keepAlive_);
    return;
  }
  exchange_ = std::make_unique<Exchange>(worker_, *this, std::move(*route), std::move(head), framing, upgrade);
  exchange_->start();
}

void ServerConnection::onBody(std::string_view data) {
  if (discardBody_ || !exchange_) return;
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
  plan_.stats->failures.fetch_add(1, std::memory_order_relaxed);
  FailureResponse resp = respond(failure, closeAfter || !keepAlive_);
  resp.head.versionMinor = 1;
  stream_->write(runtime::serializeResponseHead(resp.head) + resp.body);
  if (closeAfter || !keepAlive_) {
    closing_ = true;
    // The client may still be sending (a body we refused, an oversized
    // header): read and drop it for a moment so that closing does not reset
    // the connection before the client has read this response.
    stream_->lingerClose(worker_.loop(), 2000);
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
  plan_.stats->success.fetch_add(1, std::memory_order_relaxed);
  if (exchange_) exchange_->detach();
  worker_.loop().deleteLater(std::move(exchange_));
  if (!reusable || !keepAlive_ || !requestDone_ || draining_ || upgraded_) {
    closing_ = true;
    stream_->stopReading();
    stream_->closeAfterWrites();
    worker_.connectionClosed(this);
    return;
  }
  finishExchange();
}

void ServerConnection::exchangeAborted() {
  plan_.stats->failures.fetch_add(1, std::memory_order_relaxed);
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
