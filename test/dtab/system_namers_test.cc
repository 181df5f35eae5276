#include "dtab/system_namers.h"

#include <catch2/catch.hpp>

#include "dtab/delegator.h"

using namespace switchyard::dtab;

namespace {
NamerResult lookup(const Path& p) {
  for (const auto& e : systemNamers()) {
    if (p.startsWith(e.prefix)) return e.namer->lookup(p.drop(e.prefix.size()));
  }
  FAIL("no system namer for " << p.show());
  return NameTree<Name>::neg();
}
NamerResult lookup(const std::string& path) {
  auto p = Path::parse(path);
  REQUIRE(p);
  return lookup(*p);
}
}  // namespace

TEST_CASE("IP literals in Java's and RFC 5952's forms", "[system_namers]") {
  CHECK(parseIpLiteral("127.0.0.1") == "127.0.0.1");
  CHECK(parseIpLiteral("127.1") == "127.0.0.1");
  CHECK(parseIpLiteral("10.1.2") == "10.1.0.2");
  CHECK(parseIpLiteral("2130706433") == "127.0.0.1");
  CHECK(parseIpLiteral("::1") == "::1");
  CHECK(parseIpLiteral("[2001:DB8:0:0:0:0:0:1]") == "2001:db8::1");
  CHECK_FALSE(parseIpLiteral("256.0.0.1"));
  CHECK_FALSE(parseIpLiteral("1.2.3.4.5"));
  CHECK_FALSE(parseIpLiteral("127..1"));
  CHECK_FALSE(parseIpLiteral("example.com"));
  CHECK_FALSE(parseIpLiteral(""));
}

TEST_CASE("/$/inet binds host and port, or port alone", "[system_namers]") {
  auto r = lookup("/$/inet/127.1/8080/rest");
  REQUIRE(r);
  REQUIRE(r->isLeaf());
  const auto& b = std::get<BoundName>(r->value());
  CHECK(b.id.show() == "/$/inet/127.1/8080");
  CHECK(b.residual.show() == "/rest");
  REQUIRE(b.addr.kind == Addr::Kind::Bound);
  CHECK(b.addr.endpoints.at(0).ip == "127.0.0.1");
  CHECK(b.addr.endpoints.at(0).port == 8080);

  auto portOnly = lookup("/$/inet/1234/foobar");
  REQUIRE(portOnly);
  CHECK(std::get<BoundName>(portOnly->value()).id.show() == "/$/inet/1234");

  auto hostile = lookup(Path{"$", "inet", "\x1b[31mx\n", "80"});
  REQUIRE(hostile);
  CHECK(std::get<BoundName>(hostile->value()).addr.error.find('\x1b') == std::string::npos);

  auto name = lookup("/$/inet/example.com/80");
  REQUIRE(name);
  const auto& unresolved = std::get<BoundName>(name->value()).addr;
  CHECK(unresolved.kind == Addr::Kind::Failed);
  CHECK(unresolved.error.find("example.com") != std::string::npos);
  CHECK(unresolved.error.find("DNS") != std::string::npos);

  CHECK_FALSE(lookup("/$/inet/host/notaport"));
  CHECK_FALSE(lookup("/$/inet"));
  auto range = lookup("/$/inet/127.0.0.1/70000");
  REQUIRE_FALSE(range);
  CHECK(range.error().find("70000") != std::string::npos);
}

TEST_CASE("Linkerd's io.buoyant system namers", "[system_namers]") {
  auto r = lookup("/$/io.buoyant.rinet/80/127.0.0.1/x");
  REQUIRE(r);
  CHECK(std::get<BoundName>(r->value()).id.show() == "/$/io.buoyant.rinet/80/127.0.0.1");

  auto hp = lookup("/$/io.buoyant.hostportPfx/pfx/web:http/x");
  REQUIRE(hp);
  CHECK(std::get<Path>(hp->value()).show() == "/pfx/web/http/x");
  auto ph = lookup(Path{"$", "io.buoyant.porthostPfx", "pfx", "web:8080"});
  REQUIRE(ph);
  CHECK(std::get<Path>(ph->value()) == Path{"pfx", "8080", "web"});
  auto twoColons = lookup(Path{"$", "io.buoyant.hostportPfx", "pfx", "a:b:80"});
  REQUIRE(twoColons);
  CHECK(twoColons->isNeg());
  auto shortRinet = lookup("/$/io.buoyant.rinet/80");
  REQUIRE(shortRinet);
  CHECK(shortRinet->isNeg());
  auto noPort = lookup("/$/io.buoyant.hostportPfx/pfx/web");
  REQUIRE(noPort);
  CHECK(noPort->isNeg());
  auto badPort = lookup("/$/io.buoyant.hostportPfx/pfx/web:HTTP");
  REQUIRE(badPort);
  CHECK(badPort->isNeg());
}

TEST_CASE("/$/nil and /$/fail", "[system_namers]") {
  auto nil = lookup("/$/nil/a/b");
  REQUIRE(nil);
  CHECK(nil->isEmpty());
  auto fail = lookup("/$/fail");
  REQUIRE(fail);
  CHECK(fail->isFail());
  CHECK(systemNamerNames().find("io.buoyant.rinet") != std::string::npos);
}
