#include "namer/namerd_client.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "dtab/system_namers.h"
#include "namer/delegate_json.h"
#include "runtime/http_server.h"

namespace switchyard::namer {

struct NamerdClient::Watch {
  explicit Watch(runtime::Loop& loop) : retry(loop) {}
  std::string key;
  std::string ns, dtab, path;
  std::unique_ptr<runtime::HttpCall> call;
  int status = 0;
  std::string buffer;      // a line not yet ended
  std::string lastLine;    // the last answer, to skip repeats after a reconnect
  bool connected = false;  // a 200 head arrived on the current stream
  bool answered = false;   // something was published for this key
  bool refused = false;    // the namer ended the stream with an error line
  runtime::Timer retry;  // after a refusal
};

NamerdClient::NamerdClient(runtime::Loop& loop, NamerdSettings settings, DnsSettings dns, std::string label)
    : loop_(loop), settings_(std::move(settings)), dnsSettings_(std::move(dns)), label_(std::move(label)),
      calls_(loop), probeTimer_(loop) {
  want_ = makeWant(loop_, alive_, [this](const std::string& k) { ask(k); });
}

NamerdClient::~NamerdClient() {
  *alive_ = false;
  watches_.clear();
}

std::string NamerdClient::key(const std::string& ns, const std::string& localDtab, const std::string& path) {
  return ns + '\n' + localDtab + '\n' + path;
}

void NamerdClient::start(std::function<void()> onChange) { onChange_ = std::move(onChange); }

NamerdClient::Stats NamerdClient::stats() const {
  Stats s = stats_;
  s.names = watches_.size();
  s.connected = static_cast<std::size_t>(
      std::count_if(watches_.begin(), watches_.end(), [](const auto& w) { return w.second->connected; }));
  return s;
}

void NamerdClient::ask(const std::string& k) {
  if (watches_.count(k)) return;
  auto first = k.find('\n');
  auto second = k.find('\n', first + 1);
  if (first == std::string::npos || second == std::string::npos) return;
  if (watches_.size() >= settings_.maxNames) {
    // Distinct names without end (a scan, hostile l5d-dtab headers) must not
    // open streams without end: the new name fails, the known ones go on.
    publish(k, {nullptr, "this router already follows " + std::to_string(settings_.maxNames) +
                             " names through the namer service; no more are asked for"});
    return;
  }
  auto w = std::make_unique<Watch>(loop_);
  w->key = k;
  w->ns = k.substr(0, first);
  w->dtab = k.substr(first + 1, second - first - 1);
  w->path = k.substr(second + 1);
  Watch& ref = *w;
  watches_.emplace(k, std::move(w));
  open(ref);
}

void NamerdClient::open(Watch& w) {
  w.call.reset();
  w.buffer.clear();
  w.status = 0;
  w.refused = false;
  withAddress([this, key = w.key](Expected<runtime::SocketAddress, std::string> addr) {
    auto it = watches_.find(key);
    if (it == watches_.end()) return;
    if (!addr) {
      onEnded(*it->second, addr.error());
      return;
    }
    connect(*it->second, *addr);
  });
}

void NamerdClient::withAddress(std::function<void(Expected<runtime::SocketAddress, std::string>)> then) {
  if (auto ip = dtab::parseIpLiteral(settings_.host)) {
    then(runtime::SocketAddress::parse(*ip, settings_.port));
    return;
  }
  if (!dns_) {
    auto dns = makeDnsResolver(loop_, dnsSettings_);
    if (!dns) {
      then(Unexpected("no DNS resolver for " + settings_.host + ": " + dns.error()));
      return;
    }
    dns_ = std::move(*dns);
  }
  dns_->resolveHost(settings_.host, [this, alive = alive_, then = std::move(then)](runtime::DnsResolver::HostResult r) {
    if (!*alive) return;
    if (r.status != runtime::DnsResolver::Status::Ok || r.addresses.empty()) {
      then(Unexpected("cannot resolve " + settings_.host + (r.error.empty() ? "" : ": " + r.error)));
      return;
    }
    then(runtime::SocketAddress::parse(r.addresses.front(), settings_.port));
  });
}

void NamerdClient::get(const std::string& target,
                       std::function<void(Expected<runtime::HttpResult, std::string>)> done) {
  withAddress([this, target, done = std::move(done)](Expected<runtime::SocketAddress, std::string> addr) mutable {
    if (!addr) return done(Unexpected(addr.error()));
    runtime::HttpCall::Request req;
    req.target = target;
    req.host = settings_.host + ":" + std::to_string(settings_.port);
    req.timeoutMs = 5'000;
    calls_.fetch(*addr, std::move(req), std::move(done));
  });
}

void NamerdClient::connect(Watch& w, const runtime::SocketAddress& addr) {
  runtime::HttpCall::Request req;
  req.target = "/api/1/bind/" + runtime::percentEncode(w.ns) + "?path=" + runtime::percentEncode(w.path) +
               (w.dtab.empty() ? "" : "&dtab=" + runtime::percentEncode(w.dtab)) + "&watch=true";
  req.host = settings_.host + ":" + std::to_string(settings_.port);
  req.headers.add("Accept", "application/json");
  runtime::HttpCall::Handler h;
  Watch* wp = &w;
  h.onHead = [this, wp](const runtime::ResponseHead& head) {
    wp->status = head.status;
    wp->connected = head.status == 200;
    // The namer answers: streams that waited for it reopen now.
    probeFailures_ = 0;
    if (!waiting_.empty()) loop_.defer([this, alive = alive_] {
      if (*alive) reopenWaiting();
    });
  };
  h.onBody = [this, wp](std::string_view data) {
    wp->buffer.append(data);
    if (wp->status != 200) {
      if (wp->buffer.size() > 4096) wp->buffer.resize(4096);
      return;
    }
    std::size_t nl;
    while ((nl = wp->buffer.find('\n')) != std::string::npos) {
      std::string line = wp->buffer.substr(0, nl);
      wp->buffer.erase(0, nl + 1);
      onLine(*wp, line);
    }
    if (wp->buffer.size() > (16u << 20)) onEnded(*wp, "a line of over 16 MB from the namer service");
  };
  h.onDone = [this, wp](std::optional<std::string> error) {
    if (wp->status != 0 && wp->status != 200) {
      // The namer answered, and said no (an unknown namespace, a bad path):
      // requests for this name fail with its words until it says otherwise.
      std::string body = wp->buffer;
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
      publish(wp->key, {nullptr, "the namer service answered " + std::to_string(wp->status) + ": " + body});
      onEnded(*wp, "answered " + std::to_string(wp->status));
      return;
    }
    onEnded(*wp, error ? *error : std::string("the namer service ended the stream"));
  };
  w.call = runtime::HttpCall::start(loop_, addr, std::move(req), std::move(h), 2'000);
}

void NamerdClient::onLine(Watch& w, const std::string& line) {
  if (line.empty()) return;
  bool repeat = line == w.lastLine;
  w.lastLine = line;
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) {
    publish(w.key, {nullptr, "the namer service sent something that is not JSON"});
    return;
  }
  if (outage_) {
    outage_ = false;
    std::fprintf(stderr, "switchyard: router %s: the namer service at %s:%u answers again\n", label_.c_str(),
                 settings_.host.c_str(), settings_.port);
  }
  if (repeat) return;  // a reopened stream starts with what we have
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    std::string e = j["error"].get<std::string>();
    while (!e.empty() && e.back() == '\n') e.pop_back();
    w.refused = true;
    publish(w.key, {nullptr, "the namer service: " + e});
    return;
  }
  auto tree = boundTreeFromJson(j);
  if (!tree) {
    publish(w.key, {nullptr, "the namer service sent an invalid tree: " + tree.error()});
    return;
  }
  ++stats_.updates;
  publish(w.key, {std::make_shared<const dtab::NameTree<dtab::BoundName>>(std::move(*tree)), {}});
}

