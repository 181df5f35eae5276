// Runs every vector of the dtab conformance corpus (dtab-cases.json, from
// ../shared/conformance/) through the library. The expected values come from
// the file; nothing here restates them.

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dtab/delegator.h"
#include "dtab/dtab.h"
#include "namer/delegate_json.h"
#include "namer/static_namer.h"

using namespace switchyard;
using namespace switchyard::dtab;
using nlohmann::json;

namespace {

json loadCorpus() {
  std::ifstream in(SWITCHYARD_CONFORMANCE_DIR "/dtab-cases.json");
  REQUIRE(in);
  return json::parse(in);
}

Dtab dtabOf(const json& c, const char* key) {
  if (!c.contains(key)) return {};
  auto d = Dtab::parse(c[key].get<std::string>());
  REQUIRE(d);
  return *d;
}

Path pathOf(const json& c) {
  auto p = Path::parse(c["path"].get<std::string>());
  REQUIRE(p);
  return *p;
}

Delegator delegatorOf(const json& c) {
  std::vector<NamerEntry> namers;
  if (c.contains("namers")) {
    auto loaded = namer::parseStaticNamers(c["namers"].dump());
    REQUIRE(loaded);
    namers = *loaded;
  }
  return Delegator(dtabOf(c, "dtab") + dtabOf(c, "local_dtab"), std::move(namers));
}

template <class Parsed>
void checkParse(const json& c, const Parsed& parsed, const std::string& shown) {
  REQUIRE(bool(parsed) == c["ok"].get<bool>());
  if (parsed) CHECK(shown == c["show"].get<std::string>());
}

void runCase(const json& c) {
  const std::string kind = c["kind"];
  if (kind == "parse_path") {
    auto p = Path::parse(c["input"].get<std::string>());
    checkParse(c, p, p ? p->show() : "");
  } else if (kind == "parse_tree") {
    auto t = parseNameTree(c["input"].get<std::string>());
    checkParse(c, t, t ? show(*t) : "");
  } else if (kind == "parse_dtab") {
    auto d = Dtab::parse(c["input"].get<std::string>());
    checkParse(c, d, d ? d->show() : "");
    if (d) CHECK(d->size() == c["entries"].get<std::size_t>());
  } else if (kind == "lookup") {
    CHECK(show(dtabOf(c, "dtab").lookup(pathOf(c))) == c["result"].get<std::string>());
  } else if (kind == "eval_tree") {
    auto t = parseNameTree(c["input"].get<std::string>());
    REQUIRE(t);
    CHECK(show(t->simplified()) == c["simplified"].get<std::string>());
    auto leaves = t->eval();
    if (c["eval"].is_null()) {
      CHECK_FALSE(leaves);
    } else {
      REQUIRE(leaves);
      std::vector<std::string> shown;
      for (const auto& p : *leaves) shown.push_back(p.show());
      std::sort(shown.begin(), shown.end());
      CHECK(shown == c["eval"].get<std::vector<std::string>>());
    }
  } else if (kind == "delegate") {
    auto r = delegatorOf(c).bind(pathOf(c));
    if (c["bound"].is_null()) {
      REQUIRE_FALSE(r);
      CHECK(kindName(r.error().kind) == c["error"].get<std::string>());
      return;
    }
    if (!r) FAIL(r.error().message);
    CHECK(show(*r) == c["bound"].get<std::string>());
    if (c.contains("residual")) {
      std::map<std::string, std::string> residual;
      auto leaves = r->eval();
      REQUIRE(leaves);
      for (const auto& b : *leaves) residual[b.id.show()] = b.residual.show();
      CHECK(residual == c["residual"].get<std::map<std::string, std::string>>());
    }
  } else if (kind == "delegate_tree") {
    json got = namer::delegateTreeToJson(delegatorOf(c).delegate(pathOf(c)));
    INFO("got " << got.dump());
    CHECK(got == c["expected_json"]);
  } else {
    FAIL("unknown case kind " << kind);
  }
}

}  // namespace

TEST_CASE("dtab conformance corpus", "[conformance]") {
  json corpus = loadCorpus();
  REQUIRE(corpus.size() > 100);
  std::size_t i = 0;
  for (const auto& c : corpus) {
    std::string label = "#" + std::to_string(i++) + " " + c["kind"].get<std::string>() + " " +
                        (c.contains("input") ? c["input"].dump() : c.value("path", ""));
    if (c.contains("dtab")) label += " dtab=" + c["dtab"].get<std::string>().substr(0, 200);
    SECTION(label) { runCase(c); }
  }
}
