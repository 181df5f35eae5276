#include "plugins/namers/k8s.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "dtab/system_namers.h"
#include "namer/host_resolver.h"
#include "namer/want.h"
#include "plugins/k8s/api.h"
#include "runtime/http_server.h"
#include "runtime/timer.h"

namespace switchyard::plugins {
namespace {

using dtab::Addr;
using dtab::BoundName;
using dtab::Name;
using dtab::NameTree;
using dtab::Path;
using k8s::member;
using k8s::stringAt;
using nlohmann::json;

// io.l5d.k8s reads the endpoints of Services; io.l5d.k8s.external reads the
// Services themselves, for their load balancers' addresses.
enum class Mode { Endpoints, External };

struct Settings {
  Mode mode = Mode::Endpoints;
  k8s::ApiSettings api;
  // Linkerd's labelSelector: a label key. Names then carry one more
  // segment, the label's value, and only objects labelled key=value count.
  std::string labelKey;
  bool endpointSlices = false;
  std::uint64_t idleMs = 600'000;  // a query nobody asks for is closed after 1-2x this
  // io.l5d.k8s.ns: the environment variable naming the one namespace, which
  // names then leave out (/<port>/<service>). Empty: names carry it.
  std::string namespaceVar;
};

// The kinds of object the namer reads. Endpoints or EndpointSlices give the
// addresses; a Service maps a numbered port to its port's name; for
// io.l5d.k8s.external a Service (External) gives its load balancer's.
enum class Kind { Endpoints, EndpointSlices, Services, External };

const char* kindName(Kind k) {
  switch (k) {
    case Kind::Endpoints:
      return "endpoints";
    case Kind::EndpointSlices:
      return "endpointslices";
    case Kind::Services:
    case Kind::External:
      return "services";
  }
  return "?";
}

// What one object says, parsed once as it arrives (the JSON is not kept).
struct Parsed {
  // Endpoints, EndpointSlice: the ready addresses by port name and number.
  std::map<std::string, std::vector<dtab::Endpoint>> ports;
  // Service: service port number -> that port's name ("" if unnamed).
  std::map<std::string, std::string> targets;
  // External: the load balancer's host names (its IP addresses are in
  // `ports`), and each port key's Service port number.
  std::vector<std::string> hostnames;
  std::map<std::string, std::uint16_t> numbers;
  friend bool operator==(const Parsed&, const Parsed&) = default;
};

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

// fn(key, number) for every key of every well-formed port in `ports` (an
// array of port objects, or anything else, which has none).
template <class Fn>
void eachPortKey(const json* ports, Fn fn) {
  if (!ports || !ports->is_array()) return;
  for (const auto& port : *ports) {
    auto keys = portKeys(port);
    if (!keys) continue;
    for (const auto& key : keys->second) fn(key, keys->first);
  }
}

// core/v1 Endpoints: subsets[] of addresses (ready) and ports.
Parsed parseEndpoints(const json& obj) {
  Parsed p;
  const json* subsets = member(obj, "subsets");
  if (!subsets || !subsets->is_array()) return p;
  for (const auto& subset : *subsets) {
    const json* addresses = member(subset, "addresses");
    eachPortKey(member(subset, "ports"), [&](const std::string& key, std::uint16_t number) {
      auto& list = p.ports[key];  // a port with no ready address is still a port
      if (!addresses || !addresses->is_array()) return;
      for (const auto& a : *addresses) {
        std::string ip = stringAt(a, "ip");
        if (ip.empty()) continue;
        dtab::Endpoint e{ip, number, 1.0, {}};
        std::string node = stringAt(a, "nodeName");
        if (!node.empty()) e.meta["nodeName"] = node;
        list.push_back(std::move(e));
      }
    });
  }
  return p;
}

// discovery.k8s.io/v1 EndpointSlice: endpoints[] (each with addresses and
// conditions) and ports[]. A ready condition that is absent means ready, as
// the API documents; FQDN slices have no addresses to dial.
Parsed parseEndpointSlice(const json& obj) {
  Parsed p;
  if (stringAt(obj, "addressType") == "FQDN") return p;
  const json* endpoints = member(obj, "endpoints");
  eachPortKey(member(obj, "ports"), [&](const std::string& key, std::uint16_t number) {
    auto& list = p.ports[key];
    if (!endpoints || !endpoints->is_array()) return;
    for (const auto& ep : *endpoints) {
      const json* conditions = member(ep, "conditions");
      const json* ready = conditions ? member(*conditions, "ready") : nullptr;
      if (ready && ready->is_boolean() && !ready->get<bool>()) continue;
      const json* addresses = member(ep, "addresses");
      if (!addresses || !addresses->is_array()) continue;
      for (const auto& a : *addresses) {
        if (!a.is_string()) continue;
        dtab::Endpoint e{a.get<std::string>(), number, 1.0, {}};
        std::string node = stringAt(ep, "nodeName");
        if (!node.empty()) e.meta["nodeName"] = node;
        std::string zone = stringAt(ep, "zone");
        if (!zone.empty()) e.meta["zone"] = zone;
        list.push_back(std::move(e));
      }
    }
  });
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

// A host name as DNS has them: letters, digits, '-' and '.', 253 at most.
bool isHostName(const std::string& s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
  });
}

// core/v1 Service, for io.l5d.k8s.external: status.loadBalancer.ingress[]
// (each an ip, or a hostname as on AWS; the ip when both are given) on each
// of spec.ports' port numbers. A Service without a load balancer address
// yet has ports and no addresses.
Parsed parseExternal(const json& obj) {
  Parsed p;
  std::vector<std::string> ips;
  const json* status = member(obj, "status");
  const json* lb = status ? member(*status, "loadBalancer") : nullptr;
  const json* ingress = lb ? member(*lb, "ingress") : nullptr;
  if (ingress && ingress->is_array()) {
    for (const auto& in : *ingress) {
      std::string ip = stringAt(in, "ip");
      std::string host = stringAt(in, "hostname");
      if (!ip.empty() && runtime::SocketAddress::parse(ip, 0)) {
        ips.push_back(ip);
      } else if (isHostName(host)) {
        p.hostnames.push_back(host);
      }
    }
  }
  const json* spec = member(obj, "spec");
  eachPortKey(spec ? member(*spec, "ports") : nullptr, [&](const std::string& key, std::uint16_t number) {
    auto& list = p.ports[key];
    p.numbers[key] = number;
    for (const auto& ip : ips) list.push_back(dtab::Endpoint{ip, number, 1.0, {}});
  });
  return p;
}

Parsed parse(Kind kind, const json& obj) {
  switch (kind) {
    case Kind::Endpoints:
      return parseEndpoints(obj);
    case Kind::EndpointSlices:
      return parseEndpointSlice(obj);
    case Kind::Services:
      return parseService(obj);
    case Kind::External:
      return parseExternal(obj);
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
    for (const auto& [key, number] : p.numbers) s.merged.numbers.emplace(key, number);
    s.merged.hostnames.insert(s.merged.hostnames.end(), p.hostnames.begin(), p.hostnames.end());
  }
  std::sort(s.merged.hostnames.begin(), s.merged.hostnames.end());
  s.merged.hostnames.erase(std::unique(s.merged.hostnames.begin(), s.merged.hostnames.end()),
                           s.merged.hostnames.end());
  for (auto& [key, list] : s.merged.ports) {
    auto less = [](const auto& a, const auto& b) {
      return std::tie(a.ip, a.port) < std::tie(b.ip, b.port);
    };
    auto same = [](const auto& a, const auto& b) { return a.ip == b.ip && a.port == b.port; };
    std::sort(list.begin(), list.end(), less);
    list.erase(std::unique(list.begin(), list.end(), same), list.end());
    // A dual-stack Service has a slice per family, each pod in both: one
    // family only (IPv4), so no pod counts twice. Endpoints objects carry
    // one family anyway.
    auto v6 = [](const dtab::Endpoint& e) { return e.ip.find(':') != std::string::npos; };
    if (std::any_of(list.begin(), list.end(), v6) && !std::all_of(list.begin(), list.end(), v6)) {
      list.erase(std::remove_if(list.begin(), list.end(), v6), list.end());
    }
  }
  return s;
}

// Namespaces and Service names are DNS labels (dtab::isDnsLabel); anything
// else (from a Host header, say) names nothing, and must not reach a
// selector.
using dtab::isDnsLabel;

// The pieces of `s` between `sep`s ("a//b": "a", "", "b").
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at <= s.size();) {
    auto end = std::min(s.find(sep, at), s.size());
    out.push_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool isNumber(const std::string& s) {
  return !s.empty() && s.size() <= 5 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A label value as Kubernetes takes it: up to 63 of letters, digits, '-',
// '_' and '.', beginning and ending with a letter or digit. Nothing else may
// reach a selector (a ',' would add a requirement of the caller's own).
bool isLabelValue(const std::string& s) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (s.empty() || s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

// A label key: an optional DNS subdomain prefix and '/', then a name that
// is a valid label value.
bool isLabelKey(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return isLabelValue(s);
  // The prefix: a DNS subdomain, lower-case labels joined by dots.
  std::string prefix = s.substr(0, slash);
  if (prefix.empty() || prefix.size() > 253) return false;
  auto labels = split(prefix, '.');
  if (!std::all_of(labels.begin(), labels.end(), [](const std::string& l) { return isDnsLabel(l); }))
    return false;
  return isLabelValue(s.substr(slash + 1));
}

// Watch keys: "<a|s>/<namespace>/<service>[/<label value>]", a for the
// addresses (Endpoints, EndpointSlices or, for io.l5d.k8s.external, the
// Service), s for the Service's port map.
std::string addressKey(const std::string& ns, const std::string& svc, const std::string& label) {
  return "a/" + ns + "/" + svc + (label.empty() ? "" : "/" + label);
}
std::string serviceKey(const std::string& ns, const std::string& svc) {
  return "s/" + ns + "/" + svc;
}

// A query's state as a snapshot holds it, and the flag a lookup raises to
// say the query is still asked for (see K8sHost::sweep).
struct Entry {
  std::shared_ptr<const State> state;
  std::shared_ptr<std::atomic<bool>> used;
};

class Snapshot final : public dtab::Namer {
 public:
  using States = std::map<std::string, Entry>;
  // How names look: what the namer reads, whether a label value follows
  // the service, and for io.l5d.k8s.ns the one namespace (or why there is
  // none).
  struct Shape {
    Mode mode = Mode::Endpoints;
    bool labelled = false;
    std::string fixedNamespace;
    std::string namespaceError;
  };
  Snapshot(Path prefix, std::shared_ptr<const Shape> shape, States states,
           std::shared_ptr<const namer::WantFn> want, std::shared_ptr<const dtab::HostTable> hosts)
      : prefix_(std::move(prefix)),
        shape_(std::move(shape)),
        states_(std::move(states)),
        want_(std::move(want)),
        hosts_(std::move(hosts)) {}

  // <namespace>/<port>/<service>, and /<label value> with a labelSelector.
  // <namespace>/<port>/<service> (io.l5d.k8s.ns: <port>/<service>), and
  // /<label value> with a labelSelector. A name without the label value
  // (exactly three elements) is not filtered by the label: that is how the
  // io.l5d.k8s.daemonset transformer looks up the routers' Service.
  dtab::NamerResult lookup(const Path& residual) const override {
    const Shape& shape = *shape_;
    bool fixed = !shape.fixedNamespace.empty() || !shape.namespaceError.empty();
    std::size_t base = fixed ? 2 : 3;
    if (residual.size() < base) return NameTree<Name>::neg();
    std::size_t n = shape.labelled && residual.size() > base ? base + 1 : base;
    if (!shape.namespaceError.empty()) {
      return NameTree<Name>::leaf(BoundName{prefix_ + residual.take(n), residual.drop(n),
                                            Addr::failed(shape.namespaceError)});
    }
    // Kubernetes names are lower case and host names are not case
    // sensitive, so `Host: Web` finds web, as in Linkerd, and binds the same
    // id (one balancer and one set of metrics per service, whatever the
    // case); a label value is case sensitive and kept.
    std::size_t at = fixed ? 0 : 1;
    std::string ns = fixed ? shape.fixedNamespace : lower(residual[0]);
    std::string port = lower(residual[at]);
    std::string svc = lower(residual[at + 1]);
    if (!isDnsLabel(ns) || !isDnsLabel(svc)) return NameTree<Name>::neg();
    std::string label = n > base ? residual[base] : std::string();
    if (n > base && !isLabelValue(label)) return NameTree<Name>::neg();
    Path id = prefix_ + (fixed ? Path{port, svc} : Path{ns, port, svc});
    if (n > base) id = id + Path{label};
    BoundName bound{std::move(id), residual.drop(n), Addr::pending()};
    const State* addresses = find(addressKey(ns, svc, label));
    if (!addresses) return NameTree<Name>::leaf(std::move(bound));
    if (!addresses->known) {
      bound.addr = Addr::failed(addresses->error);
      return NameTree<Name>::leaf(std::move(bound));
    }
    if (addresses->empty) return NameTree<Name>::neg();
    if (shape.mode == Mode::External) return external(*addresses, port, std::move(bound));
    if (isNumber(port)) {
      // A number is the Service's port, as in Linkerd: the endpoints carry
      // it under the Service port's name. Without a Service (or such a port
      // on it) the number is taken as the endpoints' own port.
      const State* service = find(serviceKey(ns, svc));
      if (!service) return NameTree<Name>::leaf(std::move(bound));
      if (!service->known) {
        bound.addr = Addr::failed(service->error);
        return NameTree<Name>::leaf(std::move(bound));
      }
      auto target = service->merged.targets.find(port);
      if (target != service->merged.targets.end()) port = target->second;
    }
    auto it = addresses->merged.ports.find(port);
    if (it == addresses->merged.ports.end()) return NameTree<Name>::neg();
    bound.addr = Addr::bound(it->second);
    return NameTree<Name>::leaf(std::move(bound));
  }

 private:
  // A Service's load balancer on one of its ports (by name, or by the
  // Service port's number): its IP addresses and those its host names
  // resolve to (through the dns block, followed at their TTL), as one bound
  // set under the namer's own id, as Linkerd binds it. Host names not
  // resolved yet make it pending while there is nothing else, or failed if
  // their lookups failed. No such port, or no load balancer address (or
  // only names that do not exist): negative.
  NameTree<Name> external(const State& service, const std::string& port, BoundName bound) const {
    auto it = service.merged.ports.find(port);
    auto number = service.merged.numbers.find(port);
    if (it == service.merged.ports.end() || number == service.merged.numbers.end())
      return NameTree<Name>::neg();
    std::vector<dtab::Endpoint> endpoints = it->second;
    bool pending = false;
    std::string failure;
    for (const auto& host : service.merged.hostnames) {
      if (!hosts_) {
        failure = "no DNS resolver to look up the load balancer's host name " + host;
        continue;
      }
      dtab::HostAnswer a = hosts_->lookup(host);
      switch (a.kind) {
        case dtab::HostAnswer::Kind::Unknown:
          pending = true;
          break;
        case dtab::HostAnswer::Kind::NotFound:
          break;
        case dtab::HostAnswer::Kind::Failed:
          failure = "cannot resolve the load balancer's host name " + host + ": " + a.error;
          break;
        case dtab::HostAnswer::Kind::Addresses:
          for (const auto& ip : a.ips) endpoints.push_back(dtab::Endpoint{ip, number->second, 1.0, {}});
          break;
      }
    }
    if (!endpoints.empty()) {
      auto less = [](const auto& a, const auto& b) { return a.ip < b.ip; };
      auto same = [](const auto& a, const auto& b) { return a.ip == b.ip; };
      std::sort(endpoints.begin(), endpoints.end(), less);
      endpoints.erase(std::unique(endpoints.begin(), endpoints.end(), same), endpoints.end());
      bound.addr = Addr::bound(std::move(endpoints));
    } else if (pending) {
      bound.addr = Addr::pending();
    } else if (!failure.empty()) {
      bound.addr = Addr::failed(failure);
    } else {
      return NameTree<Name>::neg();
    }
    return NameTree<Name>::leaf(std::move(bound));
  }

  // The state of a query, or nullptr (and the owner asked to start it) when
  // it has no answer yet.
  const State* find(const std::string& key) const {
    auto it = states_.find(key);
    if (it == states_.end()) {
      (*want_)(key);
      return nullptr;
    }
    it->second.used->store(true, std::memory_order_relaxed);
    const State& s = *it->second.state;
    return !s.known && s.error.empty() ? nullptr : &s;
  }

  Path prefix_;
  std::shared_ptr<const Shape> shape_;
  States states_;
  std::shared_ptr<const namer::WantFn> want_;
  std::shared_ptr<const dtab::HostTable> hosts_;  // External: the host names' answers
};

class K8sHost final : public namer::NamerHost {
 public:
  K8sHost(Settings settings, namer::NamerContext ctx)
      : settings_(std::move(settings)), ctx_(std::move(ctx)) {
    auto shape = std::make_shared<Snapshot::Shape>();
    shape->mode = settings_.mode;
    shape->labelled = !settings_.labelKey.empty();
    if (!settings_.namespaceVar.empty()) {
      // Read when the namer is made, as Linkerd does: the pod's namespace,
      // from the downward API.
      const char* ns = std::getenv(settings_.namespaceVar.c_str());
      if (ns && !*ns) ns = nullptr;  // set but empty: as good as unset
      std::string name = ns ? lower(ns) : std::string();
      if (isDnsLabel(name)) {
        shape->fixedNamespace = name;
      } else {
        shape->namespaceError =
            ns ? "$" + settings_.namespaceVar + " is not a namespace name: \"" + std::string(ns) + "\""
               : "$" + settings_.namespaceVar +
                     " is not set: give it the pod's namespace (the downward API's metadata.namespace)";
        std::fprintf(stderr, "switchyard: %s: %s\n", ctx_.prefix.show().c_str(),
                     shape->namespaceError.c_str());
      }
    }
    shape_ = std::move(shape);
    snapshot_ = std::make_shared<Snapshot>(
        ctx_.prefix, shape_, Snapshot::States{},
        std::make_shared<const namer::WantFn>([](const std::string&) {}), nullptr);
  }
  ~K8sHost() override {
    *alive_ = false;
    watches_.clear();
  }

  void start(runtime::Loop& loop, std::function<void()> onChange) override {
    onChange_ = std::move(onChange);
    api_ = std::make_unique<k8s::ApiClient>(loop, settings_.api, ctx_.dns);
    if (settings_.mode == Mode::External) {
      // Load balancers given by host name (AWS) are looked up as /$/inet's
      // host names are, but bound under this namer's id.
      auto hosts = namer::HostResolver::create(loop, ctx_.dns);
      if (hosts) {
        hosts_ = std::move(*hosts);
        hosts_->start([this] {
          publish();
          if (onChange_) onChange_();
        });
      } else {
        std::fprintf(stderr, "switchyard: %s: no DNS resolver (%s): load balancers given by host name will fail\n",
                     ctx_.prefix.show().c_str(), hosts.error().c_str());
      }
    }
    sweep_ = std::make_unique<runtime::Timer>(loop);
    sweep_->start(
        settings_.idleMs, [this] { sweep(); }, settings_.idleMs);
    want_ = namer::makeWant(loop, alive_, [this](const std::string& key) {
      if (watches_.count(key)) return;
      // "<a|s>/<namespace>/<service>[/<label value>]" (see addressKey)
      std::vector<std::string> parts = split(key, '/');
      Kind kind = parts[0] == "s"                  ? Kind::Services
                  : settings_.mode == Mode::External ? Kind::External
                  : settings_.endpointSlices         ? Kind::EndpointSlices
                                                     : Kind::Endpoints;
      auto w = std::make_unique<Watch>(kind, parts[1], parts[2], parts.size() > 3 ? parts[3] : "");
      Watch& ref = *w;
      bool full = watches_.size() >= kMaxWatches;
      watches_.emplace(key, std::move(w));
      if (full) {
        // Past the budget the query is not followed but fails, saying why,
        // until a sweep has made room (it is closed like any unused one).
        State s;
        s.error = "the " + ctx_.prefix.show() + " namer follows at most " + std::to_string(kMaxWatches) +
                  " queries (names of services and ports); this one waits for room";
        update(ref, std::move(s));
        return;
      }
      follow(ref);
    });
    publish();
    onChange_();
  }

  std::shared_ptr<const dtab::Namer> current() const override { return snapshot_; }

  std::vector<namer::NamerStat> stats() const override {
    double failing = 0;
    for (const auto& [k, w] : watches_) failing += w->failing ? 1 : 0;
    return {
        {"watches", false,
         "Kubernetes queries followed now (a service's endpoints, or its Service)",
         static_cast<double>(watches_.size())},
        {"watches_failing", false,
         "Followed queries whose last list or watch failed: serving their last state", failing},
        {"lists", true, "Lists answered by the Kubernetes API", static_cast<double>(lists_)},
        {"events", true, "Watch events that changed what a query holds",
         static_cast<double>(events_)},
        {"failures", true, "Lists and watches that failed (each retried after a backoff)",
         static_cast<double>(failures_)},
        {"idle_closed", true, "Queries closed because nobody asked for them",
         static_cast<double>(idleClosed_)},
    };
  }

 private:
  static constexpr std::size_t kMaxWatches = 20'000;

  // The objects of one kind that make up one service (one Endpoints, its
  // EndpointSlices, or its Service), as the API last described them.
  struct Watch {
    Watch(Kind k, std::string n, std::string s, std::string l)
        : kind(k), ns(std::move(n)), name(std::move(s)), label(std::move(l)) {}
    Kind kind;
    std::string ns, name;
    std::string label;  // the labelSelector key's value to match, or ""
    std::map<std::string, Parsed> objects;                                 // by metadata.name
    std::shared_ptr<const State> state = std::make_shared<const State>();  // shared with snapshots
    std::shared_ptr<std::atomic<bool>> used = std::make_shared<std::atomic<bool>>(true);
    bool failing = false;  // the last list or watch failed, and none has lasted since
    std::unique_ptr<k8s::ListWatch> listWatch;
  };

  // Queries nobody looked up since the last sweep are closed; the others
  // are marked unused again. Workers look names up only when a naming
  // generation changes, so a new snapshot is published after each sweep:
  // every name still in use is looked up again (and so marked) before the
  // next one. A closed query is listed afresh if it is asked for again.
  void sweep() {
    std::size_t closed = 0;
    for (auto it = watches_.begin(); it != watches_.end();) {
      if (!it->second->used->exchange(false)) {
        it = watches_.erase(it);  // its ListWatch goes with it: no callback after this
        ++closed;
        ++idleClosed_;
      } else {
        ++it;
      }
    }
    if (closed > 0) {
      std::fprintf(stderr,
                   "switchyard: %s: closed %zu watch(es) nobody asked for in %llu s; %zu open\n",
                   ctx_.prefix.show().c_str(), closed,
                   static_cast<unsigned long long>(settings_.idleMs / 1000), watches_.size());
    }
    publish();
    if (onChange_) onChange_();
  }

  std::string collection(const Watch& w) const {
    std::string ns = runtime::percentEncode(w.ns);
    if (w.kind == Kind::EndpointSlices)
      return "/apis/discovery.k8s.io/v1/namespaces/" + ns + "/endpointslices";
    return "/api/v1/namespaces/" + ns + "/" + kindName(w.kind);
  }

  // A service's slices carry its name in a label; one object is chosen by
  // its name. With a labelSelector key, the object must also carry that
  // label with the name's value (the endpoints controller copies a
  // Service's labels onto its Endpoints and EndpointSlices).
  std::string query(const Watch& w) const {
    std::string labels = w.label.empty() ? std::string() : settings_.labelKey + "=" + w.label;
    std::string q;
    if (w.kind == Kind::EndpointSlices) {
      labels = "kubernetes.io/service-name=" + w.name + (labels.empty() ? "" : "," + labels);
    } else {
      q = "fieldSelector=" + runtime::percentEncode("metadata.name=" + w.name);
    }
    if (!labels.empty())
      q += (q.empty() ? "" : "&") + std::string("labelSelector=") + runtime::percentEncode(labels);
    return q;
  }

  void follow(Watch& w) {
    k8s::ListWatch::Handler h;
    Watch* wp = &w;  // its ListWatch, which holds these, dies with it
    h.onList = [this, wp](const json& items, const std::string&) {
      ++lists_;
      wp->objects.clear();
      for (const auto& obj : items) {
        const json* m = member(obj, "metadata");
        std::string name = m ? stringAt(*m, "name") : std::string();
        if (!name.empty()) wp->objects[name] = parse(wp->kind, obj);
      }
      update(*wp, merge(wp->objects));
    };
    h.onEvent = [this, wp](const std::string& type, const json& obj) {
      const json* m = member(obj, "metadata");
      if (!m) return;
      std::string name = stringAt(*m, "name");
      if (name.empty()) return;  // not an object the API would send
      if (type == "DELETED") {
        wp->objects.erase(name);
      } else {
        wp->objects[name] = parse(wp->kind, obj);
      }
      if (update(*wp, merge(wp->objects))) ++events_;
    };
    h.onFailure = [this, wp](const std::string& why, bool first) {
      ++failures_;
      wp->failing = true;
      if (!wp->state->known) {
        // Nothing known yet: requests fail with the reason, not wait.
        State s;
        s.error = "the Kubernetes API at " + api_->where() + ": " + why;
        update(*wp, std::move(s));
      } else if (first) {
        std::fprintf(stderr, "switchyard: %s: %s %s/%s: %s; keeping the last state and retrying\n",
                     ctx_.prefix.show().c_str(), kindName(wp->kind), wp->ns.c_str(),
                     wp->name.c_str(), why.c_str());
      }
    };
    h.onRecovered = [this, wp] {
      wp->failing = false;
      std::fprintf(stderr, "switchyard: %s: %s %s/%s: watching again\n", ctx_.prefix.show().c_str(),
                   kindName(wp->kind), wp->ns.c_str(), wp->name.c_str());
    };
    w.listWatch = std::make_unique<k8s::ListWatch>(*api_, collection(w), query(w), std::move(h));
    w.listWatch->start();
  }

  // False if nothing changed.
  bool update(Watch& w, State s) {
    if (s == *w.state) return false;
    w.state = std::make_shared<const State>(std::move(s));
    publish();
    if (onChange_) onChange_();
    return true;
  }

  void publish() {
    Snapshot::States states;
    for (const auto& [k, w] : watches_) states.emplace(k, Entry{w->state, w->used});
    snapshot_ = std::make_shared<Snapshot>(ctx_.prefix, shape_, std::move(states), want_,
                                           hosts_ ? hosts_->current() : nullptr);
  }

  Settings settings_;
  namer::NamerContext ctx_;
  std::unique_ptr<k8s::ApiClient> api_;
  std::unique_ptr<runtime::Timer> sweep_;
  std::shared_ptr<const Snapshot::Shape> shape_;
  std::map<std::string, std::unique_ptr<Watch>> watches_;
  std::shared_ptr<const dtab::Namer> snapshot_;
  std::shared_ptr<const namer::WantFn> want_ =
      std::make_shared<const namer::WantFn>([](const std::string&) {});
  std::function<void()> onChange_;
  std::uint64_t lists_ = 0, events_ = 0, failures_ = 0, idleClosed_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // Last, so it goes first: its callback uses the members above.
  std::unique_ptr<namer::HostResolver> hosts_;
};

// The settings both kinds read: Linkerd's host, port and labelSelector, and
// Switchyard's idleWatchSecs.
Settings readSettings(runtime::ConfigReader& r, Mode mode) {
  Settings s;
  s.mode = mode;
  s.api = k8s::ApiSettings::read(r);
  s.labelKey = r.string("labelSelector", "");
  if (!s.labelKey.empty() && !isLabelKey(s.labelKey)) {
    r.error("labelSelector: \"" + s.labelKey +
            "\" is not a label key; as in Linkerd it names one label (\"version\", "
            "\"example.com/track\"), and each name gives the value after the service: "
            "/#/<prefix>/<namespace>/<port>/<service>/<value>");
  }
  s.idleMs = static_cast<std::uint64_t>(r.integer("idleWatchSecs", 600, 1, 86'400)) * 1000;
  return s;
}

// The three kinds are one host: what they read (`mode`), and whether the
// namespace comes from the environment rather than the name.
router::Plugin k8sPlugin(std::string kind, Mode mode, bool namespaced = false) {
  return router::namerPlugin<Settings>(
      std::move(kind),
      [mode, namespaced](runtime::ConfigReader& r) -> std::optional<Settings> {
        Settings s = readSettings(r, mode);
        if (mode == Mode::Endpoints) s.endpointSlices = r.boolean("useEndpointSlices", false);
        if (namespaced) {
          s.namespaceVar = r.string("envVar", "POD_NAMESPACE");
          if (s.namespaceVar.empty()) r.error("envVar: empty; it names the variable that holds the namespace");
        }
        return s;
      },
      [](const Settings& s, const namer::NamerContext& ctx) -> std::unique_ptr<namer::NamerHost> {
        return std::make_unique<K8sHost>(s, ctx);
      });
}

}  // namespace

router::Plugin k8sNamer() { return k8sPlugin("io.l5d.k8s", Mode::Endpoints); }

router::Plugin k8sNamespacedNamer() { return k8sPlugin("io.l5d.k8s.ns", Mode::Endpoints, true); }

router::Plugin k8sExternalNamer() { return k8sPlugin("io.l5d.k8s.external", Mode::External); }

}  // namespace switchyard::plugins
