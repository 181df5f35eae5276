#include "dtab/dtab.h"

#include <catch2/catch.hpp>

using namespace switchyard::dtab;

namespace {
Dtab dtabOf(const char* text) {
  auto d = Dtab::parse(text);
  INFO(text);
  REQUIRE(d);
  return *d;
}
Path pathOf(const char* text) {
  auto p = Path::parse(text);
  REQUIRE(p);
  return *p;
}
}  // namespace

TEST_CASE("Dtab parse and show", "[dtab]") {
  Dtab d = dtabOf(" /svc => /#/io.l5d.fs ;\n# comment\n/svc/*/x => /a | /b ;");
  REQUIRE(d.size() == 2);
  CHECK(d.show() == "/svc=>/#/io.l5d.fs;/svc/*/x=>/a | /b");
  CHECK(d.entries()[1].prefix().elems()[1].wildcard);
  CHECK(dtabOf(d.show().c_str()) == d);
  CHECK(dtabOf("").empty());
  CHECK(dtabOf("  # nothing\n").empty());
}

TEST_CASE("Dtab parse errors name line, column and what was expected", "[dtab]") {
  auto d = Dtab::parse("/a => /b;\n/c => /d\n/e => /f");
  REQUIRE_FALSE(d);
  CHECK(d.error().line == 3);
  CHECK(d.error().column == 1);
  CHECK(d.error().message() == "line 3, column 1: ';' or end of input expected but '/' found at "
                               "'/a => /b;\\x0a/c => /d\\x0a[/]e => /f'");
  auto e = Dtab::parse("/a => /b/*");
  REQUIRE_FALSE(e);
  CHECK(e.error().expected == "label");
  auto f = Dtab::parse("/a/*b => /c");
  REQUIRE_FALSE(f);
  CHECK(f.error().column == 5);
}

TEST_CASE("Dtab lookup: later entries first, residual appended", "[dtab]") {
  Dtab d = dtabOf("/svc => /a; /svc/x => /b & /c; /svc/* => /d");
  CHECK(show(d.lookup(pathOf("/svc/x/y"))) == "/d/y | /b/y & /c/y | /a/x/y");
  CHECK(show(d.lookup(pathOf("/svc"))) == "/a");
  CHECK(d.lookup(pathOf("/other")).isNeg());
  auto m = d.matches(pathOf("/svc/q"));
  REQUIRE(m.size() == 2);
  CHECK(m[0].index == 2);
  CHECK(m[1].index == 0);
}

TEST_CASE("Dtab concatenation puts the later dtab's entries last", "[dtab]") {
  Dtab base = dtabOf("/svc => /a");
  Dtab local = dtabOf("/svc => /b");
  Dtab both = base + local;
  CHECK(both.show() == "/svc=>/a;/svc=>/b");
  CHECK(show(both.lookup(pathOf("/svc"))) == "/b | /a");
  CHECK((base + Dtab{}) == base);
  CHECK((base + local.entries()[0]) == both);
}

TEST_CASE("Dtab simplified drops entries that name nothing", "[dtab]") {
  Dtab d = dtabOf("/a => ~ | ~; /b => ~ | /c; /d => !");
  CHECK(d.simplified().show() == "/b=>/c;/d=>!");
}
