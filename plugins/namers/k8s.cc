#include "plugins/namers/k8s.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "namer/want.h"
#include "runtime/http_client.h"
#include "runtime/http_server.h"
#include "runtime/timer.h"
#include "runtime/tls.h"

namespace switchyard::plugins {
namespace {

using dtab::Addr;
using dtab::BoundName;
using dtab::Name;
using dtab::NameTree;
using dtab::Path;
using nlohmann::json;

constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct Settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8001;
  std::string labelSelector;
  bool endpointSlices = false;
  // In-cluster: HTTPS with the service account's CA and token.
  std::shared_ptr<const runtime::TlsClientContext> tls;
  std::string tokenFile;
};

// The three kinds of object the namer reads. Endpoints or EndpointSlices
// give the addresses; a Service maps a numbered port to its target port.
enum class Kind { Endpoints, EndpointSlices, Services };

const char* kindName(Kind k) {
  switch (k) {
    case Kind::Endpoints: return "endpoints";
    case Kind::EndpointSlices: return "endpointslices";
    case Kind::Services: return "services";
  }
  return "?";
}

// What one object says, parsed once as it arrives (the JSON is not kept).
struct Parsed {
  // Endpoints, EndpointSlice: the ready addresses by port name and number.
  std::map<std::string, std::vector<dtab::Endpoint>> ports;
  // Service: service port number -> target port (a number or a name).
  std::map<std::string, std::string> targets;
  friend bool operator==(const Parsed&, const Parsed&) = default;
};

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string stringAt(const json& obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

// A port object's number (1-65535) and the keys it answers to: its number
// and its name; an unnamed port (a Service's only one) also answers to "",
// which is how a numbered Service port finds it.
std::optional<std::pair<std::uint16_t, std::vector<std::string>>> portKeys(const json& port) {
  const json* n = member(port, "port");
  if (!n || !n->is_number_integer()) return std::nullopt;
  auto number = n->get<std::int64_t>();
  if (number <= 0 || number > 65535) return std::nullopt;
  return std::make_pair(static_cast<std::uint16_t>(number),
                        std::vector<std::string>{std::to_string(number), stringAt(port, "name")});
}

// core/v1 Endpoints: subsets[] of addresses (ready) and ports.
Parsed parseEndpoints(const json& obj) {
  Parsed p;
  const json* subsets = member(obj, "subsets");
  if (!subsets || !subsets->is_array()) return p;
  for (const auto& subset : *subsets) {
    const json* ports = member(subset, "ports");
    if (!ports || !ports->is_array()) continue;
    const json* addresses = member(subset, "addresses");
    for (const auto& port : *ports) {
      auto keys = portKeys(port);
      if (!keys) continue;
      for (const auto& key : keys->second) {
        auto& list = p.ports[key];  // a port with no ready address is still a port
        if (!addresses || !addresses->is_array()) continue;
        for (const auto& a : *addresses) {
          std::string ip = stringAt(a, "ip");
          if (ip.empty()) continue;
          dtab::Endpoint e{ip, keys->first, 1.0, {}};
          std::string node = stringAt(a, "nodeName");
          if (!node.empty()) e.meta["nodeName"] = node;
          list.push_back(std::move(e));
        }
      }
    }
  }
  return p;
}

// discovery.k8s.io/v1 EndpointSlice: endpoints[] (each with addresses and
// conditions) and ports[]. A ready condition that is absent means ready, as
// the API documents; FQDN slices have no addresses to dial.
Parsed parseEndpointSlice(const json& obj) {
  Parsed p;
  if (stringAt(obj, "addressType") == "FQDN") return p;
  const json* ports = member(obj, "ports");
  const json* endpoints = member(obj, "endpoints");
  if (!ports || !ports->is_array()) return p;
  for (const auto& port : *ports) {
    auto keys = portKeys(port);
    if (!keys) continue;
    for (const auto& key : keys->second) {
      auto& list = p.ports[key];
      if (!endpoints || !endpoints->is_array()) continue;
      for (const auto& ep : *endpoints) {
        const json* conditions = member(ep, "conditions");
        const json* ready = conditions ? member(*conditions, "ready") : nullptr;
        if (ready && ready->is_boolean() && !ready->get<bool>()) continue;
        const json* addresses = member(ep, "addresses");
        if (!addresses || !addresses->is_array()) continue;
        for (const auto& a : *addresses) {
          if (!a.is_string()) continue;
          dtab::Endpoint e{a.get<std::string>(), keys->first, 1.0, {}};
          std::string node = stringAt(ep, "nodeName");
          if (!node.empty()) e.meta["nodeName"] = node;
          std::string zone = stringAt(ep, "zone");
          if (!zone.empty()) e.meta["zone"] = zone;
          list.push_back(std::move(e));
        }
      }
    }
  }
  return p;
}

// core/v1 Service: spec.ports[], each port number -> the port's name. The
// endpoints controller writes each Service port into Endpoints and
// EndpointSlices under that same name, with the targetPort resolved per pod
// (a named targetPort may be a different number on each), so the name is
// what finds the right endpoint port.
Parsed parseService(const json& obj) {
  Parsed p;
  const json* spec = member(obj, "spec");
  const json* ports = spec ? member(*spec, "ports") : nullptr;
  if (!ports || !ports->is_array()) return p;
  for (const auto& port : *ports) {
    auto keys = portKeys(port);
    if (keys) p.targets[keys->second[0]] = keys->second[1];
  }
  return p;
}

Parsed parse(Kind kind, const json& obj) {
  switch (kind) {
    case Kind::Endpoints: return parseEndpoints(obj);
    case Kind::EndpointSlices: return parseEndpointSlice(obj);
    case Kind::Services: return parseService(obj);
  }
  return {};
}

// What the namer knows of one watched query, as the snapshot shows it.
struct State {
  bool known = false;  // listed at least once
  std::string error;   // never listed, and the last try failed: why
  bool empty = true;   // no object matches (no such service)
  Parsed merged;       // every matching object's ports (or targets) together
  friend bool operator==(const State&, const State&) = default;
};

// Many slices (or, in principle, objects) make one service: their ports
// merged, each address once.
State merge(const std::map<std::string, Parsed>& objects) {
  State s;
  s.known = true;
  s.empty = objects.empty();
  for (const auto& [name, p] : objects) {
    for (const auto& [key, list] : p.ports) {
      auto& out = s.merged.ports[key];
      out.insert(out.end(), list.begin(), list.end());
    }
    for (const auto& [port, target] : p.targets) s.merged.targets.emplace(port, target);
  }
  for (auto& [key, list] : s.merged.ports) {
    auto less = [](const auto& a, const auto& b) { return std::tie(a.ip, a.port) < std::tie(b.ip, b.port); };
    auto same = [](const auto& a, const auto& b) { return a.ip == b.ip && a.port == b.port; };
    std::sort(list.begin(), list.end(), less);
    list.erase(std::unique(list.begin(), list.end(), same), list.end());
  }
  return s;
}

bool isNumber(const std::string& s) {
  return !s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Watch keys: "<a|s>/<namespace>/<service>", a for the addresses (Endpoints
// or EndpointSlices, as configured), s for the Service's port map.
std::string addressKey(const std::string& ns, const std::string& svc) { return "a/" + ns + "/" + svc; }
std::string serviceKey(const std::string& ns, const std::string& svc) { return "s/" + ns + "/" + svc; }

class Snapshot final : public dtab::Namer {
 public:
  using States = std::map<std::string, std::shared_ptr<const State>>;
  Snapshot(Path prefix, States states, std::shared_ptr<const namer::WantFn> want)
      : prefix_(std::move(prefix)), states_(std::move(states)), want_(std::move(want)) {}

  dtab::NamerResult lookup(const Path& residual) const override {
    if (residual.size() < 3) return NameTree<Name>::neg();
    const std::string& ns = residual[0];
    const std::string& svc = residual[2];
    BoundName bound{prefix_ + residual.take(3), residual.drop(3), Addr::pending()};
    const State* addresses = find(addressKey(ns, svc));
    if (!addresses) return NameTree<Name>::leaf(std::move(bound));
    if (!addresses->known) {
      bound.addr = Addr::failed(addresses->error);
      return NameTree<Name>::leaf(std::move(bound));
    }
    if (addresses->empty) return NameTree<Name>::neg();
    std::string port = residual[1];
    if (isNumber(port)) {
      // A number is the Service's port, as in Linkerd: the endpoints carry
      // it under the Service port's name. Without a Service (or such a port
      // on it) the number is taken as the endpoints' own port.
      const State* service = find(serviceKey(ns, svc));
      if (!service) return NameTree<Name>::leaf(std::move(bound));
      auto target = service->merged.targets.find(port);
      if (target != service->merged.targets.end()) port = target->second;
    }
    auto it = addresses->merged.ports.find(port);
    if (it == addresses->merged.ports.end()) return NameTree<Name>::neg();
    bound.addr = Addr::bound(it->second);
    return NameTree<Name>::leaf(std::move(bound));
  }

 private:
  // The state of a query, or nullptr (and the owner asked to start it) when
  // it has no answer yet.
  const State* find(const std::string& key) const {
    auto it = states_.find(key);
    if (it == states_.end() || (!it->second->known && it->second->error.empty())) {
      (*want_)(key);
      return nullptr;
    }
    return it->second.get();
  }

  Path prefix_;
  States states_;
  std::shared_ptr<const namer::WantFn> want_;
};

class K8sHost final : public namer::NamerHost {
 public:
  K8sHost(Settings settings, namer::NamerContext ctx) : settings_(std::move(settings)), ctx_(std::move(ctx)) {
    snapshot_ = std::make_shared<Snapshot>(ctx_.prefix, Snapshot::States{},
                                           std::make_shared<const namer::WantFn>([](const std::string&) {}));
  }
  ~K8sHost() override {
    *alive_ = false;
    watches_.clear();
  }

  void start(runtime::Loop& loop, std::function<void()> onChange) override {
    loop_ = &loop;
    onChange_ = std::move(onChange);
    auto addr = runtime::SocketAddress::parse(settings_.host, settings_.port);
    if (!addr) {
      std::fprintf(stderr, "switchyard: %s: %s\n", ctx_.prefix.show().c_str(), addr.error().c_str());
      return;
    }
    addr_ = *addr;
    want_ = namer::makeWant(loop, alive_, [this](const std::string& key) {
      if (watches_.count(key) || watches_.size() >= kMaxWatches) return;
      auto first = key.find('/');
      auto second = key.find('/', first + 1);
      Kind kind = key[0] == 's' ? Kind::Services : settings_.endpointSlices ? Kind::EndpointSlices : Kind::Endpoints;
      auto w = std::make_unique<Watch>(*loop_, kind, key.substr(first + 1, second - first - 1), key.substr(second + 1));
      Watch& ref = *w;
      watches_.emplace(key, std::move(w));
      list(ref, key);
    });
    publish();
    onChange_();
  }

  std::shared_ptr<const dtab::Namer> current() const override { return snapshot_; }

 private:
  static constexpr std::size_t kMaxWatches = 20'000;
  static constexpr std::uint64_t kTokenRefreshMs = 60'000;

  // One list-then-watch query: the objects of one kind that make up one
  // service (one Endpoints, its EndpointSlices, or its Service).
  struct Watch {
    Watch(runtime::Loop& loop, Kind k, std::string n, std::string s)
        : kind(k), ns(std::move(n)), name(std::move(s)), retry(loop) {}
    Kind kind;
    std::string ns, name;
    std::map<std::string, Parsed> objects;  // by metadata.name
    State state;
    std::string resourceVersion;
    std::unique_ptr<runtime::HttpCall> call;
    int status = 0;
    std::string buffer;
    int failures = 0;
    bool relist = false;  // the watch said 410: list again
    std::uint64_t watchStartMs = 0;
    std::uint64_t gen = 0;  // bumped when a call is dropped: its late callbacks are ignored
    runtime::Timer retry;
  };

  std::string where() const {
    return (settings_.tls ? "https://" : "http://") + authority();
  }

  std::string authority() const {
    bool v6 = settings_.host.find(':') != std::string::npos;
    return (v6 ? "[" + settings_.host + "]" : settings_.host) + ":" + std::to_string(settings_.port);
  }

  // The watch a callback belongs to, unless it was dropped since.
  Watch* find(const std::string& k, std::uint64_t gen) {
    auto it = watches_.find(k);
    return it != watches_.end() && it->second->gen == gen ? it->second.get() : nullptr;
  }

  std::string collection(const Watch& w) const {
    std::string ns = runtime::percentEncode(w.ns);
    if (w.kind == Kind::EndpointSlices) return "/apis/discovery.k8s.io/v1/namespaces/" + ns + "/endpointslices";
    return "/api/v1/namespaces/" + ns + "/" + kindName(w.kind);
  }

  // A service's slices carry its name in a label; one object is chosen by
  // its name.
  std::string query(const Watch& w) const {
    std::string labels = settings_.labelSelector;
    std::string q;
    if (w.kind == Kind::EndpointSlices) {
      labels = "kubernetes.io/service-name=" + w.name + (labels.empty() ? "" : "," + labels);
    } else {
      q = "fieldSelector=" + runtime::percentEncode("metadata.name=" + w.name);
    }
    if (!labels.empty()) q += (q.empty() ? "" : "&") + std::string("labelSelector=") + runtime::percentEncode(labels);
    return q;
  }

  runtime::HttpCall::Request request(std::string target) {
    runtime::HttpCall::Request req;
    req.target = std::move(target);
    req.host = authority();
    req.headers.add("Accept", "application/json");
    if (settings_.tls) {
      req.tls = settings_.tls;
      req.tlsServerName = settings_.host;
      std::string token = bearerToken();
      if (!token.empty()) req.headers.add("Authorization", "Bearer " + token);
    }
    return req;
  }

  // The service account's token, read again now and then: the kubelet
  // rotates projected tokens in place.
  std::string bearerToken() {
    std::uint64_t now = loop_->nowMs();
    if (tokenReadMs_ != 0 && now - tokenReadMs_ < kTokenRefreshMs) return token_;
    tokenReadMs_ = now;
    std::ifstream in(settings_.tokenFile);
    std::stringstream text;
    text << in.rdbuf();
    std::string token = text.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (!in || token.empty()) {
      std::fprintf(stderr, "switchyard: %s: cannot read the service account token %s; keeping the last one\n",
                   ctx_.prefix.show().c_str(), settings_.tokenFile.c_str());
    } else {
      token_ = std::move(token);
    }
    return token_;
  }

  void drop(Watch& w) {
    ++w.gen;
    if (!w.call) return;
    std::shared_ptr<runtime::HttpCall> old(std::move(w.call));
    loop_->defer([old] {});
  }

  // The service's current objects and the resourceVersion to watch from.
  void list(Watch& w, const std::string& k) {
    drop(w);
    auto req = request(collection(w) + "?" + query(w));
    req.timeoutMs = 10'000;
    w.call = runtime::fetch(
        *loop_, *addr_, std::move(req), [this, alive = alive_, k, gen = w.gen](Expected<runtime::HttpResult, std::string> r) {
          if (!*alive) return;
          Watch* wp = find(k, gen);
          if (!wp) return;
          Watch& cur = *wp;
          drop(cur);
          if (!r) return failed(cur, k, r.error());
          if (r->status != 200) {
            if (r->status == 401) tokenReadMs_ = 0;  // perhaps rotated: read it again
            return failed(cur, k, std::string("listing ") + kindName(cur.kind) + " answered " + std::to_string(r->status));
          }
          auto j = json::parse(r->body, nullptr, false);
          const json* items = member(j, "items");
          if (!items || !(items->is_array() || items->is_null())) {
            return failed(cur, k, std::string("the ") + kindName(cur.kind) + " list is not a list");
          }
          const json* meta = member(j, "metadata");
          cur.resourceVersion = meta ? stringAt(*meta, "resourceVersion") : std::string();
          cur.objects.clear();
          if (items->is_array()) {
            for (const auto& obj : *items) {
              const json* m = member(obj, "metadata");
              if (m) cur.objects[stringAt(*m, "name")] = parse(cur.kind, obj);
            }
          }
          changed(cur);
          cur.relist = false;
          watch(cur, k);
        });
  }

  // Every change after resourceVersion, as newline-delimited events.
  void watch(Watch& w, const std::string& k) {
    drop(w);
    // The server ends the watch after timeoutSeconds and it is reopened; a
    // connection that went silent (half-open) is given up a little later.
    auto req = request(collection(w) + "?" + query(w) +
                       "&watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" +
                       runtime::percentEncode(w.resourceVersion));
    req.timeoutMs = 330'000;
    w.watchStartMs = loop_->nowMs();
    runtime::HttpCall::Handler h;
    std::uint64_t gen = w.gen;
    w.status = 0;
    w.buffer.clear();
    h.onHead = [this, alive = alive_, k, gen](const runtime::ResponseHead& head) {
      if (!*alive) return;
      Watch* wp = find(k, gen);
      if (!wp) return;
      wp->status = head.status;
      if (head.status == 200) {
        if (wp->failures > 0) {
          std::fprintf(stderr, "switchyard: %s: %s %s/%s: watching again\n", ctx_.prefix.show().c_str(),
                       kindName(wp->kind), wp->ns.c_str(), wp->name.c_str());
        }
        wp->failures = 0;
      }
    };
    h.onBody = [this, alive = alive_, k, gen](std::string_view data) {
      if (!*alive) return;
      Watch* wp = find(k, gen);
      if (!wp) return;
      Watch& cur = *wp;
      if (cur.status != 200) return;
      cur.buffer.append(data);
      std::size_t nl;
      while ((nl = cur.buffer.find('\n')) != std::string::npos) {
        std::string line = cur.buffer.substr(0, nl);
        cur.buffer.erase(0, nl + 1);
        onEvent(cur, k, line);
        if (!*alive || cur.gen != gen) return;
      }
    };
    h.onDone = [this, alive = alive_, k, gen](std::optional<std::string> error) {
      if (!*alive) return;
      Watch* wp = find(k, gen);
      if (!wp) return;
      Watch& cur = *wp;
      drop(cur);
      if (cur.status == 410) cur.relist = true;
      if (cur.relist) return failed(cur, k, "the watch's resourceVersion is too old (410): listing again");
      if (error) return failed(cur, k, *error);
      if (cur.status != 200) {
        if (cur.status == 401) tokenReadMs_ = 0;
        return failed(cur, k, std::string("watching ") + kindName(cur.kind) + " answered " + std::to_string(cur.status));
      }
      // The server ends watches now and then: carry on from where it was,
      // at once unless it ended at once (then as after a failure).
      if (loop_->nowMs() - cur.watchStartMs < 1'000) return failed(cur, k, "the watch ended as soon as it began");
      watch(cur, k);
    };
    w.call = runtime::HttpCall::start(*loop_, *addr_, std::move(req), std::move(h), 2'000);
  }

  void onEvent(Watch& w, const std::string& k, const std::string& line) {
    auto j = json::parse(line, nullptr, false);
    std::string type = stringAt(j, "type");
    if (type.empty()) return;
    static const json kNone = json::object();
    const json* found = member(j, "object");
    const json& obj = found ? *found : kNone;
    if (type == "ERROR") {
      // 410: the resourceVersion is too old; anything else: start over too,
      // after the usual backoff (an API that keeps saying so is not hammered).
      w.relist = true;
      drop(w);
      std::string why = stringAt(obj, "message");
      if (why.empty()) why = "an ERROR event";
      loop_->defer([this, alive = alive_, k, why] {
        auto it = watches_.find(k);
        if (*alive && it != watches_.end()) failed(*it->second, k, "the watch said: " + why + "; listing again");
      });
      return;
    }
    const json* meta = member(obj, "metadata");
    if (meta) {
      std::string rv = stringAt(*meta, "resourceVersion");
      if (!rv.empty()) w.resourceVersion = rv;
    }
    if (type == "BOOKMARK" || !meta) return;
    std::string name = stringAt(*meta, "name");
    if (type == "DELETED") {
      w.objects.erase(name);
    } else if (type == "ADDED" || type == "MODIFIED") {
      w.objects[name] = parse(w.kind, obj);
    } else {
      return;
    }
    changed(w);
  }

  void failed(Watch& w, const std::string& k, const std::string& why) {
    if (!w.state.known) {
      // Nothing known yet: requests fail with the reason, not wait.
      State s;
      s.error = "the Kubernetes API at " + where() + ": " + why;
      update(w, std::move(s));
    } else if (w.failures == 0) {
      std::fprintf(stderr, "switchyard: %s: %s %s/%s: %s; keeping the last state and retrying\n",
                   ctx_.prefix.show().c_str(), kindName(w.kind), w.ns.c_str(), w.name.c_str(), why.c_str());
    }
    std::uint64_t delay = std::min<std::uint64_t>(200ull << std::min(w.failures, 5), 5'000);
    ++w.failures;
    w.retry.start(delay, [this, k] {
      auto it = watches_.find(k);
      if (it == watches_.end()) return;
      Watch& x = *it->second;
      if (x.resourceVersion.empty() || x.relist) {
        list(x, k);
      } else {
        watch(x, k);
      }
    });
  }

  void changed(Watch& w) { update(w, merge(w.objects)); }

  void update(Watch& w, State s) {
    if (s == w.state) return;
    w.state = std::move(s);
    publish();
    if (onChange_) onChange_();
  }

  void publish() {
    Snapshot::States states;
    for (const auto& [k, w] : watches_) states.emplace(k, std::make_shared<const State>(w->state));
    snapshot_ = std::make_shared<Snapshot>(ctx_.prefix, std::move(states), want_);
  }

  Settings settings_;
  namer::NamerContext ctx_;
  runtime::Loop* loop_ = nullptr;
  std::optional<runtime::SocketAddress> addr_;
  std::map<std::string, std::unique_ptr<Watch>> watches_;
  std::shared_ptr<const dtab::Namer> snapshot_;
  std::shared_ptr<const namer::WantFn> want_ =
      std::make_shared<const namer::WantFn>([](const std::string&) {});
  std::function<void()> onChange_;
  std::string token_;
  std::uint64_t tokenReadMs_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The service account's directory: Kubernetes mounts it at one place;
// SWITCHYARD_K8S_SERVICEACCOUNT_DIR moves it (tests, unusual mounts).
std::string serviceAccountDir() {
  const char* dir = std::getenv("SWITCHYARD_K8S_SERVICEACCOUNT_DIR");
  return dir && *dir ? dir : kServiceAccountDir;
}

}  // namespace

router::Plugin k8sNamer() {
  return router::namerPlugin<Settings>(
      "io.l5d.k8s",
      [](runtime::ConfigReader& r) -> std::optional<Settings> {
        Settings s;
        const char* clusterHost = std::getenv("KUBERNETES_SERVICE_HOST");
        bool inCluster = !r.has("host") && clusterHost && *clusterHost;
        if (inCluster) {
          // In a pod with no host configured: the API server itself, over
          // HTTPS, as the pod's service account.
          s.host = clusterHost;
          const char* clusterPort = std::getenv("KUBERNETES_SERVICE_PORT");
          s.port = 443;
          if (clusterPort && *clusterPort) {
            int p = std::atoi(clusterPort);
            if (p > 0 && p <= 65535) s.port = static_cast<std::uint16_t>(p);
          }
          std::string dir = serviceAccountDir();
          auto tls = runtime::TlsClientContext::create(dir + "/ca.crt");
          if (!tls) {
            r.problems().error(r.path(), "in-cluster mode (no host given, KUBERNETES_SERVICE_HOST=" + s.host +
                                             "): " + tls.error() +
                                             "; mount the service account token or give host and port");
          } else {
            s.tls = *tls;
          }
          s.tokenFile = dir + "/token";
          std::ifstream token(s.tokenFile);
          if (!token) {
            r.problems().error(r.path(), "in-cluster mode: cannot read the service account token " + s.tokenFile +
                                             " (automountServiceAccountToken off?)");
          }
        } else {
          std::string host = r.string("host", "localhost");
          s.host = host == "localhost" ? "127.0.0.1" : host;
        }
        if (!runtime::SocketAddress::parse(s.host, 1)) {
          r.problems().error(r.childPath("host"),
                             "expected a numeric address (or localhost), got \"" + s.host +
                                 "\": API server host names are not supported by Switchyard yet");
        }
        s.port = static_cast<std::uint16_t>(r.integer("port", s.port, 1, 65535));
        s.labelSelector = r.string("labelSelector", "");
        s.endpointSlices = r.boolean("useEndpointSlices", false);
        return s;
      },
      [](const Settings& s, const namer::NamerContext& ctx) -> std::unique_ptr<namer::NamerHost> {
        return std::make_unique<K8sHost>(s, ctx);
      });
}

}  // namespace switchyard::plugins
