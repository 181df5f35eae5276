#include "namer/namer_api.h"

#include <nlohmann/json.hpp>
#include <set>

#include "dtab/delegator.h"
#include "namer/delegate_json.h"

namespace switchyard::namer {

using nlohmann::json;
using runtime::HttpHeaders;
using runtime::HttpRequest;
using runtime::HttpResponder;

namespace {

constexpr std::size_t kMaxBodyBytes = 256 * 1024;
constexpr int kMaxBaseDepth = 16;

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(runtime::percentDecode(std::string_view(path).substr(i, j - i)));
    i = j;
  }
  return out;
}

// `"v"`, `W/"v"` or `v` -> v
std::string unquoteTag(std::string_view t) {
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  if (t.size() >= 2 && t[0] == 'W' && t[1] == '/') t.remove_prefix(2);
  if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
  return std::string(t);
}

bool sameToken(const std::string& a, const std::string& b) {
  // Constant time in the contents, so a guess learns nothing from timing.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool wantsDtabText(const HttpRequest& req) {
  auto accept = req.headers.get("accept");
  return accept && accept->find("application/dtab") != std::string_view::npos;
}

}  // namespace

struct NamerApi::Watch {
  HttpRequest req;
  std::shared_ptr<HttpResponder> responder;
  std::string last;
};

NamerApi::NamerApi(runtime::Loop& loop, DtabStore& store, ApiAuth auth,
                   std::function<std::vector<dtab::NamerEntry>()> namers)
    : loop_(loop), store_(store), auth_(std::move(auth)), namers_(std::move(namers)),
      server_(loop, runtime::HttpServer::Options{kMaxBodyBytes, 64 * 1024, 8 << 20, "namer API"},
              [this](HttpRequest&& req, std::shared_ptr<HttpResponder> r) { handle(std::move(req), std::move(r)); }) {}

NamerApi::~NamerApi() {
  for (auto& w : watches_) w->responder->onGone(nullptr);
  watches_.clear();
}

Expected<std::uint16_t, std::string> NamerApi::listen(const std::string& ip, std::uint16_t port) {
  return server_.listen(ip, port);
}

void NamerApi::stop() {
  server_.stop();
  server_.closeAll();
}

void NamerApi::setNamespaces(const NamespaceMap& map) {
  namespaces_ = map;
  parsed_.clear();
  for (const auto& [ns, v] : namespaces_) {
    auto d = dtab::Dtab::parse(v.dtab);
    // Stored text was checked when written; a store shared with another
    // writer might still hold something else: that namespace has no entries.
    if (!d) {
      std::fprintf(stderr, "switchyard: namer: namespace %s holds an invalid dtab (%s); using none\n", ns.c_str(),
                   d.error().message().c_str());
    }
    parsed_.emplace(ns, d ? std::move(*d) : dtab::Dtab{});
  }
  reevaluate();
}

void NamerApi::namingChanged() { reevaluate(); }

std::optional<dtab::Dtab> NamerApi::effectiveDtab(const std::string& ns) const {
  // Bases first: collect the chain (a cycle, which writes refuse but another
  // replica's store could hold, ends it).
  std::vector<const dtab::Dtab*> chain;
  std::set<std::string> seen;
  std::string at = ns;
  while (!at.empty() && seen.insert(at).second && static_cast<int>(chain.size()) < kMaxBaseDepth) {
    auto it = parsed_.find(at);
    if (it == parsed_.end()) {
      if (at == ns) return std::nullopt;
      break;  // a base that was deleted: the rest stands alone
    }
    chain.push_back(&it->second);
    at = namespaces_.at(at).base;
  }
  dtab::Dtab out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) out = out + **it;
  return out;
}

void NamerApi::handle(HttpRequest&& req, std::shared_ptr<HttpResponder> r) {
  ++stats_.requests;
  auto seg = segments(req.path());
  auto answer = [&](const Answer& a) {
    if (a.status >= 400 && a.status < 500) ++stats_.rejected;
    r->reply(a.status, a.contentType, a.body, a.headers);
  };
  if (seg.size() < 3 || seg[0] != "api" || seg[1] != "1") {
    answer({404, "text/plain", "no such path: " + req.path() + " (the API is under /api/1/)\n", {}});
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    if (seg[2] == "dtabs" && seg.size() == 4 && (req.method == "POST" || req.method == "PUT" || req.method == "DELETE")) {
      write(req, seg[3], std::move(r));
      return;
    }
    answer({405, "text/plain", req.method + " is not allowed on " + req.path() + "\n", {}});
    return;
  }
  Answer a = read(req);
  if (req.method == "HEAD" || req.query("watch").value_or("") != "true" || a.status != 200) {
    answer(a);
    return;
  }
  // A stream: the current answer now, then each different one.
  r->startStream(200, "application/json", std::move(a.headers));
  r->write(a.body + "\n");
  auto w = std::make_shared<Watch>(Watch{std::move(req), r, std::move(a.body)});
  watches_.push_back(w);
  ++stats_.watches;
  r->onGone([this, raw = w.get()] {
    watches_.remove_if([raw](const std::shared_ptr<Watch>& x) { return x.get() == raw; });
    --stats_.watches;
  });
}

