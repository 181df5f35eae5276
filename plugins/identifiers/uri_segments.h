#pragma once

// The non-empty segments of a request path: "/a//b/" -> {"a", "b"}.
// Shared by the identifiers that name by path.

#include <string>
#include <string_view>
#include <vector>

namespace switchyard::plugins {

inline std::vector<std::string> uriSegments(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace switchyard::plugins
