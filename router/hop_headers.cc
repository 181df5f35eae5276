#include "router/hop_headers.h"

#include <string>
#include <vector>

namespace switchyard::router {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <class F>
void forEachToken(const runtime::HttpHeaders& headers, std::string_view name, F&& f) {
  for (std::string_view v : headers.getAll(name)) {
    std::size_t i = 0;
    while (i <= v.size()) {
      std::size_t j = v.find(',', i);
      if (j == std::string_view::npos) j = v.size();
      std::string_view tok = trim(v.substr(i, j - i));
      if (!tok.empty()) f(tok);
      i = j + 1;
    }
  }
}

}  // namespace

void stripHopByHop(runtime::HttpHeaders& headers, bool keepUpgrade) {
  std::vector<std::string> named;
  forEachToken(headers, "Connection", [&](std::string_view t) { named.emplace_back(t); });
  for (const auto& n : named) {
    if (keepUpgrade && runtime::HttpHeaders::nameEquals(n, "upgrade")) continue;
    headers.remove(n);
  }
  for (const char* h : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding"}) {
    headers.remove(h);
  }
  if (!keepUpgrade) headers.remove("Upgrade");
}

std::size_t viaHops(const runtime::HttpHeaders& headers) {
  std::size_t n = 0;
  forEachToken(headers, "Via", [&](std::string_view) { ++n; });
  return n;
}

bool wantsUpgrade(const runtime::HttpHeaders& headers) {
  bool upgrade = false;
  forEachToken(headers, "Connection", [&](std::string_view t) {
    if (runtime::HttpHeaders::nameEquals(t, "upgrade")) upgrade = true;
  });
  return upgrade && headers.has("Upgrade");
}

}  // namespace switchyard::router
