#include "router/config.h"

#include <catch2/catch.hpp>

#include "plugins/registry.h"
#include "router/builtin_plugins.h"

using namespace switchyard;

namespace {

Expected<router::Config, std::vector<std::string>> check(const std::string& yaml) {
  auto doc = runtime::parseConfig(yaml, "linkerd.yaml");
  REQUIRE(doc);
  static const router::PluginRegistry registry = plugins::allPlugins();
  return router::checkConfig(*doc, registry);
}

bool anyContains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x.find(s) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a minimal Linkerd config gets Linkerd's defaults", "[config]") {
  auto c = check("routers:\n- protocol: http\n  dtab: /svc => /$/inet/127.0.0.1/8080\n");
  REQUIRE(c);
  CHECK(c->admin.ip == "127.0.0.1");
  CHECK(c->admin.port == 9990);
  REQUIRE(c->routers.size() == 1);
  const auto& rt = c->routers[0];
  CHECK(rt.label == "http");
  REQUIRE(rt.servers.size() == 1);
  CHECK(rt.servers[0].port == 4140);
  CHECK(rt.servers[0].ip == "127.0.0.1");
  REQUIRE(rt.identifiers.size() == 1);
  CHECK(rt.identifiers[0].kind == "io.l5d.header.token");
  CHECK(rt.interpreter.kind == "default");
  CHECK(rt.client.loadBalancer->kind == "p2c");
  CHECK(rt.dstPrefix.show() == "/svc");
  CHECK(rt.dtab.show() == "/svc=>/$/inet/127.0.0.1/8080");
}

TEST_CASE("the hello-world config of Linkerd's docs loads", "[config]") {
  auto c = check(R"(
admin: {ip: 0.0.0.0, port: 9990}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: outgoing
  identifier:
  - kind: io.l5d.path
    segments: 2
    consume: true
  - kind: io.l5d.header.token
  dtab: |
    /svc => /#/io.l5d.fs;
  servers:
  - port: 4140
    ip: 0.0.0.0
    clearContext: true
  client:
    loadBalancer: {kind: ewma, decayTimeMs: 5000}
    hostConnectionPool: {maxSize: 100, idleTimeMs: 2000}
usage:
  orgId: example
)");
  if (!c) FAIL(c.error().front());
  CHECK(c->namers.at(0).prefix.show() == "/#/io.l5d.fs");
  CHECK(c->routers[0].identifiers.size() == 2);
  CHECK(c->routers[0].servers[0].clearContext);
  CHECK(c->routers[0].client.poolMaxSize == 100);
  CHECK(anyContains(c->warnings, "usage: ignored"));
}

TEST_CASE("config errors name their path, and all are reported", "[config]") {
  auto c = check(R"(
routers:
- protocol: http
  identifier: {kind: io.l5d.foo}
  dtab: /svc => /a &
  servers: [{port: 99999}]
  bogus: 1
- protocol: thrift
namers:
- kind: io.l5d.marathon
)");
  REQUIRE_FALSE(c);
  const auto& e = c.error();
  CHECK(anyContains(e, "routers[0].identifier.kind: unknown identifier kind \"io.l5d.foo\"; known: "
                       "io.l5d.header, io.l5d.header.token, io.l5d.methodAndHost, io.l5d.path, io.l5d.static"));
  CHECK(anyContains(e, "routers[0].dtab: line 1, column 13: "));
  CHECK(anyContains(e, "routers[0].servers[0].port: expected an integer 0-65535, got \"99999\""));
  CHECK(anyContains(e, "routers[0].bogus: unknown key; known: "));
  CHECK(anyContains(e, "routers[1].protocol: unknown protocol \"thrift\""));
  CHECK(anyContains(e, "namers[0].kind: unknown namer kind \"io.l5d.marathon\"; known: io.l5d.dnssrv, io.l5d.fs"));
}

TEST_CASE("duplicate labels and addresses are refused", "[config]") {
  auto c = check(R"(
routers:
- {protocol: http, servers: [{port: 4140}]}
- {protocol: http, servers: [{port: 4140}]}
)");
  REQUIRE_FALSE(c);
  CHECK(anyContains(c.error(), "routers[1].label: \"http\" is used by another router"));
  CHECK(anyContains(c.error(), "routers[1].servers[0]: 127.0.0.1:4140 is already used"));
}
