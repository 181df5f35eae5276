#include "router/admin_server.h"

#include <cctype>
#include <optional>
#include <nlohmann/json.hpp>

#include "dtab/delegator.h"
#include "namer/delegate_json.h"
#include "runtime/http1_parser.h"

namespace switchyard::router {

using nlohmann::json;

namespace {

// An unquoted YAML scalar that reads as a boolean or a number is shown as
// one; everything else (quoted, or any other text) stays a string.
nlohmann::ordered_json scalarJson(const runtime::ConfigNode& n) {
  const std::string& t = n.text();
  if (n.quoted() || t.empty()) return t;
  if (t == "true" || t == "false") return t == "true";
  auto j = nlohmann::ordered_json::parse(t, nullptr, /*allow_exceptions=*/false);
  if (j.is_number()) return j;
  return t;
}

// The configuration as read, keys in the file's order.
nlohmann::ordered_json toJson(const runtime::ConfigNode& n) {
  switch (n.kind()) {
    case runtime::ConfigNode::Kind::Null:
      return nullptr;
    case runtime::ConfigNode::Kind::Scalar:
      return scalarJson(n);
    case runtime::ConfigNode::Kind::List: {
      auto a = nlohmann::ordered_json::array();
      for (const auto& i : n.items()) a.push_back(toJson(i));
      return a;
    }
    case runtime::ConfigNode::Kind::Map: {
      auto o = nlohmann::ordered_json::object();
      for (const auto& [k, v] : n.entries()) o[k] = toJson(v);
      return o;
    }
  }
  return nullptr;
}

std::string queryParam(const std::string& target, const std::string& key) {
  auto q = target.find('?');
  if (q == std::string::npos) return {};
  std::string_view rest(target);
  rest.remove_prefix(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == key) {
      std::string raw(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
      std::string out;
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '+') {
          out += ' ';
        } else if (raw[i] == '%' && i + 2 < raw.size() && std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
          out += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          out += raw[i];
        }
      }
      return out;
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}

}  // namespace

// One admin connection: reads a whole request, answers, keeps alive.
class AdminServer::Conn final : public runtime::TcpStream::Handler, public runtime::Http1Parser::Handler {
 public:
  Conn(AdminServer& server, runtime::TcpStreamPtr stream)
      : server_(server), stream_(std::move(stream)),
        parser_(runtime::Http1Parser::Type::Request, *this, runtime::Http1Parser::Limits{8192, 65536}) {
    stream_->setHandler(this);
    stream_->startReading();
  }

  void onData(std::string_view data) override {
    while (!data.empty() && !closed_) {
      auto r = parser_.feed(data);
      if (r.status == runtime::Http1Parser::Status::Error) {
        reply({400, "text/plain", r.error + "\n"}, true);
        return;
      }
      data.remove_prefix(r.consumed);
      if (r.status == runtime::Http1Parser::Status::Upgrade) {
        reply({400, "text/plain", "upgrades are not supported here\n"}, true);
        return;
      }
    }
  }
  void onClosed(const std::string&) override { close(); }
  void onRequestHead(runtime::RequestHead&& head, const runtime::BodyFraming&) override {
    head_ = std::move(head);
    body_.clear();
  }
  void onBody(std::string_view data) override {
    if (body_.size() + data.size() > (1 << 20)) {
      tooLarge_ = true;
      return;
    }
    body_.append(data);
  }
  void onMessageEnd() override {
    if (tooLarge_) {
      reply({413, "text/plain", "request body over 1 MB\n"}, true);
      return;
    }
    bool closeAfter = !parser_.keepAlive();
    // The reply may come later (metrics): it finds this connection only if
    // it is still open.
    server_.handle(head_.method, head_.target, body_, [this, alive = alive_, closeAfter](Reply r) {
      if (*alive && !closed_) reply(r, closeAfter);
    });
  }
  ~Conn() override { *alive_ = false; }

 private:
  void reply(const Reply& r, bool closeAfter) {
    runtime::ResponseHead h;
    h.status = r.status;
    h.headers.add("Content-Type", r.contentType);
    h.headers.add("Content-Length", std::to_string(r.body.size()));
    if (closeAfter) h.headers.add("Connection", "close");
    stream_->write(runtime::serializeResponseHead(h) + r.body);
    if (closeAfter) {
      stream_->closeAfterWrites();
      close();
    }
  }
  void close() {
    if (closed_) return;
    closed_ = true;
    server_.conns_.erase(this);
    server_.loop_.deleteLater(std::unique_ptr<Conn>(this));
  }

