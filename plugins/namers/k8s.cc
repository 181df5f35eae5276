#include "plugins/namers/k8s.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "namer/want.h"
#include "runtime/http_client.h"
#include "runtime/http_server.h"
#include "runtime/timer.h"

namespace switchyard::plugins {
namespace {

using dtab::Addr;
using dtab::BoundName;
using dtab::Name;
using dtab::NameTree;
using dtab::Path;
using nlohmann::json;

struct Settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8001;
  std::string labelSelector;
};

// One service as the API last described it: absent, or its endpoints by
// port name (and by port number).
struct Service {
  bool known = false;     // listed at least once
  bool notFound = false;  // the API says there is no such Endpoints object
  std::string error;      // never listed, and the last try failed: why
  std::map<std::string, std::vector<dtab::Endpoint>> ports;
  friend bool operator==(const Service&, const Service&) = default;
};

// The ready addresses of an Endpoints object, per port name and number.
Service parseEndpoints(const json& obj) {
  Service s;
  s.known = true;
  if (!obj.is_object() || !obj.contains("subsets") || !obj["subsets"].is_array()) return s;
  for (const auto& subset : obj["subsets"]) {
    if (!subset.is_object() || !subset.contains("ports") || !subset["ports"].is_array()) continue;
    for (const auto& port : subset["ports"]) {
      if (!port.is_object() || !port.contains("port") || !port["port"].is_number_integer()) continue;
      auto number = port["port"].get<std::int64_t>();
      if (number <= 0 || number > 65535) continue;
      std::vector<std::string> keys{std::to_string(number)};
      if (port.contains("name") && port["name"].is_string() && !port["name"].get<std::string>().empty()) {
        keys.push_back(port["name"].get<std::string>());
      }
      for (const auto& key : keys) {
        auto& list = s.ports[key];  // a port with no ready address is still a port
        if (!subset.contains("addresses") || !subset["addresses"].is_array()) continue;
        for (const auto& a : subset["addresses"]) {
          if (!a.is_object() || !a.contains("ip") || !a["ip"].is_string()) continue;
          dtab::Endpoint e{a["ip"].get<std::string>(), static_cast<std::uint16_t>(number), 1.0, {}};
          if (a.contains("nodeName") && a["nodeName"].is_string()) e.meta["nodeName"] = a["nodeName"].get<std::string>();
          list.push_back(std::move(e));
        }
      }
    }
  }
  for (auto& [key, list] : s.ports) {
    std::sort(list.begin(), list.end(),
              [](const auto& a, const auto& b) { return std::tie(a.ip, a.port) < std::tie(b.ip, b.port); });
  }
  return s;
}

class Snapshot final : public dtab::Namer {
 public:
  Snapshot(Path prefix, std::map<std::string, Service> services, std::shared_ptr<const namer::WantFn> want)
      : prefix_(std::move(prefix)), services_(std::move(services)), want_(std::move(want)) {}

  dtab::NamerResult lookup(const Path& residual) const override {
    if (residual.size() < 3) return NameTree<Name>::neg();
    std::string key = residual[0] + "/" + residual[2];
    BoundName bound{prefix_ + residual.take(3), residual.drop(3), Addr::pending()};
    auto it = services_.find(key);
    if (it == services_.end() || (!it->second.known && it->second.error.empty())) {
      (*want_)(key);
      return NameTree<Name>::leaf(std::move(bound));
    }
    const Service& s = it->second;
    if (!s.known) {
      bound.addr = Addr::failed(s.error);
      return NameTree<Name>::leaf(std::move(bound));
    }
    if (s.notFound) return NameTree<Name>::neg();
    auto port = s.ports.find(residual[1]);
    if (port == s.ports.end()) return NameTree<Name>::neg();
    bound.addr = Addr::bound(port->second);
    return NameTree<Name>::leaf(std::move(bound));
  }

 private:
  Path prefix_;
  std::map<std::string, Service> services_;
  std::shared_ptr<const namer::WantFn> want_;
};

class K8sHost final : public namer::NamerHost {
 public:
  K8sHost(Settings settings, namer::NamerContext ctx) : settings_(std::move(settings)), ctx_(std::move(ctx)) {
    snapshot_ = std::make_shared<Snapshot>(ctx_.prefix, std::map<std::string, Service>{},
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
      if (watches_.count(key) || watches_.size() >= kMaxServices) return;
      auto slash = key.find('/');
      auto w = std::make_unique<Watch>(*loop_);
      w->ns = key.substr(0, slash);
      w->name = key.substr(slash + 1);
      Watch& ref = *w;
      watches_.emplace(key, std::move(w));
      list(ref);
    });
    publish();
    onChange_();
  }

