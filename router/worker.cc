#include "router/worker.h"

#include "router/exchange.h"
#include "router/hop_headers.h"
#include "router/server_connection.h"

namespace switchyard::router {

namespace {

// Per-request dtab headers, Linkerd's way: l5d-ctx-dtab (from an upstream
// router) then l5d-dtab (from the user), so the user's entries come last and
// win. Both are removed and the result travels on as one l5d-ctx-dtab.
Expected<dtab::Dtab, Failure> takeLocalDtab(runtime::RequestHead& head, std::size_t maxBytes) {
  std::size_t total = 0;
  dtab::Dtab local;
  for (const char* name : {"l5d-ctx-dtab", "l5d-dtab"}) {
    for (std::string_view value : head.headers.getAll(name)) {
      total += value.size();
      if (total > maxBytes) {
        return Unexpected(Failure{Failure::Kind::DtabTooLarge,
                                  "the per-request dtab (l5d-ctx-dtab + l5d-dtab) is larger than " +
                                      std::to_string(maxBytes) + " bytes",
                                  false});
      }
      auto d = dtab::Dtab::parse(value);
      if (!d) {
        return Unexpected(Failure{Failure::Kind::BadDtab,
                                  std::string("invalid ") + name + " header: " + d.error().message(), false});
      }
      local = local + *d;
    }
  }
  head.headers.remove("l5d-ctx-dtab");
  head.headers.remove("l5d-dtab");
  if (!local.empty()) head.headers.add("l5d-ctx-dtab", local.show());
  return local;
}

void clearContextHeaders(runtime::HttpHeaders& headers) {
  auto& e = headers.entries();
  std::erase_if(e, [](const runtime::HttpHeaders::Entry& h) {
    return h.first.size() >= 4 && runtime::HttpHeaders::nameEquals(h.first.substr(0, 4), "l5d-");
  });
}

}  // namespace

Worker::Worker(const std::vector<std::unique_ptr<RouterPlan>>& plans, std::shared_ptr<const NamingState> naming)
    : plans_(plans),
      naming_(std::move(naming)),
      pool_(loop_, static_cast<std::uint64_t>(plans.front()->config.client.poolIdleTimeMs),
            static_cast<std::size_t>(plans.front()->config.client.poolMaxSize)),
      rng_(std::random_device{}()),
      sweepTimer_(loop_) {
  // Connection timeouts are checked by one sweep a second rather than a
  // timer per connection: setting a deadline is then a store, which keeps
  // timers off the request path.
  sweepTimer_.start(kSweepMs, [this] {
    std::uint64_t now = loop_.nowMs();
    for (auto* c : std::vector<ServerConnection*>(connections_.begin(), connections_.end())) {
      if (connections_.count(c)) c->checkTimeouts(now);
    }
  }, kSweepMs);
}

Worker::~Worker() {
  listeners_.clear();
  for (auto* c : connections_) delete c;
  connections_.clear();
  // Deferred deletions (connections, exchanges) use this worker's members:
  // run them while those are alive.
  loop_.drainDeferred();
}

Expected<std::vector<std::vector<std::uint16_t>>, std::string> Worker::listen(
    const std::vector<std::vector<std::uint16_t>>& ports, bool first) {
  std::vector<std::vector<std::uint16_t>> bound;
  for (std::size_t r = 0; r < plans_.size(); ++r) {
    const RouterPlan& plan = *plans_[r];
    bound.emplace_back();
    for (std::size_t s = 0; s < plan.config.servers.size(); ++s) {
      const ServerConfig& server = plan.config.servers[s];
      auto addr = runtime::SocketAddress::parse(server.ip, ports[r][s]);
      if (!addr) return Unexpected("routers[" + std::to_string(r) + "].servers[" + std::to_string(s) + "].ip: " + addr.error());
      auto key = std::make_shared<std::string>();
      auto reuse = first ? runtime::TcpListener::ReusePort::First : runtime::TcpListener::ReusePort::Join;
      auto l = runtime::TcpListener::listen(loop_, *addr, reuse,
                                            [this, &plan, &server, key](runtime::TcpStreamPtr stream) {
                                              if (draining_) return;  // dropping it closes it
                                              connections_.insert(
                                                  new ServerConnection(*this, plan, server, *key, std::move(stream)));
                                            });
      if (!l) return Unexpected(l.error());
      // Linkerd names a server by ip/port in its metrics.
      *key = server.ip + "/" + std::to_string((*l)->port());
      bound.back().push_back((*l)->port());
      listeners_.push_back(std::move(*l));
    }
  }
  return bound;
}

void Worker::startThread() {
  thread_ = std::thread([this] { loop_.run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::drain(std::uint64_t graceMs) {
  loop_.post([this, graceMs] {
    draining_ = true;
    listeners_.clear();
    for (auto* c : std::set<ServerConnection*>(connections_)) c->drain();
    // After the grace period, whatever is left is cut. The timer lives as
    // long as the worker, so nothing here frees it inside its own callback.
    drainTimer_ = std::make_unique<runtime::Timer>(loop_);
    drainTimer_->start(graceMs, [this] {
      for (auto* c : connections_) delete c;
      connections_.clear();
      loop_.stop();
    });
    maybeFinishDrain();
  });
}

void Worker::maybeFinishDrain() {
  if (!draining_ || !connections_.empty()) return;
  if (drainTimer_) drainTimer_->stop();
  loop_.stop();
}

void Worker::connectionClosed(ServerConnection* c) {
  if (connections_.erase(c) == 0) return;
  loop_.deleteLater(std::unique_ptr<ServerConnection>(c));
  maybeFinishDrain();
}

void Worker::setNaming(std::shared_ptr<const NamingState> naming) {
  naming_ = std::move(naming);
  bindings_.clear();
  // Requests waiting for an address try again; each leaves the set when it
  // is routed or fails.
  for (auto* e : std::vector<Exchange*>(waiting_.begin(), waiting_.end())) {
    if (waiting_.count(e)) e->namingChanged();
  }
}

const Worker::Binding& Worker::bind(const RouterPlan& plan, const std::string& ns, const dtab::Dtab& local,
                                    const dtab::Path& name, const std::string& nameShown) {
  std::string localText = local.show();
  std::string key = plan.config.label + '\n' + ns + '\n' + localText + '\n' + nameShown;
  auto it = bindings_.find(key);
  if (it != bindings_.end() && it->second.generation == naming_->generation) return it->second;
  // A hostile stream of distinct per-request dtabs must not grow the cache
  // without bound.
  if (bindings_.size() > 10'000) bindings_.clear();
  Binding b{naming_->generation, nullptr, std::nullopt};
  if (plan.remote) {
    // The namer service binds; until it has answered, the name is pending
    // (and asked for), so the request waits as for a DNS answer.
    std::string remoteKey = namer::NamerdClient::key(ns, localText, nameShown);
    const auto& known = naming_->remote[plan.index]->results;
    auto r = known.find(remoteKey);
    if (r == known.end()) {
      (*naming_->wantRemote[plan.index])(remoteKey);
      b.tree = std::make_shared<const BoundTree>(BoundTree::leaf(dtab::BoundName{name, {}, dtab::Addr::pending()}));
    } else if (r->second.tree) {
      b.tree = plan.transformers.empty()
                   ? r->second.tree
                   : std::make_shared<const BoundTree>(transform(*r->second.tree, plan.transformers, transformContext()));
    } else {
      b.error = dtab::DelegateError{dtab::DelegateError::Kind::NamerError, r->second.error};
    }
    return bindings_.insert_or_assign(std::move(key), std::move(b)).first->second;
  }
  dtab::Delegator delegator(naming_->dtabs[plan.index] + local, naming_->namers);
  auto bound = delegator.bind(name);
  if (bound) {
    b.tree = std::make_shared<const BoundTree>(transform(*bound, plan.transformers, transformContext()));
  } else {
    b.error = std::move(bound.error());
  }
  return bindings_.insert_or_assign(std::move(key), std::move(b)).first->second;
}

TransformContext Worker::transformContext() const {
  // A name's Addr through the namers alone (no dtab), as of this naming.
  return namersContext(std::shared_ptr<const std::vector<dtab::NamerEntry>>(naming_, &naming_->namers));
}

Expected<std::string, Failure> Worker::namespaceOf(const RouterPlan& plan, const ServerConfig& server,
                                                   const runtime::RequestHead& head) const {
  if (!plan.remote) return std::string();
  if (!server.ns.empty()) return server.ns;
  const auto& s = *plan.remote;
  if (s.header.empty()) return s.ns;
  auto v = head.headers.get(s.header);
  if (!v || v->empty()) return s.ns;
  std::string ns(*v);
  bool allowed = s.allowed.empty() ? namer::validNamespaceName(ns)
                                   : std::find(s.allowed.begin(), s.allowed.end(), ns) != s.allowed.end();
  if (!allowed) {
    return Unexpected(Failure{Failure::Kind::BadRequest,
                              s.header + ": \"" + ns + "\" is not a namespace this router serves" +
                                  (s.allowed.empty() ? std::string(" (not a valid name)") : std::string()),
                              false});
  }
  return ns;
}

Expected<Route, Failure> Worker::route(const RouterPlan& plan, const ServerConfig& server,
                                      runtime::RequestHead& head) {
  const RouterConfig& cfg = plan.config;
  if (server.clearContext) clearContextHeaders(head.headers);
  std::size_t hops = viaHops(head.headers);
  if (hops > static_cast<std::size_t>(cfg.maxCallDepth)) {
    return Unexpected(Failure{Failure::Kind::TooDeep,
                              "the request passed " + std::to_string(hops) + " proxies (Via), over maxCallDepth " +
                                  std::to_string(cfg.maxCallDepth) + ": a routing loop?",
                              false});
  }
  auto local = takeLocalDtab(head, static_cast<std::size_t>(cfg.maxDtabHeaderBytes));
  if (!local) return Unexpected(local.error());

  auto id = plan.identifier->identify(head);
  if (!id) return Unexpected(Failure{Failure::Kind::BadRequest, "cannot identify the request: " + id.error(), false});
  if (id->target) head.target = *id->target;
  const dtab::Path& name = id->name;
  auto ns = namespaceOf(plan, server, head);
  if (!ns) return Unexpected(ns.error());
  return bindAndPick(plan, *ns, name, *local);
}

std::string Worker::dtabsInForce(const RouterPlan& plan, const dtab::Dtab& local) const {
  std::string s = plan.remote ? "dtab: the namer service's at " + plan.remote->client.host + ":" +
                                    std::to_string(plan.remote->client.port)
                              : "dtab: " + naming_->dtabs[plan.index].show();
  if (!local.empty()) s += "; l5d-dtab: " + local.show();
  return s;
}

Expected<Route, Failure> Worker::bindAndPick(const RouterPlan& plan, const std::string& ns, const dtab::Path& name,
                                             const dtab::Dtab& local) {
  std::string nameShown = name.show();
  const Binding& b = bind(plan, ns, local, name, nameShown);
  if (b.error) {
    Failure f{Failure::Kind::NamingFailed,
              "delegating " + nameShown + " failed: " + b.error->message + " (" + dtabsInForce(plan, local) + ")",
              false};
    f.service = name.show();
    return Unexpected(std::move(f));
  }
  auto route = pick(plan, name, local, b.tree);
  if (route) {
    route->ns = ns;
    route->logicalShown = std::move(nameShown);
  }
  return route;
}

Worker::BalancerEntry& Worker::balancerFor(const RouterPlan& plan, const dtab::BoundName& leaf) {
  auto key = std::make_pair(plan.index, leaf.id);
  auto it = balancers_.find(key);
  if (it == balancers_.end()) {
    it = balancers_.emplace(std::move(key), BalancerEntry{Balancer(plan.balancer), ~std::uint64_t{0}, leaf.id.show()}).first;
  }
  BalancerEntry& entry = it->second;
  // Endpoint sets change only with the naming generation: update then.
  if (entry.generation != naming_->generation) {
    entry.balancer.update(leaf.addr.endpoints);
    entry.generation = naming_->generation;
  }
  return entry;
}

Expected<Route, Failure> Worker::pick(const RouterPlan& plan, const dtab::Path& name, const dtab::Dtab& local,
                                      std::shared_ptr<const BoundTree> tree) {
  auto pendingRoute = [&] { return Route{&plan, name, local, std::move(tree), {}, nullptr, nullptr, {}, {}, {}}; };
  auto isPending = [](const dtab::BoundName& l) { return l.addr.kind == dtab::Addr::Kind::Pending; };
  auto fail = [&](std::string message) {
    Failure f{Failure::Kind::NoHosts, "no hosts are available for " + name.show() + ": " + std::move(message), false};
    f.service = name.show();
    return Unexpected(std::move(f));
  };
  if (tree->isNeg() || tree->isFail() || tree->isEmpty()) {
    const char* what = tree->isNeg() ? "~ (no dtab entry or namer claims it)"
                       : tree->isFail() ? "! (the dtab says fail)"
                                        : "$ (empty)";
    return fail(std::string("it binds to ") + what + " (" + dtabsInForce(plan, local) + ")");
  }
  auto hasEndpoints = [](const dtab::BoundName& leaf) {
    return leaf.addr.kind == dtab::Addr::Kind::Bound && !leaf.addr.endpoints.empty();
  };
  const dtab::BoundName* leaf = nullptr;
  if (tree->kind() == BoundTree::Kind::Leaf) {
    leaf = &tree->value();  // the common case: nothing to choose
    if (isPending(*leaf)) return pendingRoute();
  } else {
    // A union branch (or an alternative) whose endpoints are all set aside
    // after failures takes no requests while another can; if none can, the
    // balancers try anyway rather than fail outright.
    std::uint64_t now = loop_.nowMs();
    leaf = pickLeaf(*tree, [&](const dtab::BoundName& l) {
      return hasEndpoints(l) && balancerFor(plan, l).balancer.anyAvailable(now);
    }, rng_);
    if (leaf == nullptr) leaf = pickLeaf(*tree, hasEndpoints, rng_);
    if (leaf == nullptr && pickLeaf(*tree, isPending, rng_) != nullptr) return pendingRoute();
    if (leaf == nullptr) {
      return fail("none of the names it binds to has endpoints: " +
                  describeLeaves(*tree, [](const dtab::BoundName& l) {
                    return l.addr.kind == dtab::Addr::Kind::Failed ? l.addr.error : std::string("no endpoints");
                  }));
    }
  }
  if (!hasEndpoints(*leaf)) {
    std::string why = leaf->addr.kind == dtab::Addr::Kind::Failed ? leaf->addr.error : "it has no endpoints";
    return fail("it binds to " + leaf->id.show() + ", but " + why);
  }
  BalancerEntry& entry = balancerFor(plan, *leaf);
  auto endpoint = entry.balancer.pick(loop_.nowMs(), rng_);
  return Route{&plan, name, local, std::move(tree), *leaf, std::move(endpoint), &entry.balancer, {}, {}, entry.idShown};
}

Expected<Route, Failure> Worker::reroute(const Route& failed) {
  auto route = pick(*failed.plan, failed.logicalName, failed.local, failed.tree);
  if (route) {
    route->ns = failed.ns;
    route->logicalShown = failed.logicalShown;
  }
  return route;
}

Expected<Route, Failure> Worker::rebind(const Route& pending) {
  return bindAndPick(*pending.plan, pending.ns, pending.logicalName, pending.local);
}

}  // namespace switchyard::router
