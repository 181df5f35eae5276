#include "namer/delegate_json.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "dtab/delegator.h"

using namespace switchyard;
using namespace switchyard::dtab;
using nlohmann::json;

TEST_CASE("delegate tree JSON uses Linkerd's shapes", "[delegate_json]") {
  auto dt = Dtab::parse("/svc => 0.25*/a & 0.75*/b; /a => ~; /b => /$/inet/127.0.0.1/80");
  REQUIRE(dt);
  json j = namer::delegateTreeToJson(Delegator(*dt).delegate(Path{"svc"}));
  // One rewrite into a union about the same path: the union replaces the
  // Delegate at the root.
  CHECK(j["type"] == "union");
  CHECK(j["path"] == "/svc");
  CHECK_FALSE(j.contains("dentry"));
  REQUIRE(j["union"].size() == 2);
  CHECK(j["union"][0]["weight"] == 0.25);
  CHECK(j["union"][0]["tree"]["type"] == "delegate");
  CHECK(j["union"][0]["tree"]["delegate"]["type"] == "neg");
  CHECK(j["union"][0]["tree"]["delegate"]["path"] == "~");
  json leaf = j["union"][1]["tree"]["delegate"];
  CHECK(leaf["type"] == "leaf");
  CHECK(leaf["dentry"] == json{{"prefix", "/b"}, {"dst", "/$/inet/127.0.0.1/80"}});
  CHECK(leaf["bound"]["id"] == "/$/inet/127.0.0.1/80");
  CHECK(leaf["bound"]["path"] == "/");
  CHECK(leaf["bound"]["addr"] ==
        json::parse(R"({"type":"bound","addrs":[{"ip":"127.0.0.1","port":80,"meta":{}}],"meta":{}})"));
}

TEST_CASE("failed addrs carry their cause", "[delegate_json]") {
  json j = namer::addrToJson(Addr::failed("no DNS"));
  CHECK(j == json{{"type", "failed"}, {"cause", "no DNS"}});
  CHECK(namer::addrToJson(Addr::neg()) == json{{"type", "neg"}});
}
