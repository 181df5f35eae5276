#include "dtab/delegator.h"

#include <catch2/catch.hpp>
#include <map>
#include <memory>

using namespace switchyard;
using namespace switchyard::dtab;

namespace {

Path pathOf(const std::string& text) {
  auto p = Path::parse(text);
  REQUIRE(p);
  return *p;
}

Delegator delegatorOf(const std::string& text, std::vector<NamerEntry> namers = {},
                      DelegateOptions options = {}) {
  auto d = Dtab::parse(text);
  INFO(text);
  REQUIRE(d);
  return Delegator(*d, std::move(namers), options);
}

// Binds /<prefix>/<name> for the names it knows; counts its lookups.
class MapNamer final : public Namer {
 public:
  MapNamer(Path prefix, std::map<std::string, std::string> names)
      : prefix_(std::move(prefix)), names_(std::move(names)) {}
  NamerResult lookup(const Path& r) const override {
    ++calls;
    if (r.empty() || !names_.count(r[0])) return NameTree<Name>::neg();
    if (names_.at(r[0]) == "error") return Unexpected("boom on " + (prefix_ + r).show());
    return NameTree<Name>::leaf(BoundName{prefix_ + r.take(1), r.drop(1), Addr::pending()});
  }
  mutable int calls = 0;

 private:
  Path prefix_;
  std::map<std::string, std::string> names_;
};

std::string bound(const Delegator& d, const std::string& path) {
  auto r = d.bind(pathOf(path));
  if (!r) return std::string("error:") + kindName(r.error().kind);
  return show(*r);
}

}  // namespace

TEST_CASE("bind: namers are asked only when the dtab has no rewrite", "[delegator]") {
  auto fs = std::make_shared<MapNamer>(Path{"#", "fs"}, std::map<std::string, std::string>{
                                                           {"hello", "ok"}, {"bad", "error"}});
  Delegator d = delegatorOf("/svc => /#/fs", {{Path{"#", "fs"}, fs}});
  CHECK(bound(d, "/svc/hello/extra") == "/#/fs/hello");
  CHECK(bound(d, "/svc/nope") == "~");
  CHECK(bound(d, "/svc/bad") == "error:namer_error");
  auto r = d.bind(pathOf("/svc/hello/extra"));
  REQUIRE(r);
  CHECK(r->value().residual == Path{"extra"});
}

TEST_CASE("bind: Alt falls back past Neg and stops at Fail and Empty", "[delegator]") {
  auto d = delegatorOf("/a => /$/inet/127.0.0.1/1; /b => ~; /f => !; /e => $;"
                       "/t1 => /b | /a; /t2 => /f | /a; /t3 => /e | /a; /t4 => /b | /b");
  CHECK(bound(d, "/t1") == "/$/inet/127.0.0.1/1");
  CHECK(bound(d, "/t2") == "!");
  CHECK(bound(d, "/t3") == "$");
  CHECK(bound(d, "/t4") == "~");
}

TEST_CASE("bind: Union keeps what binds and drops Neg and Fail", "[delegator]") {
  auto d = delegatorOf("/a => /$/inet/127.0.0.1/1; /b => /$/inet/127.0.0.1/2;"
                       "/u1 => 0.2*/a & 0.8*/b; /u2 => 0.2*/a & 0.8*/nope; /u3 => ! & !;"
                       "/u4 => (! & !) | /b");
  CHECK(bound(d, "/u1") == "0.20*/$/inet/127.0.0.1/1 & 0.80*/$/inet/127.0.0.1/2");
  CHECK(bound(d, "/u2") == "/$/inet/127.0.0.1/1");
  CHECK(bound(d, "/u3") == "~");
  CHECK(bound(d, "/u4") == "/$/inet/127.0.0.1/2");
}

TEST_CASE("bind: errors do not fall back but a union survives a failed branch", "[delegator]") {
  auto d = delegatorOf("/ok => /$/inet/127.0.0.1/1; /x => /$/unknown/thing;"
                       "/alt => /x | /ok; /u => /x & /ok");
  CHECK(bound(d, "/alt") == "error:unknown_namer");
  CHECK(bound(d, "/u") == "/$/inet/127.0.0.1/1");
  auto r = d.bind(pathOf("/x"));
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("/$/unknown") != std::string::npos);
  CHECK(r.error().message.find("inet") != std::string::npos);  // lists what exists
}