void NamerApi::reevaluate() {
  // A write made while answering (a cut-off client) could come back here.
  if (reevaluating_) {
    reevaluateAgain_ = true;
    return;
  }
  reevaluating_ = true;
  do {
    reevaluateAgain_ = false;
    auto watches = std::vector<std::shared_ptr<Watch>>(watches_.begin(), watches_.end());
    for (auto& w : watches) {
      if (w->responder->gone()) continue;
      Answer a = read(w->req);
      if (a.status != 200) {
        // The namespace went away (or no longer answers): the stream ends
        // with a last line saying why.
        auto r = w->responder;
        r->onGone(nullptr);  // this is its end: not counted twice if the write cuts it off
        watches_.remove(w);
        --stats_.watches;
        r->write(json{{"error", a.body}}.dump() + "\n");
        r->end();
        continue;
      }
      if (a.body == w->last) continue;
      w->last = a.body;
      ++stats_.updatesSent;
      w->responder->write(a.body + "\n");
    }
  } while (reevaluateAgain_);
  reevaluating_ = false;
}

NamerApi::Answer NamerApi::read(const HttpRequest& req) {
  auto seg = segments(req.path());
  const std::string& kind = seg[2];
  if (kind == "dtabs" && seg.size() == 3) {
    json names = json::array();
    for (const auto& [ns, v] : namespaces_) names.push_back(ns);
    return {200, "application/json", names.dump(), {}};
  }
  if (seg.size() != 4) return {404, "text/plain", "no such path: " + req.path() + "\n", {}};
  const std::string& ns = seg[3];
  if (kind == "dtabs") {
    auto it = namespaces_.find(ns);
    if (it == namespaces_.end()) return {404, "text/plain", "no namespace " + ns + "\n", {}};
    HttpHeaders h;
    h.add("ETag", "\"" + it->second.version + "\"");
    if (!it->second.base.empty()) h.add("X-Switchyard-Base", it->second.base);
    const dtab::Dtab& own = parsed_.at(ns);
    if (wantsDtabText(req)) return {200, "application/dtab", own.show(), std::move(h)};
    return {200, "application/json", dtabToJson(own).dump(), std::move(h)};
  }
  if (kind == "bind" || kind == "addr" || kind == "resolve" || kind == "delegate") return bindLike(kind, ns, req);
  return {404, "text/plain", "no such path: " + req.path() + "\n", {}};
}

NamerApi::Answer NamerApi::bindLike(const std::string& kind, const std::string& ns, const HttpRequest& req) {
  auto effective = effectiveDtab(ns);
  if (!effective) return {404, "text/plain", "no namespace " + ns + "\n", {}};
  auto pathText = req.query("path");
  if (!pathText) return {400, "text/plain", "the path parameter is required (?path=/svc/hello)\n", {}};
  auto path = dtab::Path::parse(*pathText);
  if (!path) return {400, "text/plain", "Invalid path: " + path.error().message() + "\n", {}};
  auto local = dtab::Dtab::parse(req.query("dtab").value_or(""));
  if (!local) return {400, "text/plain", "Invalid dtab: " + local.error().message() + "\n", {}};
  auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };

  if (kind == "delegate") {
    dtab::Delegator d(*effective + *local, namers_());
    return {200, "application/json", dump(delegateTreeToJson(d.delegate(*path))), {}};
  }
  if (kind == "addr") {
    // A bound name's id, looked up through the namers alone.
    dtab::Delegator d(dtab::Dtab{}, namers_());
    auto bound = d.bind(*path);
    if (!bound) return {422, "text/plain", bound.error().message + "\n", {}};
    if (bound->isLeaf() && bound->value().id == *path) {
      return {200, "application/json", dump(addrToJson(bound->value().addr)), {}};
    }
    return {200, "application/json", dump(addrToJson(dtab::Addr::neg())), {}};
  }
  dtab::Delegator d(*effective + *local, namers_());
  auto bound = d.bind(*path);
  if (!bound) return {422, "text/plain", "delegating " + path->show() + " failed: " + bound.error().message + "\n", {}};
  if (kind == "bind") return {200, "application/json", dump(boundTreeToJson(*bound)), {}};

  // resolve: every leaf's endpoints together.
  std::vector<dtab::Endpoint> endpoints;
  bool pending = false;
  std::function<void(const dtab::NameTree<dtab::BoundName>&)> collect = [&](const auto& t) {
    using Kind = dtab::NameTree<dtab::BoundName>::Kind;
    if (t.kind() == Kind::Leaf) {
      const auto& addr = t.value().addr;
      if (addr.kind == dtab::Addr::Kind::Pending) pending = true;
      for (const auto& e : addr.endpoints) {
        if (std::find(endpoints.begin(), endpoints.end(), e) == endpoints.end()) endpoints.push_back(e);
      }
    } else if (t.kind() == Kind::Alt) {
      if (!t.alts().empty()) collect(t.alts().front());
    } else if (t.kind() == Kind::Union) {
      for (const auto& w : t.weighted()) collect(w.tree);
    }
  };
  collect(*bound);
  dtab::Addr addr = !endpoints.empty() ? dtab::Addr::bound(std::move(endpoints))
                    : pending          ? dtab::Addr::pending()
                                       : dtab::Addr::neg();
  return {200, "application/json", dump(addrToJson(addr)), {}};
}

