#include "runtime/http_client.h"

#include "runtime/http1_parser.h"
#include "runtime/timer.h"

namespace switchyard::runtime {

// Callbacks may destroy the call (and so this Impl): after each one, `alive`
// says whether anything here may still be touched. The stream, the parser
// and the connect attempt are freed after the current callback returns.
class HttpCall::Impl final : public TcpStream::Handler, public Http1Parser::Handler {
 public:
  Impl(Loop& loop, Request request, HttpCall::Handler handler)
      : loop_(loop), request_(std::move(request)), handler_(std::move(handler)), deadline_(loop) {}
  ~Impl() override {
    *alive_ = false;
    releaseStream();
    if (parser_) loop_.deleteLater(std::move(parser_));
    if (connect_) loop_.deleteLater(std::move(connect_));
  }

  void start(const SocketAddress& addr, std::uint64_t timeoutMs) {
    if (request_.timeoutMs > 0) {
      deadline_.start(request_.timeoutMs, [this, ms = request_.timeoutMs] {
        finish("no complete response within " + std::to_string(ms) + " ms");
      });
    }
    connect_ = TcpConnect::start(loop_, addr, timeoutMs, [this](Expected<TcpStreamPtr, std::string> r) {
      loop_.deleteLater(std::move(connect_));
      if (!r) {
        finish(r.error());
        return;
      }
      stream_ = std::move(*r);
      if (request_.tls) {
        auto session = TlsSession::client(*request_.tls, request_.tlsServerName);
        if (!session) {
          finish("TLS with " + request_.tlsServerName + ": " + session.error());
          return;
        }
        tls_ = std::move(*session);
      }
      stream_->setHandler(this);
      stream_->startReading();
      parser_ = std::make_unique<Http1Parser>(Http1Parser::Type::Response, *this, Http1Parser::Limits{8192, 65536});
      if (request_.method == "HEAD") parser_->expectHeadResponse();
      RequestHead h;
      h.method = request_.method;
      h.target = request_.target;
      h.headers = std::move(request_.headers);
      h.headers.set("Host", request_.host);
      if (!request_.body.empty() || request_.method == "POST" || request_.method == "PUT") {
        h.headers.set("Content-Length", std::to_string(request_.body.size()));
      }
      std::string out = serializeRequestHead(h);
      out += request_.body;
      request_.body.clear();
      send(std::move(out));
    });
  }

  void onData(std::string_view received) override {
    if (!tls_) {
      parse(received);
      return;
    }
    auto alive = alive_;
    std::string plain;
    auto err = tls_->receive(received, plain);
    flushTls();
    if (err) {
      finish("TLS with " + request_.tlsServerName + ": " + *err);
      return;
    }
    parse(plain);
    // close_notify: the peer is done, whether or not TCP closes too.
    if (*alive && !done_ && tls_->closedByPeer()) onClosed("");
  }

  void onClosed(const std::string& error) override {
    if (done_) return;
    auto alive = alive_;
    if (tls_ && !tls_->established()) {
      finish("TLS with " + request_.tlsServerName + ": the connection closed during the handshake" +
             (error.empty() ? "" : ": " + error));
      return;
    }
    // Over TLS a body may end with the connection only after close_notify;
    // a bare TCP close could be a cut-off response.
    bool closeEndsBody = !tls_ || tls_->closedByPeer();
    if (closeEndsBody && parser_ && parser_->inMessage() && status_ != 0) {
      auto r = parser_->finish();  // a body delimited by the close
      if (!*alive || done_) return;
      if (r.status == Http1Parser::Status::MessageEnd) {
        finish(std::nullopt);
        return;
      }
    }
    finish(error.empty() ? "the connection closed before the response ended" : error);
  }

  void onResponseHead(ResponseHead&& head, const BodyFraming&) override {
    status_ = head.status;
    if (head.status < 200) return;  // interim
    if (handler_.onHead) handler_.onHead(head);
  }
  void onBody(std::string_view data) override {
    if (handler_.onBody && !done_) handler_.onBody(data);
  }
  void onMessageEnd() override {}

