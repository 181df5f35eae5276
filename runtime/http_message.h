#pragma once

// HTTP message heads as the rest of the program sees them, whatever the wire
// (HTTP/1.1 today). Bodies are streamed separately and never live here.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchyard::runtime {

// Header fields in arrival order. Names compare case-insensitively; values
// are kept as received (surrounding whitespace already trimmed by the codec).
class HttpHeaders {
 public:
  using Entry = std::pair<std::string, std::string>;

  void add(std::string name, std::string value) { entries_.emplace_back(std::move(name), std::move(value)); }
  // Replaces every field of that name with one.
  void set(std::string_view name, std::string value);
  // Removes every field of that name; returns how many.
  std::size_t remove(std::string_view name);
  // The first value, if any.
  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::string_view> getAll(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }

  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<Entry>& entries() { return entries_; }
  std::size_t size() const { return entries_.size(); }

  static bool nameEquals(std::string_view a, std::string_view b);

 private:
  std::vector<Entry> entries_;
};

struct RequestHead {
  std::string method;
  std::string target;  // as sent: origin-form `/a?b` or absolute-form `http://h/a?b`
  int versionMinor = 1;  // HTTP/1.<minor>
  HttpHeaders headers;

  // The path part of the target (no query), `/` if empty.
  std::string_view path() const;
};

struct ResponseHead {
  int status = 200;
  std::string reason;
  int versionMinor = 1;
  HttpHeaders headers;
};

}  // namespace switchyard::runtime
