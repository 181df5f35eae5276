#include "router/admin_server.h"

#include <cctype>
#include <optional>
#include <nlohmann/json.hpp>

#include "dtab/delegator.h"
#include "namer/delegate_json.h"
#include "runtime/http_server.h"

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
  return runtime::queryValue(target, key).value_or(std::string());
}

}  // namespace

AdminServer::AdminServer(runtime::Loop& loop, Context context)
    : loop_(loop),
      ctx_(std::move(context)),
      server_(loop, runtime::HttpServer::Options{1 << 20, 64 * 1024, 8 << 20, "admin"},
              [this](runtime::HttpRequest&& req, std::shared_ptr<runtime::HttpResponder> responder) {
                // The reply may come later (metrics); a client gone by then
                // makes it a no-op.
                handle(req.method, req.target, req.body, [responder](Reply r) {
                  responder->reply(r.status, r.contentType, std::move(r.body));
                });
              }) {}

AdminServer::~AdminServer() { server_.closeAll(); }

Expected<std::uint16_t, std::string> AdminServer::listen(const std::string& ip, std::uint16_t port) {
  if (!runtime::SocketAddress::parse(ip, port)) {
    return Unexpected("admin.ip: " + runtime::SocketAddress::parse(ip, port).error());
  }
  auto p = server_.listen(ip, port);
  if (!p) return Unexpected("admin: " + p.error());
  return *p;
}

void AdminServer::stop() { server_.stop(); }

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
