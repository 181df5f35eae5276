#include "plugins/k8s/api.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/http_server.h"

namespace switchyard::plugins::k8s {

using nlohmann::json;

namespace {

constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
constexpr std::uint64_t kTokenRefreshMs = 60'000;
constexpr std::uint64_t kAddressTtlMs =
    30'000;  // a host name's address is looked up again after this
// One watch event (an object) may be this large; a list, 16 MB too (fetch).
constexpr std::size_t kMaxEventBytes = 16 << 20;

std::string serviceAccountDir() {
  const char* dir = std::getenv("SWITCHYARD_K8S_SERVICEACCOUNT_DIR");
  return dir && *dir ? dir : kServiceAccountDir;
}

}  // namespace

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string stringAt(const json& obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

ApiSettings ApiSettings::read(runtime::ConfigReader& r) {
  ApiSettings s;
  const char* clusterHost = std::getenv("KUBERNETES_SERVICE_HOST");
  // A port alone still means a proxy on this host, as in Linkerd.
  bool inCluster = !r.has("host") && !r.has("port") && clusterHost && *clusterHost;
  if (inCluster) {
    s.host = clusterHost;
    s.port = 443;
    const char* clusterPort = std::getenv("KUBERNETES_SERVICE_PORT");
    if (clusterPort && *clusterPort) {
      int p = std::atoi(clusterPort);
      if (p > 0 && p <= 65535) s.port = static_cast<std::uint16_t>(p);
    }
    std::string dir = serviceAccountDir();
    std::string what =
        "in-cluster mode (no host or port given, KUBERNETES_SERVICE_HOST=" + s.host + "): ";
    auto tls = runtime::TlsClientContext::create(dir + "/ca.crt");
    if (!tls) {
      r.problems().error(r.path(), what + tls.error() +
                                       "; mount the service account token, or give host and port");
    } else {
      s.tls = *tls;
    }
    s.tokenFile = dir + "/token";
    if (!std::ifstream(s.tokenFile)) {
      r.problems().error(r.path(), what + "cannot read the service account token " + s.tokenFile +
                                       " (is automountServiceAccountToken off?)");
    }
  } else {
    std::string host = r.string("host", "localhost");
    s.host = host == "localhost" ? "127.0.0.1" : host;
    s.port = static_cast<std::uint16_t>(r.integer("port", s.port, 1, 65535));
  }
  bool name = !s.host.empty() && s.host.size() <= 253 &&
              std::all_of(s.host.begin(), s.host.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
              });
  if (!runtime::SocketAddress::parse(s.host, 1) && !name) {
    r.problems().error(r.childPath("host"),
                       "expected a host name or a numeric address, got \"" + s.host + "\"");
  }
  return s;
}

ApiClient::ApiClient(runtime::Loop& loop, ApiSettings settings, namer::DnsSettings dns)
    : loop_(loop), settings_(std::move(settings)), dnsSettings_(std::move(dns)) {
  auto addr = runtime::SocketAddress::parse(settings_.host, settings_.port);
  if (addr) {
    addr_ = *addr;
    numeric_ = true;
  }
}

ApiClient::~ApiClient() { *alive_ = false; }

void ApiClient::withAddress(
    std::function<void(Expected<runtime::SocketAddress, std::string>)> then) {
  if (addr_ && (numeric_ || loop_.nowMs() - resolvedMs_ < kAddressTtlMs)) return then(*addr_);
  waiting_.push_back(std::move(then));
  if (waiting_.size() > 1) return;  // a lookup is under way
  auto answer = [this](Expected<runtime::SocketAddress, std::string> a) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& fn : waiting) fn(a);
  };
  if (!dns_) {
    auto dns = namer::makeDnsResolver(loop_, dnsSettings_);
    if (!dns)
      return answer(Unexpected("no DNS resolver for " + settings_.host + ": " + dns.error()));
    dns_ = std::move(*dns);
  }
  dns_->resolveHost(
      settings_.host, [this, alive = alive_, answer](runtime::DnsResolver::HostResult r) {
        if (!*alive) return;
        if (r.status != runtime::DnsResolver::Status::Ok || r.addresses.empty()) {
          if (addr_) return answer(*addr_);  // the last address found, rather than nothing
          return answer(Unexpected("cannot resolve " + settings_.host +
                                   (r.error.empty() ? "" : ": " + r.error)));
        }
        auto addr = runtime::SocketAddress::parse(r.addresses.front(), settings_.port);
        if (!addr) return answer(Unexpected(addr.error()));
        addr_ = *addr;
        resolvedMs_ = loop_.nowMs();
        answer(*addr_);
      });
}

