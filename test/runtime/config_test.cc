#include <catch2/catch.hpp>

#include "runtime/config_node.h"
#include "runtime/config_reader.h"

using namespace switchyard::runtime;

TEST_CASE("YAML and JSON read into one tree with positions", "[config]") {
  auto y = parseConfig("a: 1\nb:\n  - x\n  - 'y'\nc: {d: true}\n", "t.yaml");
  REQUIRE(y);
  REQUIRE(y->isMap());
  CHECK(y->find("a")->text() == "1");
  CHECK_FALSE(y->find("a")->quoted());
  CHECK(y->find("b")->items()[1].quoted());
  CHECK(y->find("b")->items()[1].line() == 4);
  CHECK(y->find("c")->find("d")->text() == "true");

  auto j = parseConfig(R"({"a": 1, "b": ["x", "y"], "c": {"d": true}})", "t.json");
  REQUIRE(j);
  CHECK(j->find("b")->items().size() == 2);
}

TEST_CASE("config syntax errors and duplicate keys name the place", "[config]") {
  auto bad = parseConfig("a: [1, 2\n", "bad.yaml");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().rfind("bad.yaml:", 0) == 0);
  auto dup = parseConfig("a: 1\nb: 2\na: 3\n", "dup.yaml");
  REQUIRE_FALSE(dup);
  CHECK(dup.error() == "dup.yaml:3:1: duplicate key \"a\"");
  std::string deep(200, '[');
  CHECK_FALSE(parseConfig(deep + std::string(200, ']'), "deep.yaml"));
}

TEST_CASE("ConfigReader checks types and reports unknown keys", "[config]") {
  auto doc = parseConfig("port: http\non: yes\nn: 70000\nextra: 1\nlist: {a: 1}\n", "c.yaml");
  REQUIRE(doc);
  ConfigProblems problems;
  ConfigReader r(*doc, "server", problems);
  CHECK(r.integer("port", 4140, 0, 65535) == 4140);
  CHECK(r.boolean("on", false));
  CHECK(r.integer("n", 1, 0, 65535) == 1);
  CHECK(r.list("list", true).size() == 1);
  CHECK(r.string("missing", "dflt") == "dflt");
  r.finish();
  REQUIRE(problems.errors().size() == 3);
  CHECK(problems.errors()[0] == "server.port: expected an integer 0-65535, got \"http\"");
  CHECK(problems.errors()[1] == "server.n: expected an integer 0-65535, got \"70000\"");
  CHECK(problems.errors()[2] == "server.extra: unknown key; known: list, missing, n, on, port");
}
