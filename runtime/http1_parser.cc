#include "runtime/http1_parser.h"

#include <llhttp.h>

#include <cstdio>

namespace switchyard::runtime {

// The parser state and the llhttp callbacks (one constant table, as nghttpx
// does); each callback finds the Impl through parser->data.
struct Http1Parser::Impl {
  llhttp_t parser;
  Http1Parser* owner;
  std::string url;
  std::string status;
  std::string field;
  std::string value;
  bool inValue = false;
  std::size_t headerBytes = 0;
  HttpHeaders headers;
  std::string limitError;
  int limitStatus = 0;

  static Impl* of(llhttp_t* p) { return static_cast<Impl*>(p->data); }

  // RFC 9110 token characters: what a field name may hold. llhttp lets some
  // others through (a space inside a name); a proxy must not forward them.
  static bool isTokenChar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
      case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
      case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
      default:
        return false;
    }
  }

  void flushHeader() {
    if (!field.empty() || inValue) headers.add(std::move(field), std::move(value));
    field.clear();
    value.clear();
    inValue = false;
  }

  int overLimit(std::string what, int httpStatus) {
    limitError = std::move(what);
    limitStatus = httpStatus;
    return HPE_USER;
  }

  static int onMessageBegin(llhttp_t* p) {
    Impl* s = of(p);
    s->owner->inMessage_ = true;
    s->url.clear();
    s->status.clear();
    s->field.clear();
    s->value.clear();
    s->inValue = false;
    s->headerBytes = 0;
    s->headers = HttpHeaders();
    return 0;
  }
  static int onUrl(llhttp_t* p, const char* at, std::size_t n) {
    Impl* s = of(p);
    s->url.append(at, n);
    if (s->url.size() > s->owner->limits_.maxInitialLine) {
      return s->overLimit("the request line is longer than " +
                              std::to_string(s->owner->limits_.maxInitialLine) + " bytes",
                          414);
    }
    return 0;
  }
  static int onStatus(llhttp_t* p, const char* at, std::size_t n) {
    Impl* s = of(p);
    s->status.append(at, n);
    return s->status.size() > 1024 ? s->overLimit("the status line is too long", 502) : 0;
  }
  static int onHeaderField(llhttp_t* p, const char* at, std::size_t n) {
    Impl* s = of(p);
    if (s->inValue) s->flushHeader();
    s->field.append(at, n);
    return s->countHeader(n);
  }
  static int onHeaderValue(llhttp_t* p, const char* at, std::size_t n) {
    Impl* s = of(p);
    s->inValue = true;
    s->value.append(at, n);
    return s->countHeader(n);
  }
  int countHeader(std::size_t n) {
    headerBytes += n + 4;  // ": " and CRLF count towards the section's size
    if (headerBytes > owner->limits_.maxHeaderBytes) {
      return overLimit("the header section is larger than " +
                           std::to_string(owner->limits_.maxHeaderBytes) + " bytes",
                       431);
    }
    return 0;
  }
  static int onHeadersComplete(llhttp_t* p) {
    Impl* s = of(p);
    s->flushHeader();
    for (const auto& [name, value] : s->headers.entries()) {
      bool ok = !name.empty();
      for (unsigned char c : name) ok = ok && isTokenChar(c);
      if (!ok) return s->overLimit("invalid header field name '" + name.substr(0, 64) + "'", 400);
    }
    BodyFraming framing;
    if (p->flags & F_CHUNKED) {
      framing.kind = BodyFraming::Chunked;
    } else if (p->flags & F_CONTENT_LENGTH) {
      framing.kind = p->content_length > 0 ? BodyFraming::ContentLength : BodyFraming::None;
      framing.length = p->content_length;
    } else if (s->owner->type_ == Type::Response && llhttp_message_needs_eof(p)) {
      framing.kind = BodyFraming::UntilClose;
    }
    Http1Parser& o = *s->owner;
    if (o.type_ == Type::Request) {
      RequestHead h;
      h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
      h.target = std::move(s->url);
      h.versionMinor = p->http_minor;
      h.headers = std::move(s->headers);
      o.handler_.onRequestHead(std::move(h), framing);
      return 0;
    }
    ResponseHead h;
    h.status = p->status_code;
    h.reason = std::move(s->status);
    h.versionMinor = p->http_minor;
    h.headers = std::move(s->headers);
    bool head = o.headResponse_ && h.status >= 200;
    if (head) {
      framing = BodyFraming{};
      o.headResponse_ = false;
    }
    o.handler_.onResponseHead(std::move(h), framing);
    return head ? 1 : 0;  // 1: this response has no body
  }
  static int onBody(llhttp_t* p, const char* at, std::size_t n) {
    of(p)->owner->handler_.onBody(std::string_view(at, n));
    return 0;
  }
  static int onMessageComplete(llhttp_t* p) {
    Impl* s = of(p);
    s->owner->inMessage_ = false;
    s->owner->handler_.onMessageEnd();
    return HPE_PAUSED;  // one message at a time
  }

  static const llhttp_settings_t* settings() {
    static const llhttp_settings_t table = [] {
      llhttp_settings_t t;
      llhttp_settings_init(&t);
      t.on_message_begin = &Impl::onMessageBegin;
      t.on_url = &Impl::onUrl;
      t.on_status = &Impl::onStatus;
      t.on_header_field = &Impl::onHeaderField;
      t.on_header_value = &Impl::onHeaderValue;
      t.on_headers_complete = &Impl::onHeadersComplete;
      t.on_body = &Impl::onBody;
      t.on_message_complete = &Impl::onMessageComplete;
      return t;
    }();
    return &table;
  }
};

