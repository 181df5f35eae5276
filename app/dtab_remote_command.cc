// `switchyard dtab list|get|create|update|delete|test`: namerctl's role, over
// the namer service's HTTP API (--namer URL, default http://127.0.0.1:4180
// or $SWITCHYARD_NAMER; --token or $SWITCHYARD_TOKEN for writes).
// `dtab test` checks a file of `path -> expected` cases against a namespace,
// or against a local dtab file, and exits 1 on any mismatch.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands.h"
#include "dtab/delegator.h"
#include "dtab/dentry.h"
#include "dtab/dtab.h"
#include "namer/delegate_json.h"
#include "namer/static_namer.h"
#include "runtime/http_client.h"
#include "runtime/http_server.h"

namespace switchyard::app {
namespace {

struct RemoteOptions {
  std::string namer;
  std::string token;
  std::string ns;
  std::string file;
  std::string version;
  std::string base;
  std::string cases;
  std::string dtabFile;
  std::string namersFile;
  CLI::Option* baseOpt = nullptr;
};

struct Endpoint {
  std::string host;
  std::uint16_t port = 4180;
  std::optional<runtime::SocketAddress> addr;
};

// http://host[:port][/] -> where to connect.
Expected<Endpoint, std::string> parseNamerUrl(const std::string& url) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return Unexpected("--namer: only http:// URLs are supported, got " + url);
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  Endpoint e;
  std::string host = rest;
  std::string port;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:4180
    auto close = rest.find(']');
    if (close == std::string::npos) return Unexpected("--namer: unclosed [ in " + url);
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Unexpected("--namer: expected :PORT after ] in " + url);
      port = rest.substr(close + 2);
    }
  } else if (auto colon = rest.find(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  bool portGiven = !port.empty() || (rest.find(':') != std::string::npos && rest.front() != '[');
  if (portGiven) {
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) == 0 || std::stoi(port) > 65535) {
      return Unexpected("--namer: invalid port in " + url);
    }
    e.port = static_cast<std::uint16_t>(std::stoi(port));
  }
  if (host.empty()) return Unexpected("--namer: no host in " + url);
  e.host = host;
  // A command-line tool may block on the system's resolver.
  auto addr = runtime::SocketAddress::resolveBlocking(host, e.port);
  if (!addr) return Unexpected("--namer: " + addr.error());
  e.addr = *addr;
  return e;
}