 private:
  // Response bytes (plaintext) through the parser.
  void parse(std::string_view data) {
    auto alive = alive_;
    while (!data.empty() && !done_) {
      auto r = parser_->feed(data);
      if (!*alive) return;
      if (r.status == Http1Parser::Status::Error) {
        finish("invalid response: " + r.error);
        return;
      }
      data.remove_prefix(r.consumed);
      if (r.status == Http1Parser::Status::NeedMore) return;
      if (r.status == Http1Parser::Status::Upgrade) {
        finish("unexpected protocol upgrade");
        return;
      }
      // A message ended: an interim (1xx) answer lets the parser go on.
      if (status_ >= 200 || status_ == 0) {
        finish(std::nullopt);
        return;
      }
    }
  }

  void send(std::string bytes) {
    if (!tls_) {
      stream_->write(std::move(bytes));
      return;
    }
    if (auto err = tls_->send(bytes)) {
      finish("TLS with " + request_.tlsServerName + ": " + *err);
      return;
    }
    flushTls();
  }

  void flushTls() {
    std::string out = tls_->takeOutput();
    if (!out.empty() && stream_) stream_->write(std::move(out));
  }

  void finish(std::optional<std::string> error) {
    if (done_) return;
    done_ = true;
    deadline_.stop();
    if (connect_) loop_.deleteLater(std::move(connect_));
    releaseStream();
    if (auto fn = std::move(handler_.onDone)) fn(std::move(error));
  }

  // Closed after the current callback: we may be inside the stream's own.
  void releaseStream() {
    if (!stream_) return;
    stream_->setHandler(nullptr);
    std::shared_ptr<TcpStream> s(stream_.release(), TcpStream::Closer{});
    loop_.defer([s] {});
  }

  Loop& loop_;
  Request request_;
  HttpCall::Handler handler_;
  std::unique_ptr<TcpConnect> connect_;
  TcpStreamPtr stream_;
  std::unique_ptr<TlsSession> tls_;  // between the stream and the parser, for HTTPS
  std::unique_ptr<Http1Parser> parser_;
  Timer deadline_;
  int status_ = 0;
  bool done_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

HttpCall::HttpCall(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpCall::~HttpCall() = default;

std::unique_ptr<HttpCall> HttpCall::start(Loop& loop, const SocketAddress& addr, Request request, Handler handler,
                                          std::uint64_t connectTimeoutMs) {
  auto impl = std::make_unique<Impl>(loop, std::move(request), std::move(handler));
  Impl* raw = impl.get();
  std::unique_ptr<HttpCall> call(new HttpCall(std::move(impl)));
  raw->start(addr, connectTimeoutMs);
  return call;
}

std::unique_ptr<HttpCall> fetch(Loop& loop, const SocketAddress& addr, HttpCall::Request request,
                                std::function<void(Expected<HttpResult, std::string>)> done, std::size_t maxBody,
                                std::uint64_t connectTimeoutMs) {
  auto result = std::make_shared<HttpResult>();
  auto overflow = std::make_shared<bool>(false);
  HttpCall::Handler h;
  h.onHead = [result](const ResponseHead& head) {
    result->status = head.status;
    result->headers = head.headers;
  };
  h.onBody = [result, overflow, maxBody](std::string_view data) {
    if (result->body.size() + data.size() > maxBody) {
      *overflow = true;
      return;
    }
    result->body.append(data);
  };
  h.onDone = [result, overflow, maxBody, done = std::move(done)](std::optional<std::string> error) {
    if (error) {
      done(Unexpected(std::move(*error)));
    } else if (*overflow) {
      done(Unexpected("the response body is over " + std::to_string(maxBody) + " bytes"));
    } else {
      done(std::move(*result));
    }
  };
  return HttpCall::start(loop, addr, std::move(request), std::move(h), connectTimeoutMs);
}

void FetchSet::fetch(const SocketAddress& addr, HttpCall::Request request,
                     std::function<void(Expected<HttpResult, std::string>)> done, std::size_t maxBody) {
  std::uint64_t id = ++next_;
  calls_[id] = runtime::fetch(loop_, addr, std::move(request),
                              [this, id, alive = alive_, done = std::move(done)](Expected<HttpResult, std::string> r) {
                                if (!*alive) return;
                                // Freed after this callback: it runs inside the call.
                                loop_.defer([this, id, alive] {
                                  if (*alive) calls_.erase(id);
                                });
                                done(std::move(r));
                              },
                              maxBody);
}

}  // namespace switchyard::runtime
