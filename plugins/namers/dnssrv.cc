#include "plugins/namers/dnssrv.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>

#include "namer/dns_settings.h"
#include "namer/want.h"
#include "runtime/dns_resolver.h"
#include "runtime/timer.h"

namespace switchyard::plugins {
namespace {

using dtab::Addr;
using dtab::BoundName;
using dtab::Name;
using dtab::NameTree;
using dtab::Path;
using runtime::DnsResolver;

struct Settings {
  std::int64_t refreshIntervalSeconds = 5;
  std::vector<std::string> dnsHosts;
};

// What is known of one record: nothing yet (absent), its Addr, or that it
// does not exist.
struct Record {
  bool notFound = false;
  Addr addr = Addr::pending();
};

class Snapshot final : public dtab::Namer {
 public:
  Snapshot(Path prefix, std::map<std::string, Record> records, std::shared_ptr<const namer::WantFn> want)
      : prefix_(std::move(prefix)), records_(std::move(records)), want_(std::move(want)) {}

  dtab::NamerResult lookup(const Path& residual) const override {
    if (residual.empty()) return NameTree<Name>::neg();
    const std::string& name = residual[0];
    auto it = records_.find(name);
    if (it == records_.end()) {
      (*want_)(name);
      return NameTree<Name>::leaf(BoundName{prefix_ + residual.take(1), residual.drop(1), Addr::pending()});
    }
    if (it->second.notFound) return NameTree<Name>::neg();
    return NameTree<Name>::leaf(BoundName{prefix_ + residual.take(1), residual.drop(1), it->second.addr});
  }

 private:
  Path prefix_;
  std::map<std::string, Record> records_;
  std::shared_ptr<const namer::WantFn> want_;
};

class DnsSrvHost final : public namer::NamerHost {
 public:
  DnsSrvHost(Settings settings, namer::NamerContext ctx) : settings_(std::move(settings)), ctx_(std::move(ctx)) {
    snapshot_ = std::make_shared<Snapshot>(ctx_.prefix, std::map<std::string, Record>{},
                                           std::make_shared<const namer::WantFn>([](const std::string&) {}));
  }
  ~DnsSrvHost() override { *alive_ = false; }

  void start(runtime::Loop& loop, std::function<void()> onChange) override {
    loop_ = &loop;
    onChange_ = std::move(onChange);
    namer::DnsSettings dnsSettings = ctx_.dns;
    if (!settings_.dnsHosts.empty()) dnsSettings.servers = settings_.dnsHosts;
    auto dns = namer::makeDnsResolver(loop, dnsSettings);
    if (!dns) {
      std::fprintf(stderr, "switchyard: %s: no DNS resolver: %s\n", ctx_.prefix.show().c_str(), dns.error().c_str());
      return;
    }
    dns_ = std::move(*dns);
    want_ = namer::makeWant(loop, alive_, [this](const std::string& name) {
      if (entries_.count(name) || entries_.size() >= kMaxRecords) return;
      entries_[name];
      resolve(name);
    });
    sweep_ = std::make_unique<runtime::Timer>(loop);
    sweep_->start(1000, [this] {
      std::uint64_t now = loop_->nowMs();
      for (auto& [name, e] : entries_) {
        if (!e.inFlight && now >= e.refreshAtMs) resolve(name);
      }
    }, 1000);
    // The snapshot handed out before start() could not ask for anything.
    publish();
    onChange_();
  }

  std::shared_ptr<const dtab::Namer> current() const override { return snapshot_; }

 private:
  static constexpr std::size_t kMaxRecords = 10'000;

  struct Entry {
    Record record;
    bool known = false;
    bool inFlight = false;
    std::uint64_t refreshAtMs = 0;
  };

