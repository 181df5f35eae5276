// Input an attacker or a broken script could send: it must fail cleanly
// (a ParseError or a DelegateError), never crash, hang, or exhaust the stack.

#include <catch2/catch.hpp>
#include <string>

#include "dtab/delegator.h"
#include "dtab/dtab.h"

using namespace switchyard::dtab;

TEST_CASE("deeply nested parentheses are refused instead of recursed into", "[hostile]") {
  std::string deep = "/a=>" + std::string(100'000, '(') + "/b" + std::string(100'000, ')');
  auto d = Dtab::parse(deep);
  REQUIRE_FALSE(d);
  CHECK(d.error().message().find("nested deeper than") != std::string::npos);
  CHECK(d.error().message().size() < 200);  // the message quotes only a window

  std::string ok = "/a=>" + std::string(50, '(') + "/b" + std::string(50, ')');
  auto fine = Dtab::parse(ok);
  REQUIRE(fine);
  CHECK(fine->show() == "/a=>/b");
}

TEST_CASE("a 1 MB dtab parses and a 1 MB broken one fails fast", "[hostile]") {
  std::string big;
  while (big.size() < 1'000'000) big += "/svc/s" + std::to_string(big.size()) + "=>/#/io.l5d.fs/x;";
  auto d = Dtab::parse(big);
  REQUIRE(d);
  CHECK(d->size() > 10'000);
  big.back() = '&';  // a union with nothing after it
  auto bad = Dtab::parse(big);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().offset == big.size());
  CHECK(bad.error().found == "end of input");

  std::string longLabel = "/" + std::string(1'000'000, 'a') + "=>/b";
  REQUIRE(Dtab::parse(longLabel));
  std::string longWeight = "/a=>" + std::string(1'000'000, '9') + "*/b & /c";
  auto w = Dtab::parse(longWeight);
  REQUIRE_FALSE(w);
  CHECK(w.error().message().find("weight out of range") != std::string::npos);
}

TEST_CASE("NUL bytes and invalid UTF-8 are errors with printable messages", "[hostile]") {
  const std::string inputs[] = {
      std::string("/a=>/b\0c", 8),
      std::string("/a\xff=>/b"),
      std::string("/\xc3\x28=>/b"),
      std::string("\0", 1),
  };
  for (const auto& in : inputs) {
    auto d = Dtab::parse(in);
    REQUIRE_FALSE(d);
    std::string msg = d.error().message();
    for (char c : msg) CHECK((c >= 0x20 && c < 0x7f));
  }
  // As escapes they are fine.
  auto esc = Dtab::parse("/a\\x00=>/\\xff");
  REQUIRE(esc);
  CHECK(esc->show() == "/\\x61\\x00=>/\\xff");
}

TEST_CASE("many-branch trees and wide dtabs bind within the budget", "[hostile]") {
  std::string alts = "/a=>";
  for (int i = 0; i < 5000; ++i) alts += (i ? " | /n" : "/n") + std::to_string(i);
  auto d = Dtab::parse(alts);
  REQUIRE(d);
  auto r = Delegator(*d).bind(Path{"a"});
  REQUIRE(r);
  CHECK(r->isNeg());  // 5000 lookups, each Neg
}

TEST_CASE("deep nesting across rewrites stops with an error", "[hostile]") {
  // Each step nests 90 parentheses and rewrites once more: 100 steps could
  // recurse 9,000 deep without the frame budget.
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text += "/p" + std::to_string(i) + "=>" + std::string(90, '(') + "/p" + std::to_string(i + 1) +
            std::string(90, ')') + ";";
  }
  auto d = Dtab::parse(text);
  REQUIRE(d);
  auto r = Delegator(*d).bind(Path{"p0"});
  REQUIRE_FALSE(r);
  CHECK((r.error().kind == DelegateError::Kind::TooLarge ||
         r.error().kind == DelegateError::Kind::MaxDepth));
  DelegateTree t = Delegator(*d).delegate(Path{"p0"});
  CHECK(t.kind == DelegateTree::Kind::Delegate);
}

TEST_CASE("deep nesting inside destinations stays within the frame budget", "[hostile]") {
  // 30 rewrites, each nesting 100 parentheses: the delegate tree must stop
  // with an error instead of recursing 3,000 levels per branch.
  for (const char* op : {" & ", " | "}) {
    std::string text;
    for (int i = 0; i < 30; ++i) {
      std::string inner = "/a" + std::to_string(i + 1);
      for (int k = 0; k < 100; ++k) inner = "(" + inner + op + "/z)";
      text += "/a" + std::to_string(i) + "=>" + inner + ";";
    }
    auto d = Dtab::parse(text);
    REQUIRE(d);
    Delegator delegator(*d);
    DelegateTree t = delegator.delegate(Path{"a0"});
    CHECK(t.kind == DelegateTree::Kind::Exception);
    CHECK(t.message.find("nested too deeply") != std::string::npos);
    auto r = delegator.bind(Path{"a0"});
    REQUIRE_FALSE(r);
  }
}

TEST_CASE("a wide self-referencing union stays within the lookup budget", "[hostile]") {
  // /a => /a & /a & ... (10 branches): without a budget on every step this
  // takes minutes and gigabytes.
  std::string dst = "/a";
  for (int i = 0; i < 9; ++i) dst += " & /a";
  auto d = Dtab::parse("/a => " + dst);
  REQUIRE(d);
  Delegator delegator(*d);
  DelegateTree t = delegator.delegate(Path{"a"});
  CHECK(t.kind == DelegateTree::Kind::Exception);
  CHECK(t.children.empty());
  auto r = delegator.bind(Path{"a"});
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == DelegateError::Kind::TooLarge);
}