std::string ApiClient::authority() const {
  bool v6 = settings_.host.find(':') != std::string::npos;
  return (v6 ? "[" + settings_.host + "]" : settings_.host) + ":" + std::to_string(settings_.port);
}

std::string ApiClient::where() const {
  return (settings_.tls ? "https://" : "http://") + authority();
}

runtime::HttpCall::Request ApiClient::request(std::string method, std::string target,
                                              std::string body) {
  runtime::HttpCall::Request req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.host = authority();
  req.headers.add("Accept", "application/json");
  if (!body.empty()) req.headers.add("Content-Type", "application/json");
  req.body = std::move(body);
  if (settings_.tls) {
    req.tls = settings_.tls;
    req.tlsServerName = settings_.host;
    std::string token = bearerToken();
    if (!token.empty()) req.headers.add("Authorization", "Bearer " + token);
  }
  return req;
}

// Read again now and then: the kubelet rotates projected tokens in place.
std::string ApiClient::bearerToken() {
  std::uint64_t now = loop_.nowMs();
  if (tokenReadMs_ != 0 && now - tokenReadMs_ < kTokenRefreshMs) return token_;
  tokenReadMs_ = now;
  std::ifstream in(settings_.tokenFile);
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  if (!in || token.empty()) {
    std::fprintf(stderr,
                 "switchyard: Kubernetes API: cannot read the service account token %s; keeping "
                 "the last one\n",
                 settings_.tokenFile.c_str());
  } else {
    token_ = std::move(token);
  }
  return token_;
}

ListWatch::ListWatch(ApiClient& api, std::string collection, std::string query, Handler handler)
    : api_(api),
      collection_(std::move(collection)),
      query_(std::move(query)),
      handler_(std::move(handler)),
      retry_(api.loop()) {}

ListWatch::~ListWatch() {
  ++*gen_;
  call_.reset();
}

void ListWatch::start() { list(); }

std::string ListWatch::target(bool watching) const {
  std::string t = collection_;
  std::string q = query_;
  if (watching) {
    // The server ends the watch after timeoutSeconds and it is reopened.
    q += std::string(q.empty() ? "" : "&") +
         "watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" +
         runtime::percentEncode(resourceVersion_);
  }
  return q.empty() ? t : t + "?" + q;
}

// The call in flight is freed after the current callback (it may be the
// caller), and its late callbacks see a newer generation and do nothing.
void ListWatch::drop() {
  ++*gen_;
  if (!call_) return;
  std::shared_ptr<runtime::HttpCall> old(std::move(call_));
  api_.loop().defer([old] {});
}

void ListWatch::withAddress(void (ListWatch::*step)(const runtime::SocketAddress&)) {
  drop();
  api_.withAddress(
      [this, step, gen = gen_, mine = *gen_](Expected<runtime::SocketAddress, std::string> addr) {
        if (*gen != mine) return;
        if (!addr) return failed(addr.error());
        (this->*step)(*addr);
      });
}

void ListWatch::list() { withAddress(&ListWatch::list); }

void ListWatch::list(const runtime::SocketAddress& addr) {
  auto req = api_.request("GET", target(false));
  req.timeoutMs = 10'000;
  call_ = runtime::fetch(
      api_.loop(), addr, std::move(req),
      [this, gen = gen_, mine = *gen_](Expected<runtime::HttpResult, std::string> r) {
        if (*gen != mine) return;
        drop();
        if (!r) return failed(r.error());
        if (r->status == 401) api_.unauthorized();
        if (r->status != 200) {
          auto status = json::parse(r->body, nullptr, false);
          std::string message = stringAt(status, "message");
          return failed("listing " + collection_ + " answered " + std::to_string(r->status) +
                        (message.empty() ? "" : " (" + message + ")"));
        }
        auto j = json::parse(r->body, nullptr, false);
        auto items = j.is_object() ? j.find("items") : j.end();
        if (!j.is_object() || items == j.end() || !(items->is_array() || items->is_null())) {
          return failed("the list of " + collection_ + " is not a list");
        }
        auto meta = j.find("metadata");
        resourceVersion_ = meta != j.end() ? stringAt(*meta, "resourceVersion") : std::string();
        relist_ = false;
        // The failure count stays until the watch proves itself (healthy()):
        // a list that works followed by a watch that fails at once is still
        // backed off, not repeated every 0.2 s.
        handler_.onList(items->is_array() ? *items : json::array(), resourceVersion_);
        if (*gen != mine + 1) return;  // (drop() above bumped it once)
        watch();
      });
}

