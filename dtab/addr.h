#pragma once

// Addr: what a bound name resolves to at one moment. In the running router an
// Addr changes over time (namer/ wraps it in an observable); here it is a plain
// value, as delegation reports it.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace switchyard::dtab {

// One address to send requests to. `ip` is a numeric IPv4 or IPv6 literal.
struct Endpoint {
  std::string ip;
  std::uint16_t port = 0;
  double weight = 1.0;
  std::map<std::string, std::string> meta;  // node name, zone, ...
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct Addr {
  enum class Kind { Pending, Bound, Neg, Failed };
  Kind kind = Kind::Pending;
  std::vector<Endpoint> endpoints;  // Bound only
  std::string error;                // Failed only: why, for a person

  static Addr pending() { return {}; }
  static Addr bound(std::vector<Endpoint> endpoints) {
    return {Kind::Bound, std::move(endpoints), {}};
  }
  static Addr neg() { return {Kind::Neg, {}, {}}; }
  static Addr failed(std::string why) { return {Kind::Failed, {}, std::move(why)}; }

  friend bool operator==(const Addr&, const Addr&) = default;
};

// "bound", "neg", "failed", "pending": the names Linkerd's JSON uses.
const char* kindName(Addr::Kind kind);

}  // namespace switchyard::dtab
