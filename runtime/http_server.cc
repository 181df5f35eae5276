#include "runtime/http_server.h"

#include <cctype>

#include "dtab/hex.h"
#include "runtime/http1_parser.h"

namespace switchyard::runtime {

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && dtab::hexValue(s[i + 1]) >= 0 && dtab::hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(dtab::hexValue(s[i + 1]) * 16 + dtab::hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string HttpRequest::path() const { return target.substr(0, target.find('?')); }

std::optional<std::string> HttpRequest::query(std::string_view key) const { return queryValue(target, key); }

std::optional<std::string> queryValue(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    auto eq = kv.find('=');
    if (percentDecode(kv.substr(0, eq)) == key) {
      return percentDecode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// One connection: parses a request, hands it over, waits for the reply to
// end, then parses the next. Bytes that arrive meanwhile wait in `backlog_`;
// reading goes on, so a client that leaves is noticed even mid-stream.
class HttpResponder::Conn final : public TcpStream::Handler, public Http1Parser::Handler {
 public:
  Conn(HttpServer& server, TcpStreamPtr stream)
      : server_(server), stream_(std::move(stream)),
        parser_(Http1Parser::Type::Request, *this, Http1Parser::Limits{8192, server.options_.maxHeaderBytes}) {
    stream_->setHandler(this);
    stream_->startReading();
  }
  ~Conn() override {
    if (current_) current_->detach();
  }

  void onData(std::string_view data) override {
    if (closed_) return;
    if (current_) {
      backlog_.append(data);
      // A client that keeps sending without waiting for answers is paused.
      if (backlog_.size() > (1u << 20)) stream_->stopReading();
      return;
    }
    process(data);
  }

  void onClosed(const std::string&) override { close(); }

  void onRequestHead(RequestHead&& head, const BodyFraming& framing) override {
    request_ = HttpRequest{std::move(head.method), std::move(head.target), std::move(head.headers), {}, peer_};
    tooLarge_ = framing.kind == BodyFraming::ContentLength && framing.length > server_.options_.maxBodyBytes;
  }
  void onBody(std::string_view data) override {
    if (tooLarge_) return;
    if (request_.body.size() + data.size() > server_.options_.maxBodyBytes) {
      tooLarge_ = true;
      request_.body.clear();
      return;
    }
    request_.body.append(data);
  }
  void onMessageEnd() override { messageEnded_ = true; }

  // From the responder.
  void send(std::string bytes) {
    if (!closed_) stream_->write(std::move(bytes));
  }
  bool overBacklog() const { return stream_->pendingWriteBytes() > server_.options_.maxStreamBacklog; }
  bool isHead() const { return headRequest_; }
  bool closeAfterReply() const { return closeAfter_; }
  void replyDone() {
    current_.reset();
    if (closeAfter_) {
      stream_->closeAfterWrites();
      close();
      return;
    }
    if (!processing_) {
      server_.loop_.defer([this, alive = alive_] {
        if (*alive && !closed_ && !current_) resume();
      });
    }
  }
  void close() {
    if (closed_) return;
    closed_ = true;
    if (current_) {
      auto r = std::move(current_);
      r->detach();
    }
    server_.conns_.erase(this);
    *alive_ = false;
    server_.loop_.deleteLater(std::unique_ptr<Conn>(this));
  }

 private:
  void resume() {
    std::string pending = std::move(backlog_);
    backlog_.clear();
    if (!stream_->isReading()) stream_->startReading();
    process(pending);
  }

  void process(std::string_view data) {
    processing_ = true;
    while (!data.empty() && !closed_ && !current_) {
      auto r = parser_.feed(data);
      if (r.status == Http1Parser::Status::Error) {
        fail(r.httpStatus, r.error);
        break;
      }
      data.remove_prefix(r.consumed);
      if (r.status == Http1Parser::Status::Upgrade) {
        fail(400, "upgrades are not supported by the " + server_.options_.name);
        break;
      }
      if (messageEnded_) dispatch();
    }
    if (!closed_ && !data.empty()) backlog_.append(data);
    processing_ = false;
  }

  void dispatch() {
    messageEnded_ = false;
    closeAfter_ = !parser_.keepAlive();
    headRequest_ = request_.method == "HEAD";
    current_ = std::shared_ptr<HttpResponder>(new HttpResponder(this));
    if (tooLarge_) {
      closeAfter_ = true;  // the rest of the body may still be coming
      current_->reply(413, "text/plain",
                      "request body over " + std::to_string(server_.options_.maxBodyBytes) + " bytes\n");
      return;
    }
    auto responder = current_;
    server_.handler_(std::move(request_), std::move(responder));
  }

  void fail(int status, const std::string& why) {
    closeAfter_ = true;
    ResponseHead h;
    h.status = status;
    h.headers.add("Content-Type", "text/plain");
    std::string body = why + "\n";
    h.headers.add("Content-Length", std::to_string(body.size()));
    h.headers.add("Connection", "close");
    send(serializeResponseHead(h) + body);
    stream_->closeAfterWrites();
    close();
  }

  HttpServer& server_;
  TcpStreamPtr stream_;
  Http1Parser parser_;
  std::string peer_ = stream_ ? stream_->peer() : std::string();
  HttpRequest request_;
  std::shared_ptr<HttpResponder> current_;
  std::string backlog_;
  bool tooLarge_ = false;
  bool messageEnded_ = false;
  bool closeAfter_ = false;
  bool headRequest_ = false;
  bool processing_ = false;
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void HttpResponder::reply(int status, std::string_view contentType, std::string body, HttpHeaders headers) {
  if (!conn_ || started_) return;
  started_ = true;
  ResponseHead h;
  h.status = status;
  h.headers = std::move(headers);
  h.headers.add("Content-Type", std::string(contentType));
  h.headers.add("Content-Length", std::to_string(body.size()));
  if (conn_->closeAfterReply()) h.headers.add("Connection", "close");
  std::string out = serializeResponseHead(h);
  if (!conn_->isHead()) out += body;
  Conn* c = conn_;
  conn_ = nullptr;  // answered: nothing more goes to this connection
  c->send(std::move(out));
  c->replyDone();
}

void HttpResponder::startStream(int status, std::string_view contentType, HttpHeaders headers) {
  if (!conn_ || started_) return;
  started_ = true;
  streaming_ = true;
  ResponseHead h;
  h.status = status;
  h.headers = std::move(headers);
  h.headers.add("Content-Type", std::string(contentType));
  h.headers.add("Transfer-Encoding", "chunked");
  h.headers.add("Cache-Control", "no-cache");
  conn_->send(serializeResponseHead(h));
}

bool HttpResponder::write(std::string_view data) {
  if (!conn_ || !streaming_) return false;
  if (data.empty()) return true;  // an empty chunk would end the stream
  std::string chunk = chunkHeader(data.size());
  chunk.append(data);
  chunk += "\r\n";
  conn_->send(std::move(chunk));
  if (conn_->overBacklog()) {
    // The client does not read: it is cut off rather than buffered for.
    Conn* c = conn_;
    c->close();
    return false;
  }
  return true;
}

void HttpResponder::end() {
  if (!conn_ || !streaming_) return;
  Conn* c = conn_;
  conn_ = nullptr;
  c->send("0\r\n\r\n");
  c->replyDone();
}

void HttpResponder::detach() {
  if (!conn_) return;
  conn_ = nullptr;
  if (auto fn = std::move(onGone_)) fn();
}

HttpServer::HttpServer(Loop& loop, Options options, Handler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  stop();
  closeAll();
  loop_.drainDeferred();
}

Expected<std::uint16_t, std::string> HttpServer::listen(const std::string& ip, std::uint16_t port) {
  auto addr = SocketAddress::parse(ip, port);
  if (!addr) return Unexpected(addr.error());
  auto l = TcpListener::listen(loop_, *addr, TcpListener::ReusePort::No, [this](TcpStreamPtr s) {
    conns_.insert(new HttpResponder::Conn(*this, std::move(s)));
  });
  if (!l) return Unexpected(l.error());
  listener_ = std::move(*l);
  return listener_->port();
}

void HttpServer::stop() { listener_.reset(); }

void HttpServer::closeAll() {
  for (auto* c : std::set<HttpResponder::Conn*>(conns_)) c->close();
}

}  // namespace switchyard::runtime
