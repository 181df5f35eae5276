#pragma once

// NamerdClient: the router's side of `interpreter.kind: io.l5d.namerd.http`.
// For every (namespace, local dtab, logical name) a request asks about, it
// holds one watch stream on the namer service
// (GET /api/1/bind/<ns>?path=...&dtab=...&watch=true) and keeps the latest
// bound tree it sent, addresses included. A broken stream is reopened with
// backoff, and until then the last tree stays in force: a namer outage
// never takes away a binding that worked. Names are asked for through
// want() from any thread; answers are published as immutable snapshots
// (current()), like a namer's, and the owner is told through onChange.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtab/name.h"
#include "dtab/name_tree.h"
#include "namer/dns_settings.h"
#include "namer/want.h"
#include "runtime/dns_resolver.h"
#include "runtime/http_client.h"
#include "runtime/loop.h"
#include "runtime/timer.h"

namespace switchyard::namer {

struct RemoteResult {
  std::shared_ptr<const dtab::NameTree<dtab::BoundName>> tree;  // or
  std::string error;                                            // why there is none
};

// What the namer service has told a router, by key (see NamerdClient::key).
struct RemoteBindings {
  std::map<std::string, RemoteResult> results;
};

struct NamerdSettings {
  std::string host = "127.0.0.1";  // from dst: /$/inet/<host>/<port>
  std::uint16_t port = 4180;
  // While the namer service is unreachable one stream probes it, with
  // backoff from retryBaseMs to retryMaxMs (Linkerd's retry.baseSeconds and
  // maxSeconds); when the probe gets through, every stream reopens at once.
  std::uint64_t retryBaseMs = 200;
  std::uint64_t retryMaxMs = 2'000;
  std::size_t maxNames = 10'000;      // streams per router; past it new names fail
};

class NamerdClient {
 public:
  NamerdClient(runtime::Loop& loop, NamerdSettings settings, DnsSettings dns, std::string label);
  ~NamerdClient();

  // "ns\ndtab\npath": what a worker asks for and finds in RemoteBindings.
  static std::string key(const std::string& ns, const std::string& localDtab, const std::string& path);

  void start(std::function<void()> onChange);
  std::shared_ptr<const RemoteBindings> current() const { return current_; }
  // For workers: asks for a key (posted to the loop; repeated asks are free).
  std::shared_ptr<const WantFn> want() const { return want_; }

  // One GET to the namer service (the admin's delegator); `done` on the loop.
  void get(const std::string& target, std::function<void(Expected<runtime::HttpResult, std::string>)> done);

  struct Stats {
    std::size_t names = 0;       // keys asked for
    std::size_t connected = 0;   // streams open and answering now
    std::uint64_t reconnects = 0;
    std::uint64_t updates = 0;   // trees received
  };
  Stats stats() const;

 private:
  struct Watch;
  void ask(const std::string& key);
  void open(Watch& w);
  void connect(Watch& w, const runtime::SocketAddress& addr);
  // The namer's address (resolved if a name), then `then` on the loop.
  void withAddress(std::function<void(Expected<runtime::SocketAddress, std::string>)> then);
  void onLine(Watch& w, const std::string& line);
  void onEnded(Watch& w, const std::string& why);
  void publish(const std::string& key, RemoteResult result);
  void noteOutage(const std::string& why);
  void probe();
  void reopenWaiting();

  runtime::Loop& loop_;
  NamerdSettings settings_;
  DnsSettings dnsSettings_;
  std::string label_;
  std::function<void()> onChange_;
  std::shared_ptr<const RemoteBindings> current_ = std::make_shared<RemoteBindings>();
  std::map<std::string, std::unique_ptr<Watch>> watches_;
  std::unique_ptr<runtime::DnsResolver> dns_;
  runtime::FetchSet calls_;  // get()s in flight
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<const WantFn> want_;
  Stats stats_;
  bool outage_ = false;  // logged once per outage
  std::vector<std::string> waiting_;  // keys whose streams wait for the namer to answer again
  int probeFailures_ = 0;
  runtime::Timer probeTimer_;
};

}  // namespace switchyard::namer