  AdminServer& server_;
  runtime::TcpStreamPtr stream_;
  runtime::Http1Parser parser_;
  runtime::RequestHead head_;
  std::string body_;
  bool tooLarge_ = false;
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

AdminServer::AdminServer(runtime::Loop& loop, Context context) : loop_(loop), ctx_(std::move(context)) {}

AdminServer::~AdminServer() {
  stop();
  for (auto* c : conns_) delete c;
}

Expected<std::uint16_t, std::string> AdminServer::listen(const std::string& ip, std::uint16_t port) {
  auto addr = runtime::SocketAddress::parse(ip, port);
  if (!addr) return Unexpected("admin.ip: " + addr.error());
  auto l = runtime::TcpListener::listen(loop_, *addr, runtime::TcpListener::ReusePort::No,
                                       [this](runtime::TcpStreamPtr s) {
    conns_.insert(new Conn(*this, std::move(s)));
  });
  if (!l) return Unexpected("admin: " + l.error());
  listener_ = std::move(*l);
  return listener_->port();
}

void AdminServer::stop() { listener_.reset(); }

void AdminServer::handle(const std::string& method, const std::string& target, const std::string& body,
                         std::function<void(Reply)> done) {
  std::string path = target.substr(0, target.find('?'));
  std::optional<std::string> promPrefix;
  if (path == "/admin/metrics/prometheus") promPrefix = "";
  for (const auto& [p, prefix] : ctx_.prometheusPaths) {
    if (p == path) promPrefix = prefix;
  }
  if (path == "/admin/metrics.json" || promPrefix) {
    std::vector<ProcessMetric> process = ctx_.processMetrics ? ctx_.processMetrics() : std::vector<ProcessMetric>{};
    ctx_.collect([done, promPrefix, process = std::move(process)](MetricsSnapshot snapshot) {
      if (promPrefix) {
        done({200, "text/plain; version=0.0.4", metricsPrometheus(snapshot, *promPrefix, process)});
      } else {
        done({200, "application/json", metricsJson(snapshot, process)});
      }
    });
    return;
  }
  if (path == "/delegator.json") {
    delegator(method, target, body, std::move(done));
    return;
  }
  if (path == "/requests" || path == "/requests.json") {
    if (!ctx_.collectRecent) {
      done({404, "text/plain",
            "no recent requests are kept: add a telemeter {kind: io.l5d.recentRequests, sampleRate: 1.0} to the config\n"});
      return;
    }
    bool asJson = path == "/requests.json";
    ctx_.collectRecent([done, asJson](std::vector<RecentRequest> requests) {
      if (asJson) {
        done({200, "application/json", recentRequestsJson(requests)});
      } else {
        done({200, "text/html; charset=utf-8", recentRequestsHtml(requests)});
      }
    });
    return;
  }
  done(reply(method, target));
}

void AdminServer::delegator(const std::string& method, const std::string& target, const std::string& body,
                            std::function<void(Reply)> done) {
  std::string ns = queryParam(target, "namespace");
  std::string dtabText = queryParam(target, "dtab");
  std::string pathText = queryParam(target, "path");
  if (method == "POST") {
    json req = json::parse(body, nullptr, false);
    if (req.is_discarded() || !req.is_object()) {
      return done({400, "text/plain", "expected a JSON object {namespace, dtab, path}\n"});
    }
    for (auto [key, field] : {std::pair{"namespace", &ns}, {"dtab", &dtabText}, {"path", &pathText}}) {
      if (!req.contains(key)) continue;
      if (!req[key].is_string()) return done({400, "text/plain", std::string(key) + " must be a string\n"});
      *field = req[key].get<std::string>();
    }
  }
  const RouterPlan* plan = nullptr;
  for (const auto& p : *ctx_.plans) {
    if (p->config.label == ns || (ns.empty() && !plan)) plan = p.get();
  }
  if (!plan) return done({404, "text/plain", "no router labelled \"" + ns + "\"\n"});
  auto extra = dtab::Dtab::parse(dtabText);
  if (!extra) return done({400, "text/plain", "Invalid dtab: " + extra.error().message() + "\n"});
  auto p = dtab::Path::parse(pathText);
  if (!p) return done({400, "text/plain", "Invalid path: " + p.error().message() + "\n"});
  if (plan->remote && ctx_.remoteDelegate) {
    // The namer service delegates, in the router's (default) namespace.
    ctx_.remoteDelegate(*plan, extra->show(), p->show(), [done](Expected<std::string, std::string> r) {
      if (!r) return done({502, "text/plain", "the namer service: " + r.error() + "\n"});
      done({200, "application/json", std::move(*r)});
    });
    return;
  }
  auto naming = ctx_.naming();
  dtab::Delegator d(naming->dtabs[plan->index] + *extra, naming->namers);
  json tree = namer::delegateTreeToJson(d.delegate(*p));
  done({200, "application/json", tree.dump(-1, ' ', false, json::error_handler_t::replace)});
}

AdminServer::Reply AdminServer::reply(const std::string& method, const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  if (path == "/admin/ping") return {200, "text/plain", "pong"};
  if (path == "/config.json") return {200, "application/json", toJson(*ctx_.config).dump(2)};
  if (path == "/admin/shutdown") {
    if (method != "POST") return {405, "text/plain", "POST to shut down\n"};
    loop_.defer(ctx_.shutdown);
    return {200, "text/plain", "shutting down\n"};
  }
  return {404, "text/plain", "no such admin path: " + path + "\n"};
}

}  // namespace switchyard::router
