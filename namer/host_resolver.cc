#include "namer/host_resolver.h"

#include <algorithm>

namespace switchyard::namer {

// An immutable table; a miss posts the name to the main loop (deduplicated
// there) and answers Unknown.
class HostResolver::Snapshot final : public dtab::HostTable {
 public:
  Snapshot(std::map<std::string, dtab::HostAnswer> answers, std::shared_ptr<const WantFn> want)
      : answers_(std::move(answers)), want_(std::move(want)) {}

  dtab::HostAnswer lookup(const std::string& host) const override {
    auto it = answers_.find(host);
    if (it != answers_.end()) return it->second;
    (*want_)(host);
    return {};
  }

 private:
  std::map<std::string, dtab::HostAnswer> answers_;
  std::shared_ptr<const WantFn> want_;
};

HostResolver::HostResolver(runtime::Loop& loop, const DnsSettings& settings)
    : loop_(loop), settings_(settings), sweep_(loop) {}

Expected<std::unique_ptr<HostResolver>, std::string> HostResolver::create(runtime::Loop& loop,
                                                                         const DnsSettings& settings) {
  auto dns = makeDnsResolver(loop, settings);
  if (!dns) return Unexpected(dns.error());
  std::unique_ptr<HostResolver> r(new HostResolver(loop, settings));
  r->dns_ = std::move(*dns);
  r->publish();
  return r;
}

HostResolver::~HostResolver() { *alive_ = false; }

void HostResolver::start(std::function<void()> onChange) {
  onChange_ = std::move(onChange);
  sweep_.start(1000, [this] {
    std::uint64_t now = loop_.nowMs();
    bool forgot = false;
    for (auto it = entries_.begin(); it != entries_.end();) {
      Entry& e = it->second;
      if (e.inFlight || now < e.refreshAtMs) {
        ++it;
      } else if (e.answer.kind == dtab::HostAnswer::Kind::Addresses) {
        resolve((it++)->first);
      } else {
        // A name without addresses is forgotten rather than asked again
        // forever: if a request still wants it, its lookup asks anew.
        it = entries_.erase(it);
        forgot = true;
      }
    }
    if (forgot) {
      publish();
      if (onChange_) onChange_();
    }
  }, 1000);
}

std::shared_ptr<const dtab::HostTable> HostResolver::current() const { return snapshot_; }

void HostResolver::publish() {
  std::map<std::string, dtab::HostAnswer> answers;
  for (const auto& [host, e] : entries_) {
    if (e.answer.kind != dtab::HostAnswer::Kind::Unknown) answers.emplace(host, e.answer);
  }
  if (!want_) want_ = makeWant(loop_, alive_, [this](const std::string& host) { want(host); });
  snapshot_ = std::make_shared<const Snapshot>(std::move(answers), want_);
}

void HostResolver::want(const std::string& host) {
  if (entries_.count(host) || entries_.size() >= kMaxHosts) return;
  entries_[host];
  resolve(host);
}

void HostResolver::resolve(const std::string& host) {
  entries_[host].inFlight = true;
  ++lookups_;
  dns_->resolveHost(host, [this, host](runtime::DnsResolver::HostResult r) { answered(host, std::move(r)); });
}

void HostResolver::answered(const std::string& host, runtime::DnsResolver::HostResult r) {
  auto it = entries_.find(host);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  e.inFlight = false;
  std::uint64_t now = loop_.nowMs();
  auto clamp = [&](std::int64_t secs) {
    return static_cast<std::uint64_t>(std::clamp(secs, settings_.minTtlSecs, settings_.maxTtlSecs)) * 1000;
  };
  dtab::HostAnswer next = e.answer;
  using K = dtab::HostAnswer::Kind;
  switch (r.status) {
    case runtime::DnsResolver::Status::Ok:
      next = {K::Addresses, std::move(r.addresses), {}};
      e.goodAtMs = now;
      e.refreshAtMs = now + clamp(r.ttlSecs);
      break;
    case runtime::DnsResolver::Status::NotFound:
      next = {K::NotFound, {}, r.error};
      e.refreshAtMs = now + clamp(settings_.minTtlSecs);
      break;
    case runtime::DnsResolver::Status::Failed:
      ++failures_;
      // The last good addresses stay: a DNS outage must not take a working
      // name away.
      if (e.answer.kind != K::Addresses) next = {K::Failed, {}, r.error + " (DNS servers: " + dns_->describeServers() + ")"};
      e.refreshAtMs = now + clamp(settings_.minTtlSecs);
      break;
  }
  bool changed = next.kind != e.answer.kind || next.ips != e.answer.ips || next.error != e.answer.error;
  e.answer = std::move(next);
  if (!changed) return;
  publish();
  if (onChange_) onChange_();
}

HostResolver::Stats HostResolver::stats() const {
  Stats s{lookups_, failures_, {}};
  std::uint64_t now = loop_.nowMs();
  for (const auto& [host, e] : entries_) {
    using K = dtab::HostAnswer::Kind;
    const char* state = e.answer.kind == K::Addresses  ? "resolved"
                        : e.answer.kind == K::NotFound ? "not_found"
                        : e.answer.kind == K::Failed   ? "failed"
                                                       : "pending";
    double age = e.goodAtMs ? static_cast<double>(now - e.goodAtMs) / 1000.0 : 0;
    s.hosts.push_back({host, state, age});
  }
  return s;
}

}  // namespace switchyard::namer
