#include "runtime/http_message.h"

#include <algorithm>

namespace switchyard::runtime {

bool HttpHeaders::nameEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

void HttpHeaders::set(std::string_view name, std::string value) {
  remove(name);
  add(std::string(name), std::move(value));
}

std::size_t HttpHeaders::remove(std::string_view name) {
  auto it = std::remove_if(entries_.begin(), entries_.end(),
                           [&](const Entry& e) { return nameEquals(e.first, name); });
  std::size_t n = static_cast<std::size_t>(entries_.end() - it);
  entries_.erase(it, entries_.end());
  return n;
}

std::optional<std::string_view> HttpHeaders::get(std::string_view name) const {
  for (const auto& e : entries_) {
    if (nameEquals(e.first, name)) return std::string_view(e.second);
  }
  return std::nullopt;
}

std::vector<std::string_view> HttpHeaders::getAll(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& e : entries_) {
    if (nameEquals(e.first, name)) out.emplace_back(e.second);
  }
  return out;
}

std::string_view RequestHead::path() const {
  std::string_view t = target;
  // Absolute form: skip "scheme://authority".
  if (auto scheme = t.find("://"); scheme != std::string_view::npos && t.front() != '/') {
    auto slash = t.find('/', scheme + 3);
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
  }
  t = t.substr(0, t.find_first_of("?#"));
  return t.empty() ? std::string_view("/") : t;
}

}  // namespace switchyard::runtime