// One request to the namer service, run to completion.
Expected<runtime::HttpResult, std::string> call(const RemoteOptions& o, const std::string& method,
                                                const std::string& target, std::string body = {},
                                                runtime::HttpHeaders headers = {}) {
  auto ep = parseNamerUrl(o.namer);
  if (!ep) return Unexpected(ep.error());
  const runtime::SocketAddress* addr = &*ep->addr;
  runtime::Loop loop;
  runtime::HttpCall::Request req;
  req.method = method;
  req.target = target;
  req.host = ep->host + ":" + std::to_string(ep->port);
  req.headers = std::move(headers);
  if (!o.token.empty()) req.headers.add("Authorization", "Bearer " + o.token);
  req.body = std::move(body);
  req.timeoutMs = 10'000;
  std::optional<Expected<runtime::HttpResult, std::string>> result;
  auto c = runtime::fetch(loop, *addr, std::move(req), [&](Expected<runtime::HttpResult, std::string> r) {
    result = std::move(r);
    loop.stop();
  });
  loop.run();
  c.reset();
  loop.drainDeferred();
  if (!result) return Unexpected(std::string("no answer from the namer service"));
  if (!*result) return Unexpected("the namer service at " + o.namer + ": " + result->error());
  return std::move(**result);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Prints a refusal the way a person can act on; the exit code.
int refused(const std::string& what, const runtime::HttpResult& r) {
  std::cerr << "switchyard: " << what << ": " << r.status << " " << trimmed(r.body) << "\n";
  return 1;
}

std::string versionOf(const runtime::HttpResult& r) {
  auto tag = r.headers.get("etag");
  std::string v(tag.value_or(""));
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

// For `dtab test --dtab-file` without --namers: every path under /# is taken
// as bound as it is, so cases can name the namer path a dtab leads to.
class AnyNamer final : public dtab::Namer {
 public:
  dtab::NamerResult lookup(const dtab::Path& residual) const override {
    dtab::BoundName b{dtab::Path{"#"} + residual, {}, dtab::Addr::bound({})};
    return dtab::NameTree<dtab::Name>::leaf(dtab::Name(std::move(b)));
  }
};

std::string nsPath(const std::string& ns) { return "/api/1/dtabs/" + runtime::percentEncode(ns); }

int runList(const RemoteOptions& o) {
  auto r = call(o, "GET", "/api/1/dtabs");
  if (!r) return std::cerr << "switchyard: " << r.error() << "\n", 2;
  if (r->status != 200) return refused("list", *r);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_array()) return std::cerr << "switchyard: the namer service sent no namespace list\n", 2;
  for (const auto& n : j) {
    if (n.is_string()) std::cout << n.get<std::string>() << "\n";
  }
  return 0;
}

int runGet(const RemoteOptions& o) {
  runtime::HttpHeaders h;
  h.add("Accept", "application/dtab");
  auto r = call(o, "GET", nsPath(o.ns), {}, std::move(h));
  if (!r) return std::cerr << "switchyard: " << r.error() << "\n", 2;
  if (r->status != 200) return refused("get " + o.ns, *r);
  // The version goes to stderr, so stdout is a dtab file as is.
  std::cerr << "# namespace " << o.ns << " version " << versionOf(*r);
  if (auto base = r->headers.get("x-switchyard-base")) std::cerr << " base " << *base;
  std::cerr << "\n";
  auto d = dtab::Dtab::parse(r->body);
  if (!d) {
    std::cout << r->body << "\n";
    return 0;
  }
  for (const auto& e : d->entries()) std::cout << e.show() << ";\n";
  return 0;
}

int runWrite(const RemoteOptions& o, const std::string& method) {
  std::string text;
  if (!readFile(o.file, text)) return 2;
  // Checked here first, so a typo is reported with its place in the file.
  if (auto d = dtab::Dtab::parse(text); !d) {
    std::cerr << "switchyard: " << o.file << ": " << d.error().message() << "\n";
    return 1;
  }
  runtime::HttpHeaders h;
  h.add("Content-Type", "application/dtab");
  std::string version = o.version;
  if (method == "PUT") {
    if (version.empty()) {
      // The version this update is based on: a change made by someone else
      // between now and the write is reported, not overwritten.
      auto cur = call(o, "GET", nsPath(o.ns));
      if (!cur) return std::cerr << "switchyard: " << cur.error() << "\n", 2;
      if (cur->status != 200) return refused("update " + o.ns, *cur);
      version = versionOf(*cur);
    }
    if (!version.empty()) h.add("If-Match", "\"" + version + "\"");
  }
  std::string target = nsPath(o.ns);
  if (o.baseOpt && o.baseOpt->count()) target += "?base=" + runtime::percentEncode(o.base);
  auto r = call(o, method, target, text, std::move(h));
  if (!r) return std::cerr << "switchyard: " << r.error() << "\n", 2;
  if (r->status == 412) {
    std::cerr << "switchyard: update " << o.ns << ": the namespace changed since version " << version
              << " was read (" << trimmed(r->body) << "); get it again and retry\n";
    return 1;
  }
  if (r->status != 204 && r->status != 200) return refused((method == "POST" ? "create " : "update ") + o.ns, *r);
  std::cerr << "# namespace " << o.ns << " version " << versionOf(*r) << "\n";
  return 0;
}

int runDelete(const RemoteOptions& o) {
  runtime::HttpHeaders h;
  if (!o.version.empty()) h.add("If-Match", "\"" + o.version + "\"");
  auto r = call(o, "DELETE", nsPath(o.ns), {}, std::move(h));
  if (!r) return std::cerr << "switchyard: " << r.error() << "\n", 2;
  if (r->status != 204 && r->status != 200) return refused("delete " + o.ns, *r);
  return 0;
}

int runTest(const RemoteOptions& o) {
  bool local = !o.dtabFile.empty();
  if (!local && !o.namersFile.empty()) {
    std::cerr << "switchyard: --namers applies to --dtab-file only (a namespace is bound by the namer service's namers)\n";
    return 2;
  }
  if (local == !o.ns.empty()) {
    std::cerr << "switchyard: dtab test needs a NAMESPACE (on the namer service) or --dtab-file, not both\n";
    return 2;
  }
  std::string text;
  if (!readFile(o.cases, text)) return 2;
  std::optional<dtab::Delegator> delegator;
  if (local) {
    std::string dtabText;
    if (!readFile(o.dtabFile, dtabText)) return 2;
    auto d = dtab::Dtab::parse(dtabText);
    if (!d) return std::cerr << "switchyard: " << o.dtabFile << ": " << d.error().message() << "\n", 2;
    std::vector<dtab::NamerEntry> namers;
    if (!o.namersFile.empty()) {
      auto loaded = namer::loadStaticNamers(o.namersFile);
      if (!loaded) return std::cerr << "switchyard: --namers: " << loaded.error() << "\n", 2;
      namers = std::move(*loaded);
    } else {
      namers.push_back({dtab::Path{"#"}, std::make_shared<AnyNamer>()});
    }
    delegator.emplace(std::move(*d), std::move(namers));
  }
  std::istringstream in(text);
  std::string line;
  int lineNo = 0, cases = 0, failed = 0;
  while (std::getline(in, line)) {
    ++lineNo;
    auto hash = line.find('#');
    // `#` starts a comment only at the line's start or after a space: /#/ is a path.
    while (hash != std::string::npos && hash != 0 && line[hash - 1] != ' ' && line[hash - 1] != '\t') {
      hash = line.find('#', hash + 1);
    }
    std::string body = trimmed(line.substr(0, hash));
    if (body.find_first_not_of(" \t") == std::string::npos) continue;
    auto arrow = body.find("->");
    std::string where = o.cases + ":" + std::to_string(lineNo);
    if (arrow == std::string::npos) {
      std::cerr << "switchyard: " << where << ": expected `PATH -> EXPECTED`, got `" << body << "`\n";
      return 2;
    }
    auto path = dtab::Path::parse(body.substr(0, arrow));
    if (!path) return std::cerr << "switchyard: " << where << ": " << path.error().message() << "\n", 2;
    auto expectedTree = dtab::parseNameTree(body.substr(arrow + 2));
    if (!expectedTree) return std::cerr << "switchyard: " << where << ": " << expectedTree.error().message() << "\n", 2;
    std::string expected = dtab::show(*expectedTree);
    std::string got;
    if (local) {
      auto b = delegator->bind(*path);
      got = b ? dtab::show(*b) : "error: " + b.error().message;
    } else {
      auto r = call(o, "GET", "/api/1/bind/" + runtime::percentEncode(o.ns) + "?path=" + runtime::percentEncode(path->show()));
      if (!r) return std::cerr << "switchyard: " << r.error() << "\n", 2;
      if (r->status != 200) {
        got = "error: " + std::to_string(r->status) + " " + trimmed(r->body);
      } else {
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        auto t = namer::boundTreeFromJson(j);
        got = t ? dtab::show(*t) : "error: " + t.error();
      }
    }
    ++cases;
    if (got == expected) {
      std::cout << "ok   " << path->show() << " -> " << got << "\n";
    } else {
      ++failed;
      std::cout << "FAIL " << path->show() << " -> " << got << " (expected " << expected << ", " << where << ")\n";
    }
  }
  std::cout << cases << " case(s), " << failed << " failed\n";
  return failed > 0 ? 1 : 0;
}

}  // namespace