TEST_CASE("bind: depth limit counts lookups along one chain", "[delegator]") {
  // n rewrites then one namer lookup: n + 1 lookups.
  auto chain = [](int rewrites) {
    std::string text;
    for (int i = 0; i < rewrites; ++i) {
      text += "/p" + std::to_string(i) + "=>/p" + std::to_string(i + 1) + ";";
    }
    text += "/p" + std::to_string(rewrites) + "=>/$/inet/127.0.0.1/80";
    return text;
  };
  // chain(98): 98 rewrites, 1 to inet, 1 namer lookup = 100 lookups, the most
  // allowed; chain(99) needs 101.
  CHECK(bound(delegatorOf(chain(98)), "/p0") == "/$/inet/127.0.0.1/80");
  CHECK(bound(delegatorOf(chain(99)), "/p0") == "error:max_depth");
  DelegateOptions small;
  small.maxDepth = 5;
  CHECK(bound(delegatorOf(chain(3), {}, small), "/p0") == "/$/inet/127.0.0.1/80");
  CHECK(bound(delegatorOf(chain(4), {}, small), "/p0") == "error:max_depth");
}

TEST_CASE("bind: a loop is reported with its cycle", "[delegator]") {
  auto d = delegatorOf("/a => /b; /b => /c; /c => /a");
  auto r = d.bind(pathOf("/a"));
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == DelegateError::Kind::MaxDepth);
  CHECK(r.error().message.find("/a -> /b -> /c -> /a") != std::string::npos);
  auto grow = delegatorOf("/s => /s/x").bind(pathOf("/s"));
  REQUIRE_FALSE(grow);
  CHECK(grow.error().message.find("keeps rewriting") != std::string::npos);
}

TEST_CASE("bind: exponential unions hit the lookup budget before the clock", "[delegator]") {
  std::string text;
  for (int i = 0; i < 40; ++i) {
    text += "/n" + std::to_string(i) + " => /n" + std::to_string(i + 1) + " & /n" +
            std::to_string(i + 1) + ";";
  }
  auto r = delegatorOf(text).bind(pathOf("/n0"));
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == DelegateError::Kind::TooLarge);
  DelegateTree t = delegatorOf(text).delegate(pathOf("/n0"));
  CHECK(t.kind != DelegateTree::Kind::Leaf);  // finished, with Exception nodes inside
}

TEST_CASE("bind: namers are tried in order and Neg moves on to the next", "[delegator]") {
  auto first = std::make_shared<MapNamer>(Path{"#", "x"}, std::map<std::string, std::string>{{"a", "ok"}});
  auto second = std::make_shared<MapNamer>(Path{"#", "x"}, std::map<std::string, std::string>{{"b", "ok"}});
  Delegator d = delegatorOf("", {{Path{"#", "x"}, first}, {Path{"#", "x"}, second}});
  CHECK(bound(d, "/#/x/a") == "/#/x/a");
  CHECK(bound(d, "/#/x/b") == "/#/x/b");
  CHECK(first->calls == 2);
  CHECK(second->calls == 1);
}

TEST_CASE("delegate: records every step and branch", "[delegator]") {
  auto d = delegatorOf("/svc => /a | /b; /a => !; /b => /$/inet/127.0.0.1/8080");
  DelegateTree t = d.delegate(pathOf("/svc/x"));
  // /svc/x has one rewrite into an Alt about the same path: the Delegate
  // collapses into the Alt, which takes the root's (absent) dentry.
  REQUIRE(t.kind == DelegateTree::Kind::Alt);
  CHECK(t.path == pathOf("/svc/x"));
  CHECK_FALSE(t.dentry);
  REQUIRE(t.children.size() == 2);
  CHECK(t.children[0].kind == DelegateTree::Kind::Delegate);
  CHECK(t.children[0].children[0].kind == DelegateTree::Kind::Fail);
  const DelegateTree& leaf = t.children[1].children[0];
  REQUIRE(leaf.kind == DelegateTree::Kind::Leaf);
  CHECK(leaf.bound->id == pathOf("/$/inet/127.0.0.1/8080"));
  CHECK(leaf.bound->residual == Path{"x"});
  CHECK(leaf.dentry->show() == "/b=>/$/inet/127.0.0.1/8080");
}

TEST_CASE("delegate: a loop ends in an Exception node", "[delegator]") {
  DelegateTree t = delegatorOf("/a => /b; /b => /a").delegate(pathOf("/a"));
  const DelegateTree* n = &t;
  int depth = 0;
  while (n->kind == DelegateTree::Kind::Delegate) {
    n = &n->children.front();
    ++depth;
  }
  CHECK(n->kind == DelegateTree::Kind::Exception);
  CHECK(n->message == "Max recursion level reached.");
  CHECK(depth == 100);  // one Delegate per allowed lookup
}