  // Looks the record up, then every target's addresses; answers once all
  // are in.
  void resolve(const std::string& name) {
    entries_[name].inFlight = true;
    dns_->resolveSrv(name, [this, name](DnsResolver::SrvResult srv) {
      if (srv.status != DnsResolver::Status::Ok) {
        finish(name, srv.status, {}, srv.ttlSecs, srv.error);
        return;
      }
      // Only the lowest priority value serves; the others are backups.
      std::uint16_t best = srv.targets.front().priority;
      for (const auto& t : srv.targets) best = std::min(best, t.priority);
      std::vector<DnsResolver::SrvTarget> targets;
      for (const auto& t : srv.targets) {
        if (t.priority == best) targets.push_back(t);
      }
      struct Gather {
        std::size_t left;
        std::vector<dtab::Endpoint> endpoints;
        std::string errors;
      };
      auto g = std::make_shared<Gather>(Gather{targets.size(), {}, {}});
      std::uint32_t ttl = srv.ttlSecs;
      for (const auto& t : targets) {
        dns_->resolveHost(t.host, [this, name, t, g, ttl](DnsResolver::HostResult h) {
          if (h.status == DnsResolver::Status::Ok) {
            // A target's weight is shared by its addresses; a weight of 0
            // still serves, least of all (RFC 2782).
            double weight = (t.weight == 0 ? 0.1 : static_cast<double>(t.weight)) /
                            static_cast<double>(h.addresses.size());
            for (const auto& ip : h.addresses) g->endpoints.push_back({ip, t.port, weight, {}});
          } else {
            g->errors += (g->errors.empty() ? "" : "; ") + t.host + ": " + h.error;
          }
          if (--g->left > 0) return;
          if (g->endpoints.empty()) {
            finish(name, DnsResolver::Status::Failed, {}, ttl, "no target resolved (" + g->errors + ")");
          } else {
            finish(name, DnsResolver::Status::Ok, std::move(g->endpoints), ttl, {});
          }
        });
      }
    });
  }

  void finish(const std::string& name, DnsResolver::Status status, std::vector<dtab::Endpoint> endpoints,
              std::uint32_t ttlSecs, const std::string& error) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    e.inFlight = false;
    auto interval = static_cast<std::uint64_t>(settings_.refreshIntervalSeconds);
    std::uint64_t secs = std::max<std::uint64_t>(1, ttlSecs > 0 ? std::min<std::uint64_t>(ttlSecs, interval) : interval);
    e.refreshAtMs = loop_->nowMs() + secs * 1000;
    Record next = e.record;
    if (status == DnsResolver::Status::Ok) {
      std::sort(endpoints.begin(), endpoints.end(),
                [](const auto& a, const auto& b) { return std::tie(a.ip, a.port) < std::tie(b.ip, b.port); });
      next = {false, Addr::bound(std::move(endpoints))};
    } else if (status == DnsResolver::Status::NotFound) {
      next = {true, Addr::neg()};
    } else if (!e.known || e.record.notFound || e.record.addr.kind != Addr::Kind::Bound) {
      next = {false, Addr::failed("SRV lookup of " + name + " failed: " + error)};
    }  // else: keep the last good addresses
    bool changed = !e.known || next.notFound != e.record.notFound || !(next.addr == e.record.addr);
    e.known = true;
    e.record = std::move(next);
    if (!changed) return;
    publish();
    if (onChange_) onChange_();
  }

  void publish() {
    std::map<std::string, Record> records;
    for (const auto& [name, e] : entries_) {
      if (e.known) records.emplace(name, e.record);
    }
    snapshot_ = std::make_shared<Snapshot>(ctx_.prefix, std::move(records), want_);
  }

  Settings settings_;
  namer::NamerContext ctx_;
  runtime::Loop* loop_ = nullptr;
  std::unique_ptr<DnsResolver> dns_;
  std::map<std::string, Entry> entries_;
  std::shared_ptr<const dtab::Namer> snapshot_;
  std::shared_ptr<const namer::WantFn> want_;
  std::function<void()> onChange_;
  std::unique_ptr<runtime::Timer> sweep_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

router::Plugin dnsSrvNamer() {
  return router::namerPlugin<Settings>(
      "io.l5d.dnssrv",
      [](runtime::ConfigReader& r) {
        Settings s;
        s.refreshIntervalSeconds = r.integer("refreshIntervalSeconds", s.refreshIntervalSeconds, 1, 86'400);
        for (auto& h : r.list("dnsHosts")) {
          std::string text = h.node().isScalar() ? h.node().text() : "";
          if (!namer::isDnsServerAddress(text)) {
            h.problems().error(h.path(), "\"" + text + "\" is not a DNS server address: expected a numeric \"ip\" "
                                         "or \"ip:port\" (this resolver does not look up its own servers by name)");
            continue;
          }
          s.dnsHosts.push_back(text);
        }
        return std::optional<Settings>(s);
      },
      [](const Settings& s, const namer::NamerContext& ctx) { return std::make_unique<DnsSrvHost>(s, ctx); });
}

}  // namespace switchyard::plugins