  std::shared_ptr<const dtab::Namer> current() const override { return snapshot_; }

 private:
  static constexpr std::size_t kMaxServices = 10'000;

  struct Watch {
    explicit Watch(runtime::Loop& loop) : retry(loop) {}
    std::string ns, name;
    Service service;
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

  std::string key(const Watch& w) const { return w.ns + "/" + w.name; }

  std::string authority() const {
    bool v6 = settings_.host.find(':') != std::string::npos;
    return (v6 ? "[" + settings_.host + "]" : settings_.host) + ":" + std::to_string(settings_.port);
  }

  // The watch a callback belongs to, unless it was dropped since.
  Watch* find(const std::string& k, std::uint64_t gen) {
    auto it = watches_.find(k);
    return it != watches_.end() && it->second->gen == gen ? it->second.get() : nullptr;
  }

  std::string query(const Watch& w) const {
    std::string q = "fieldSelector=" + runtime::percentEncode("metadata.name=" + w.name);
    if (!settings_.labelSelector.empty()) q += "&labelSelector=" + runtime::percentEncode(settings_.labelSelector);
    return q;
  }

  void drop(Watch& w) {
    ++w.gen;
    if (!w.call) return;
    std::shared_ptr<runtime::HttpCall> old(std::move(w.call));
    loop_->defer([old] {});
  }

  // The service's current state and the resourceVersion to watch from.
  void list(Watch& w) {
    drop(w);
    runtime::HttpCall::Request req;
    req.target = "/api/v1/namespaces/" + runtime::percentEncode(w.ns) + "/endpoints?" + query(w);
    req.host = authority();
    req.headers.add("Accept", "application/json");
    req.timeoutMs = 10'000;
    w.call = runtime::fetch(*loop_, *addr_, std::move(req),
                            [this, alive = alive_, k = key(w), gen = w.gen](Expected<runtime::HttpResult, std::string> r) {
                              if (!*alive) return;
                              Watch* wp = find(k, gen);
                              if (!wp) return;
                              Watch& cur = *wp;
                              drop(cur);
                              if (!r) return failed(cur, r.error());
                              if (r->status != 200) {
                                return failed(cur, "listing endpoints answered " + std::to_string(r->status));
                              }
                              auto j = json::parse(r->body, nullptr, false);
                              if (!j.is_object() || !j.contains("items") ||
                                  !(j["items"].is_array() || j["items"].is_null())) {
                                return failed(cur, "the endpoints list is not an EndpointsList");
                              }
                              cur.resourceVersion = j.contains("metadata") && j["metadata"].contains("resourceVersion") &&
                                                          j["metadata"]["resourceVersion"].is_string()
                                                      ? j["metadata"]["resourceVersion"].get<std::string>()
                                                      : std::string();
                              Service s;
                              s.known = true;
                              s.notFound = true;
                              if (j["items"].is_array() && !j["items"].empty()) s = parseEndpoints(j["items"][0]);
                              update(cur, std::move(s));
                              cur.relist = false;
                              watch(cur);
                            });
  }