std::optional<NamerApi::Answer> NamerApi::forbidden(const HttpRequest& req, const std::string& ns) const {
  if (auth_.open()) return std::nullopt;
  auto header = req.headers.get("authorization");
  std::string_view v = header.value_or("");
  if (v.size() < 7 || !runtime::HttpHeaders::nameEquals(v.substr(0, 7), "Bearer ")) {
    HttpHeaders h;
    h.add("WWW-Authenticate", "Bearer");
    return Answer{401, "text/plain", "changing a namespace needs a token: Authorization: Bearer <token>\n", std::move(h)};
  }
  std::string token(v.substr(7));
  if (!auth_.adminToken.empty() && sameToken(token, auth_.adminToken)) return std::nullopt;
  auto it = auth_.namespaces.find(ns);
  if (it != auth_.namespaces.end() && sameToken(token, it->second)) return std::nullopt;
  return Answer{403, "text/plain", "this token may not change namespace " + ns + "\n", {}};
}

void NamerApi::write(const HttpRequest& req, const std::string& ns, std::shared_ptr<HttpResponder> r) {
  auto fail = [&](int status, std::string why, HttpHeaders h = {}) {
    ++stats_.rejected;
    r->reply(status, "text/plain", why + "\n", std::move(h));
  };
  if (!validNamespaceName(ns)) {
    fail(400, "invalid namespace name \"" + ns + "\": use 1-128 of A-Z a-z 0-9 . _ - (not starting with .)");
    return;
  }
  if (auto f = forbidden(req, ns)) {
    fail(f->status, f->body.substr(0, f->body.size() - 1), std::move(f->headers));
    return;
  }
  std::optional<std::string> ifMatch;
  if (auto m = req.headers.get("if-match")) ifMatch = unquoteTag(*m);
  auto done = [this, r](Expected<std::string, StoreError> result) {
    if (result) {
      ++stats_.writes;
      HttpHeaders h;
      if (!result->empty()) h.add("ETag", "\"" + *result + "\"");
      r->reply(204, "text/plain", "", std::move(h));
      return;
    }
    int code = 503;
    switch (result.error().kind) {
      case StoreError::Kind::NotFound: code = 404; break;
      case StoreError::Kind::Exists: code = 409; break;
      case StoreError::Kind::VersionMismatch: code = 412; break;
      case StoreError::Kind::Unavailable: code = 503; break;
      case StoreError::Kind::Invalid: code = 400; break;
    }
    if (code < 500) ++stats_.rejected;
    r->reply(code, "text/plain", result.error().message + "\n");
  };

  if (req.method == "DELETE") {
    for (const auto& [other, v] : namespaces_) {
      if (v.base == ns) {
        fail(409, "namespace " + ns + " is the base of " + other + "; change or delete " + other + " first");
        return;
      }
    }
    store_.remove(ns, ifMatch, std::move(done));
    return;
  }

  dtab::Dtab parsed;
  auto contentType = req.headers.get("content-type").value_or("");
  if (contentType.find("json") != std::string_view::npos) {
    auto j = json::parse(req.body, nullptr, false);
    if (j.is_discarded()) {
      fail(400, "Invalid dtab: the body is not JSON");
      return;
    }
    auto d = dtabFromJson(j);
    if (!d) {
      fail(400, "Invalid dtab: " + d.error());
      return;
    }
    parsed = std::move(*d);
  } else {
    auto d = dtab::Dtab::parse(req.body);
    if (!d) {
      fail(400, "Invalid dtab: " + d.error().message());
      return;
    }
    parsed = std::move(*d);
  }

  StoredNamespace value{parsed.show(), {}, {}};
  auto existing = namespaces_.find(ns);
  if (auto base = req.query("base")) {
    value.base = *base;
  } else if (existing != namespaces_.end()) {
    value.base = existing->second.base;  // PUT without ?base= keeps it
  }
  if (!value.base.empty()) {
    if (value.base == ns) {
      fail(400, "namespace " + ns + " cannot be its own base");
      return;
    }
    if (!namespaces_.count(value.base)) {
      fail(400, "base namespace " + value.base + " does not exist");
      return;
    }
    int depth = 1;
    for (std::string at = value.base; !at.empty(); at = namespaces_.count(at) ? namespaces_.at(at).base : "") {
      if (at == ns) {
        fail(400, "base " + value.base + " would make a cycle: it already builds on " + ns);
        return;
      }
      if (++depth > kMaxBaseDepth) {
        fail(400, "bases nest more than " + std::to_string(kMaxBaseDepth) + " deep");
        return;
      }
    }
  }
  if (req.method == "POST") {
    store_.create(ns, std::move(value), std::move(done));
  } else {
    store_.update(ns, std::move(value), ifMatch, std::move(done));
  }
}

}  // namespace switchyard::namer
