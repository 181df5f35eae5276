// libFuzzer target for the parsers that face operators and the network: a
// dtab (router config, l5d-dtab headers, the namer API), a path and a name
// tree. Properties checked besides "no crash, no sanitizer report":
//  - printing is canonical: show(parse(show(x))) == show(x);
//  - delegation of a parsed dtab finishes within its budget.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dtab/delegator.h"
#include "dtab/dtab.h"

using namespace switchyard::dtab;

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

void checkDtab(std::string_view text) {
  auto d = Dtab::parse(text);
  if (!d) {
    require(!d.error().message().empty());
    return;
  }
  std::string shown = d->show();
  auto again = Dtab::parse(shown);
  require(bool(again));
  require(again->show() == shown);
  // Delegate each literal prefix through the dtab, with the system namers.
  Delegator delegator(*d, {}, DelegateOptions{100, 2'000});
  std::size_t tried = 0;
  for (const auto& e : d->entries()) {
    if (++tried > 4) break;
    std::vector<std::string> elems;
    for (const auto& el : e.prefix().elems()) elems.push_back(el.wildcard ? "x" : el.label);
    Path p(std::move(elems));
    (void)delegator.bind(p);
    (void)delegator.delegate(p);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  checkDtab(text);
  if (auto p = Path::parse(text)) {
    auto again = Path::parse(p->show());
    require(again && *again == *p);
  }
  if (auto t = parseNameTree(text)) {
    std::string shown = show(*t);
    auto again = parseNameTree(shown);
    require(again && show(*again) == shown);
    require(t->simplified().eval() == t->eval());
  }
  return 0;
}