  // Every change after resourceVersion, as newline-delimited events.
  void watch(Watch& w) {
    drop(w);
    runtime::HttpCall::Request req;
    // The server ends the watch after timeoutSeconds and it is reopened; a
    // connection that went silent (half-open) is given up a little later.
    req.target = "/api/v1/namespaces/" + runtime::percentEncode(w.ns) + "/endpoints?" + query(w) +
                 "&watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" +
                 runtime::percentEncode(w.resourceVersion);
    req.host = authority();
    req.headers.add("Accept", "application/json");
    req.timeoutMs = 330'000;
    w.watchStartMs = loop_->nowMs();
    runtime::HttpCall::Handler h;
    std::string k = key(w);
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
          std::fprintf(stderr, "switchyard: %s: %s/%s: watching again\n", ctx_.prefix.show().c_str(), wp->ns.c_str(),
                       wp->name.c_str());
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
        onEvent(cur, line);
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
      if (cur.relist) return failed(cur, "the watch's resourceVersion is too old (410): listing again");
      if (error) return failed(cur, *error);
      if (cur.status != 200) return failed(cur, "watching endpoints answered " + std::to_string(cur.status));
      // The server ends watches now and then: carry on from where it was,
      // at once unless it ended at once (then as after a failure).
      if (loop_->nowMs() - cur.watchStartMs < 1'000) return failed(cur, "the watch ended as soon as it began");
      watch(cur);
    };
    w.call = runtime::HttpCall::start(*loop_, *addr_, std::move(req), std::move(h), 2'000);
  }

  void onEvent(Watch& w, const std::string& line) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return;
    std::string type = j["type"].get<std::string>();
    const json& obj = j.contains("object") ? j["object"] : json::object();
    if (type == "ERROR") {
      // 410: the resourceVersion is too old; anything else: start over too,
      // after the usual backoff (an API that keeps saying so is not hammered).
      w.relist = true;
      drop(w);
      std::string why = obj.contains("message") && obj["message"].is_string() ? obj["message"].get<std::string>()
                                                                               : std::string("an ERROR event");
      loop_->defer([this, alive = alive_, k = key(w), why] {
        auto it = watches_.find(k);
        if (*alive && it != watches_.end()) failed(*it->second, "the watch said: " + why + "; listing again");
      });
      return;
    }
    if (obj.contains("metadata") && obj["metadata"].contains("resourceVersion") &&
        obj["metadata"]["resourceVersion"].is_string()) {
      w.resourceVersion = obj["metadata"]["resourceVersion"].get<std::string>();
    }
    if (type == "BOOKMARK") return;
    if (type == "DELETED") {
      Service s;
      s.known = true;
      s.notFound = true;
      update(w, std::move(s));
    } else if (type == "ADDED" || type == "MODIFIED") {
      update(w, parseEndpoints(obj));
    }
  }

  void failed(Watch& w, const std::string& why) {
    if (!w.service.known) {
      // Nothing known yet: requests fail with the reason, not wait.
      Service s;
      s.error = "the Kubernetes API at " + settings_.host + ":" + std::to_string(settings_.port) + ": " + why;
      update(w, std::move(s));
    } else if (w.failures == 0) {
      std::fprintf(stderr, "switchyard: %s: %s/%s: %s; keeping the last endpoints and retrying\n",
                   ctx_.prefix.show().c_str(), w.ns.c_str(), w.name.c_str(), why.c_str());
    }
    std::uint64_t delay = std::min<std::uint64_t>(200ull << std::min(w.failures, 5), 5'000);
    ++w.failures;
    w.retry.start(delay, [this, k = key(w)] {
      auto it = watches_.find(k);
      if (it == watches_.end()) return;
      Watch& x = *it->second;
      if (x.resourceVersion.empty() || x.relist) {
        list(x);
      } else {
        watch(x);
      }
    });
  }

  void update(Watch& w, Service s) {
    if (s == w.service) return;
    w.service = std::move(s);
    publish();
    if (onChange_) onChange_();
  }

  void publish() {
    std::map<std::string, Service> services;
    for (const auto& [k, w] : watches_) services.emplace(k, w->service);
    snapshot_ = std::make_shared<Snapshot>(ctx_.prefix, std::move(services), want_);
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
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

router::Plugin k8sNamer() {
  return router::namerPlugin<Settings>(
      "io.l5d.k8s",
      [](runtime::ConfigReader& r) -> std::optional<Settings> {
        Settings s;
        std::string host = r.string("host", "localhost");
        s.host = host == "localhost" ? "127.0.0.1" : host;
        if (!runtime::SocketAddress::parse(s.host, 1)) {
          r.problems().error(r.childPath("host"),
                             "expected a numeric address (or localhost), got \"" + host +
                                 "\": API server host names are not supported by Switchyard yet");
        }
        s.port = static_cast<std::uint16_t>(r.integer("port", s.port, 1, 65535));
        s.labelSelector = r.string("labelSelector", "");
        return s;
      },
      [](const Settings& s, const namer::NamerContext& ctx) -> std::unique_ptr<namer::NamerHost> {
        return std::make_unique<K8sHost>(s, ctx);
      });
}

}  // namespace switchyard::plugins