Run addDtabRemoteCommands(CLI::App* dtab) {
  auto o = std::make_shared<RemoteOptions>();
  const char* env = std::getenv("SWITCHYARD_NAMER");
  o->namer = env && *env ? env : "http://127.0.0.1:4180";
  if (const char* t = std::getenv("SWITCHYARD_TOKEN")) o->token = t;
  auto common = [&](CLI::App* c) {
    c->add_option("--namer", o->namer, "The namer service's API (default http://127.0.0.1:4180 or $SWITCHYARD_NAMER)");
    c->add_option("--token", o->token, "API token for writes (default $SWITCHYARD_TOKEN)");
  };
  CLI::App* list = dtab->add_subcommand("list", "List the namer service's namespaces");
  common(list);
  CLI::App* get = dtab->add_subcommand("get", "Print a namespace's dtab (its version goes to stderr)");
  common(get);
  get->add_option("NAMESPACE", o->ns)->required();
  CLI::App* create = dtab->add_subcommand("create", "Create a namespace from a dtab file");
  common(create);
  create->add_option("NAMESPACE", o->ns)->required();
  create->add_option("FILE", o->file)->required();
  o->baseOpt = create->add_option("--base", o->base, "A namespace whose dtab comes first (a tenant's base)");
  CLI::App* update = dtab->add_subcommand(
      "update", "Replace a namespace's dtab; a change made since the version read is reported, not overwritten");
  common(update);
  update->add_option("NAMESPACE", o->ns)->required();
  update->add_option("FILE", o->file)->required();
  update->add_option("--version", o->version, "The version the change is based on (default: read it now)");
  auto* updateBase = update->add_option("--base", o->base, "Set the base namespace (empty: none)");
  CLI::App* del = dtab->add_subcommand("delete", "Delete a namespace");
  common(del);
  del->add_option("NAMESPACE", o->ns)->required();
  del->add_option("--version", o->version, "Delete only at this version");
  CLI::App* test = dtab->add_subcommand(
      "test", "Check `PATH -> EXPECTED` cases against a namespace (or --dtab-file); exit 1 on any mismatch");
  common(test);
  test->add_option("NAMESPACE", o->ns, "A namespace on the namer service");
  test->add_option("--cases", o->cases, "The cases file: one `PATH -> EXPECTED BOUND NAME` per line")->required();
  test->add_option("--dtab-file", o->dtabFile, "Test a local dtab file instead of a namespace");
  test->add_option("--namers", o->namersFile,
                   "With --dtab-file: static namers (as for `switchyard delegate`); without, every /# path is bound as is");
  return [o, list, get, create, update, updateBase, del, test]() -> int {
    if (list->parsed()) return runList(*o);
    if (get->parsed()) return runGet(*o);
    if (create->parsed()) return runWrite(*o, "POST");
    if (update->parsed()) {
      o->baseOpt = updateBase;
      return runWrite(*o, "PUT");
    }
    if (del->parsed()) return runDelete(*o);
    if (test->parsed()) return runTest(*o);
    return -1;  // not ours
  };
}

}  // namespace switchyard::app
