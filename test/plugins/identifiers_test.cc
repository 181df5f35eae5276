#include <catch2/catch.hpp>

#include "plugins/registry.h"
#include "router/config.h"

using namespace switchyard;

namespace {

// Builds the identifier a config block names, as the router will.
std::unique_ptr<router::Identifier> make(const std::string& block, const char* prefix = "/svc") {
  static const router::PluginRegistry registry = plugins::allPlugins();
  auto doc = runtime::parseConfig(block, "id.yaml");
  REQUIRE(doc);
  runtime::ConfigProblems problems;
  auto k = registry.read(router::PluginCategory::Identifier, runtime::ConfigReader(*doc, "identifier", problems));
  if (!problems.ok()) FAIL(problems.errors().front());
  REQUIRE(k);
  return k->plugin->makeIdentifier(k->settings.get(), {*dtab::Path::parse(prefix)});
}

runtime::RequestHead request(std::string method, std::string target,
                             std::vector<std::pair<std::string, std::string>> headers, int minor = 1) {
  runtime::RequestHead h;
  h.method = std::move(method);
  h.target = std::move(target);
  h.versionMinor = minor;
  for (auto& [k, v] : headers) h.headers.add(k, v);
  return h;
}

std::string name(const router::Identifier& id, const runtime::RequestHead& req) {
  auto r = id.identify(req);
  return r ? r->name.show() : "error: " + r.error();
}

}  // namespace

TEST_CASE("io.l5d.header.token names by Host, the value as one element", "[identifiers]") {
  auto id = make("kind: io.l5d.header.token");
  CHECK(name(*id, request("GET", "/", {{"host", "hello"}})) == "/svc/hello");
  CHECK(name(*id, request("GET", "/", {{"Host", "web:8080"}})) == "/svc/web:8080");
  CHECK(name(*id, request("GET", "/", {})) == "error: io.l5d.header.token: the Host header is missing or empty");
  auto custom = make("{kind: io.l5d.header.token, header: X-Svc}", "/srv");
  CHECK(name(*custom, request("GET", "/", {{"x-svc", "a b"}})) == "/srv/\\x61\\x20\\x62");
}

TEST_CASE("io.l5d.methodAndHost", "[identifiers]") {
  auto id = make("kind: io.l5d.methodAndHost");
  CHECK(name(*id, request("GET", "/a/b", {{"Host", "web"}})) == "/svc/1.1/GET/web");
  CHECK(name(*id, request("POST", "/a", {}, 0)) == "/svc/1.0/POST");
  CHECK(name(*id, request("GET", "/", {})).rfind("error: ", 0) == 0);
  auto uri = make("{kind: io.l5d.methodAndHost, httpUriInDst: true}");
  CHECK(name(*uri, request("GET", "http://web/a/b?q=1", {{"Host", "web"}})) == "/svc/1.1/GET/web/a/b");
}

TEST_CASE("io.l5d.path takes and may consume segments", "[identifiers]") {
  auto two = make("{kind: io.l5d.path, segments: 2, consume: true}");
  auto r = two->identify(request("GET", "/users/v2/42?x=1", {}));
  REQUIRE(r);
  CHECK(r->name.show() == "/svc/users/v2");
  CHECK(r->target == "/42?x=1");
  auto all = two->identify(request("GET", "/users/v2", {}));
  REQUIRE(all);
  CHECK(all->target == "/");
  CHECK(name(*two, request("GET", "/users", {})) ==
        "error: io.l5d.path: the request path /users has fewer than 2 segment(s)");
  auto keep = make("kind: io.l5d.path");
  auto k = keep->identify(request("GET", "http://h/users/1", {}));
  REQUIRE(k);
  CHECK(k->name.show() == "/svc/users");
  CHECK_FALSE(k->target);
}

TEST_CASE("io.l5d.header reads a path; io.l5d.static is fixed", "[identifiers]") {
  auto id = make("kind: io.l5d.header");
  CHECK(name(*id, request("GET", "/", {{"l5d-name", "/hello/v2"}})) == "/svc/hello/v2");
  CHECK(name(*id, request("GET", "/", {{"l5d-name", "hello"}})).find("not a path") != std::string::npos);
  auto st = make("{kind: io.l5d.static, path: /svc/fixed}");
  CHECK(name(*st, request("GET", "/x", {})) == "/svc/fixed");
}

TEST_CASE("a chain of identifiers tries each in order", "[identifiers]") {
  std::vector<std::unique_ptr<router::Identifier>> chain;
  chain.push_back(make("{kind: io.l5d.path, segments: 2}"));
  chain.push_back(make("kind: io.l5d.header.token"));
  router::IdentifierChain ids(std::move(chain));
  CHECK(name(ids, request("GET", "/a/b", {{"Host", "h"}})) == "/svc/a/b");
  CHECK(name(ids, request("GET", "/a", {{"Host", "h"}})) == "/svc/h");
  auto none = ids.identify(request("GET", "/a", {}));
  REQUIRE_FALSE(none);
  CHECK(none.error().find("; ") != std::string::npos);
}