void NamerdClient::onEnded(Watch& w, const std::string& why) {
  bool wasConnected = w.connected;
  w.connected = false;
  w.retry.stop();
  // Freed after this callback returns: we may be inside the call's own.
  if (w.call) {
    std::shared_ptr<runtime::HttpCall> old(std::move(w.call));
    loop_.defer([old] {});
  }
  if (wasConnected) ++stats_.reconnects;
  if ((w.status != 0 && w.status != 200) || w.refused) {
    // The namer answered but refused (an unknown namespace): asked again
    // after a while, in case the namespace is created.
    w.retry.start(settings_.retryMaxMs * 5, [this, key = w.key] {
      auto it = watches_.find(key);
      if (it != watches_.end()) open(*it->second);
    });
    return;
  }
  // Unreachable, or the stream broke: the last tree stays in force, and
  // this stream waits for the probe to find the namer answering again.
  noteOutage(why);
  waiting_.push_back(w.key);
  if (!probeTimer_.active()) {
    std::uint64_t delay = std::min(settings_.retryBaseMs << std::min(probeFailures_, 16), settings_.retryMaxMs);
    probeTimer_.start(delay, [this] { probe(); });
  }
}

void NamerdClient::probe() {
  ++probeFailures_;
  // One stream goes first; if it gets through, onHead reopens the rest.
  while (!waiting_.empty()) {
    std::string key = std::move(waiting_.back());
    waiting_.pop_back();
    auto it = watches_.find(key);
    if (it == watches_.end()) continue;
    open(*it->second);
    return;
  }
}

void NamerdClient::reopenWaiting() {
  probeTimer_.stop();
  auto keys = std::move(waiting_);
  waiting_.clear();
  for (const auto& key : keys) {
    auto it = watches_.find(key);
    if (it != watches_.end() && !it->second->call) open(*it->second);
  }
}

void NamerdClient::noteOutage(const std::string& why) {
  if (outage_) return;
  outage_ = true;
  std::size_t known = current_->results.size();
  std::fprintf(stderr,
               "switchyard: router %s: the namer service at %s:%u is unreachable (%s); routing on the last "
               "bindings it sent (%zu name(s)) and retrying\n",
               label_.c_str(), settings_.host.c_str(), settings_.port, why.c_str(), known);
}

void NamerdClient::publish(const std::string& key, RemoteResult result) {
  auto next = std::make_shared<RemoteBindings>(*current_);
  auto& slot = next->results[key];
  if (!slot.tree && !result.tree && !slot.error.empty() && slot.error == result.error) return;
  slot = std::move(result);
  current_ = std::move(next);
  if (auto it = watches_.find(key); it != watches_.end()) it->second->answered = true;
  if (onChange_) onChange_();
}

}  // namespace switchyard::namer