bool ListWatch::healthy() {
  if (failures_ == 0 || api_.loop().nowMs() - watchStartMs_ < 1'000) return true;
  failures_ = 0;
  if (!handler_.onRecovered) return true;
  auto gen = gen_;
  std::uint64_t mine = *gen;
  handler_.onRecovered();
  return *gen == mine;  // false: the handler dropped (or destroyed) this
}

void ListWatch::watch() { withAddress(&ListWatch::watch); }

void ListWatch::watch(const runtime::SocketAddress& addr) {
  auto req = api_.request("GET", target(true));
  // A connection that went silent (half-open) is given up a little after
  // the server should have ended it.
  req.timeoutMs = 330'000;
  watchStartMs_ = api_.loop().nowMs();
  status_ = 0;
  buffer_.clear();
  std::uint64_t mine = *gen_;
  runtime::HttpCall::Handler h;
  h.onHead = [this, gen = gen_, mine](const runtime::ResponseHead& head) {
    if (*gen != mine) return;
    status_ = head.status;
    if (head.status == 401) api_.unauthorized();
  };
  h.onBody = [this, gen = gen_, mine](std::string_view data) {
    if (*gen != mine || status_ != 200) return;
    if (buffer_.size() + data.size() > kMaxEventBytes) {
      // A line that never ends would take all memory: start over instead.
      return relistLater("an event over " + std::to_string(kMaxEventBytes >> 20) + " MB");
    }
    buffer_.append(data);
    std::size_t nl;
    while ((nl = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      onLine(line);
      if (*gen != mine) return;
    }
  };
  h.onDone = [this, gen = gen_, mine](std::optional<std::string> error) {
    if (*gen != mine) return;
    drop();
    if (status_ == 410) relist_ = true;
    if (relist_) return failed("the watch's resourceVersion is too old (410): listing again");
    if (error) return failed(*error);
    if (status_ != 200)
      return failed("watching " + collection_ + " answered " + std::to_string(status_));
    // The server ends watches now and then: carry on from where it was, at
    // once unless it ended at once (then as after a failure, so a server
    // that keeps doing so is not hammered).
    if (api_.loop().nowMs() - watchStartMs_ < 1'000)
      return failed("the watch ended as soon as it began");
    if (!healthy()) return;
    watch();
  };
  call_ = runtime::HttpCall::start(api_.loop(), addr, std::move(req), std::move(h), 2'000);
}

void ListWatch::onLine(const std::string& line) {
  auto j = json::parse(line, nullptr, false);
  std::string type = stringAt(j, "type");
  if (type.empty()) return;
  static const json kNone = json::object();
  auto found = j.find("object");
  const json& obj = found != j.end() ? *found : kNone;
  if (type == "ERROR") {
    // 410: the resourceVersion is too old; anything else: start over too.
    std::string why = stringAt(obj, "message");
    return relistLater("the watch said: " + (why.empty() ? std::string("an ERROR event") : why));
  }
  // A stream that has worked for a second: a failure after this is a new one.
  if (!healthy()) return;
  auto meta = obj.is_object() ? obj.find("metadata") : obj.end();
  if (meta != obj.end()) {
    std::string rv = stringAt(*meta, "resourceVersion");
    if (!rv.empty()) resourceVersion_ = rv;
  }
  if (type == "ADDED" || type == "MODIFIED" || type == "DELETED") handler_.onEvent(type, obj);
}

// Deferred: it runs inside the call's own callback, which failed() must not
// outlive (a handler may destroy this).
void ListWatch::relistLater(std::string why) {
  relist_ = true;
  drop();
  api_.loop().defer([this, gen = gen_, mine = *gen_, why = std::move(why)] {
    if (*gen == mine) failed(why + "; listing again");
  });
}

void ListWatch::failed(const std::string& why) {
  bool first = failures_ == 0;
  std::uint64_t delay = std::min<std::uint64_t>(200ull << std::min(failures_, 5), 5'000);
  ++failures_;
  retry_.start(delay, [this] {
    if (resourceVersion_.empty() || relist_) {
      list();
    } else {
      watch();
    }
  });
  handler_.onFailure(why, first);  // last: it may destroy this
}

}  // namespace switchyard::plugins::k8s