Http1Parser::Http1Parser(Type type, Handler& handler, Limits limits)
    : impl_(std::make_unique<Impl>()), handler_(handler), type_(type), limits_(limits) {
  llhttp_init(&impl_->parser, type == Type::Request ? HTTP_REQUEST : HTTP_RESPONSE, Impl::settings());
  impl_->parser.data = impl_.get();
  impl_->owner = this;
}

Http1Parser::~Http1Parser() = default;

bool Http1Parser::keepAlive() const { return llhttp_should_keep_alive(&impl_->parser) != 0; }

Http1Parser::Result Http1Parser::feed(std::string_view data) {
  llhttp_t* p = &impl_->parser;
  llhttp_errno_t err = llhttp_execute(p, data.data(), data.size());
  auto consumed = [&] {
    const char* pos = llhttp_get_error_pos(p);
    return pos ? static_cast<std::size_t>(pos - data.data()) : data.size();
  };
  switch (err) {
    case HPE_OK:
      return {Status::NeedMore, data.size(), {}, 0};
    case HPE_PAUSED: {
      std::size_t n = consumed();
      llhttp_resume(p);
      // An upgrade (or CONNECT) ends the HTTP part of the connection: what
      // follows is raw bytes, never parsed again.
      return {p->upgrade ? Status::Upgrade : Status::MessageEnd, n, {}, 0};
    }
    case HPE_PAUSED_UPGRADE: {
      std::size_t n = consumed();
      llhttp_resume_after_upgrade(p);
      return {Status::Upgrade, n, {}, 0};
    }
    case HPE_USER:
      return {Status::Error, consumed(), impl_->limitError, impl_->limitStatus};
    default: {
      std::string reason = llhttp_get_error_reason(p) ? llhttp_get_error_reason(p) : llhttp_errno_name(err);
      return {Status::Error, consumed(), std::string(type_ == Type::Request ? "malformed request: "
                                                                            : "malformed response: ") + reason,
              400};
    }
  }
}

Http1Parser::Result Http1Parser::finish() {
  llhttp_errno_t err = llhttp_finish(&impl_->parser);
  if (err == HPE_OK) return {Status::NeedMore, 0, {}, 0};
  if (err == HPE_PAUSED) {
    llhttp_resume(&impl_->parser);
    return {Status::MessageEnd, 0, {}, 0};
  }
  return {Status::Error, 0, "the connection closed in the middle of a message", 400};
}

namespace {

// The header section and the blank line that ends a head.
void appendHeaders(const HttpHeaders& headers, std::string& out) {
  for (const auto& [k, v] : headers.entries()) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += "\r\n";
}

}  // namespace

std::string serializeRequestHead(const RequestHead& head) {
  std::string out;
  out.reserve(256);
  out += head.method;
  out += ' ';
  out += head.target;
  out += head.versionMinor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  appendHeaders(head.headers, out);
  return out;
}

std::string serializeResponseHead(const ResponseHead& head) {
  std::string out;
  out.reserve(256);
  out += head.versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  out += head.reason.empty() ? reasonPhrase(head.status) : head.reason;
  out += "\r\n";
  appendHeaders(head.headers, out);
  return out;
}

std::string chunkHeader(std::size_t size) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%zx\r\n", size);
  return std::string(buf, static_cast<std::size_t>(n));
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

}  // namespace switchyard::runtime
