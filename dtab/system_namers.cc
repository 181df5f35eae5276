#include "dtab/system_namers.h"

#include <arpa/inet.h>  // inet_pton/inet_ntop: pure text <-> bytes, no I/O

#include <cstdint>
#include <memory>

namespace switchyard::dtab {
namespace {

std::optional<std::uint64_t> parseDecimal(std::string_view s, std::size_t maxDigits = 10) {
  if (s.empty() || s.size() > maxDigits) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

bool isInteger(std::string_view s) { return parseDecimal(s).has_value(); }

NamerResult boundLeaf(Path id, Path residual, Addr addr) {
  return NameTree<Name>::leaf(BoundName{std::move(id), std::move(residual), std::move(addr)});
}

// The leaf a host element and port stand for now: an IP literal at once, a
// host name as `hosts` knows it (Neg if it does not exist).
NamerResult hostLeaf(const HostTable* hosts, const std::string& host, std::uint64_t port, Path id, Path residual) {
  std::optional<std::string> ip = host == "localhost" ? "127.0.0.1" : parseIpLiteral(host);
  auto endpoint = [&](const std::string& addr) { return Endpoint{addr, static_cast<std::uint16_t>(port), 1.0, {}}; };
  if (ip) return boundLeaf(std::move(id), std::move(residual), Addr::bound({endpoint(*ip)}));
  // The host is printed as a path element would be, so hostile bytes cannot
  // reach a log or a terminal raw.
  std::string shown;
  Path::showElem(host, shown);
  if (hosts == nullptr) {
    return boundLeaf(std::move(id), std::move(residual),
                     Addr::failed("cannot resolve host name '" + shown + "' here: there is no DNS resolver"));
  }
  HostAnswer a = hosts->lookup(host);
  switch (a.kind) {
    case HostAnswer::Kind::Unknown:
      return boundLeaf(std::move(id), std::move(residual), Addr::pending());
    case HostAnswer::Kind::NotFound:
      return NameTree<Name>::neg();
    case HostAnswer::Kind::Failed:
      return boundLeaf(std::move(id), std::move(residual),
                       Addr::failed("cannot resolve host name '" + shown + "': " + a.error));
    case HostAnswer::Kind::Addresses:
      break;
  }
  std::vector<Endpoint> endpoints;
  for (const auto& addr : a.ips) endpoints.push_back(endpoint(addr));
  return boundLeaf(std::move(id), std::move(residual), Addr::bound(std::move(endpoints)));
}

// /$/inet and /$/fixedinet: /<host>/<port>[/rest] or /<port>[/rest].
class InetNamer final : public Namer {
 public:
  InetNamer(Path prefix, std::shared_ptr<const HostTable> hosts)
      : prefix_(std::move(prefix)), hosts_(std::move(hosts)) {}

  NamerResult lookup(const Path& r) const override {
    std::string host;
    std::string port;
    std::size_t used = 0;
    // If the 2nd element is an integer this is host/port (so /1234/5678 is
    // host 1234, port 5678); else a leading integer is a port alone.
    if (r.size() >= 2 && isInteger(r[1])) {
      host = r[0];
      port = r[1];
      used = 2;
    } else if (r.size() >= 1 && isInteger(r[0])) {
      port = r[0];
      used = 1;
    } else {
      return Unexpected((prefix_ + r).show() + ": expected " + prefix_.show() +
                        "/<host>/<port> or " + prefix_.show() + "/<port>");
    }
    std::uint64_t p = *parseDecimal(port);
    if (p > 65535) {
      return Unexpected((prefix_ + r).show() + ": port " + port + " is out of range 0-65535");
    }
    return hostLeaf(hosts_.get(), host.empty() ? "localhost" : host, p, prefix_ + r.take(used), r.drop(used));
  }

 private:
  Path prefix_;
  std::shared_ptr<const HostTable> hosts_;
};

// /$/io.buoyant.rinet/<port>/<host>[/rest]: inet with the port first.
class RinetNamer final : public Namer {
 public:
  explicit RinetNamer(std::shared_ptr<const HostTable> hosts) : hosts_(std::move(hosts)) {}
  NamerResult lookup(const Path& r) const override {
    static const Path kPrefix{"$", "io.buoyant.rinet"};
    // Linkerd answers Neg for any other shape, so an Alt can fall back.
    if (r.size() < 2 || !isInteger(r[0])) return NameTree<Name>::neg();
    std::uint64_t p = *parseDecimal(r[0]);
    if (p > 65535) {
      return Unexpected((kPrefix + r).show() + ": port " + r[0] + " is out of range 0-65535");
    }
    return hostLeaf(hosts_.get(), r[1], p, kPrefix + r.take(2), r.drop(2));
  }

 private:
  std::shared_ptr<const HostTable> hosts_;
};

// /$/io.buoyant.hostportPfx/<pfx>/<host>:<port>/rest and porthostPfx: turn an
// authority into path elements under <pfx>, for the dtab to delegate further.
class HostPortPfxNamer final : public Namer {
 public:
  explicit HostPortPfxNamer(bool portFirst) : portFirst_(portFirst) {}

  NamerResult lookup(const Path& r) const override {
    if (r.size() < 2) return NameTree<Name>::neg();
    // Exactly one ':' (as Linkerd splits it), so IPv6 literals are Neg.
    std::string_view authority = r[1];
    std::size_t colon = authority.find(':');
    if (colon == std::string_view::npos || authority.find(':', colon + 1) != std::string_view::npos) {
      return NameTree<Name>::neg();
    }
    std::string_view host = authority.substr(0, colon);
    std::string_view port = authority.substr(colon + 1);
    if (host.empty() || !isDnsLabel(port)) return NameTree<Name>::neg();
    Path head = portFirst_ ? Path{r[0], std::string(port), std::string(host)}
                           : Path{r[0], std::string(host), std::string(port)};
    return NameTree<Name>::leaf(head + r.drop(2));
  }

 private:
  bool portFirst_;
};

class ConstNamer final : public Namer {
 public:
  explicit ConstNamer(NameTree<Name> tree) : tree_(std::move(tree)) {}
  NamerResult lookup(const Path&) const override { return tree_; }

 private:
  NameTree<Name> tree_;
};

std::optional<std::string> parseIpv4(std::string_view s) {
  // Java's forms: a.b.c.d, a.b.c (c: 16 bits), a.b (b: 24 bits), a (32 bits).
  std::uint64_t parts[4];
  std::size_t n = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    std::string_view part = s.substr(start, dot == std::string_view::npos ? dot : dot - start);
    auto v = parseDecimal(part);
    if (!v || n == 4) return std::nullopt;
    parts[n++] = *v;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  std::uint64_t addr = 0;
  for (std::size_t i = 0; i + 1 < n; ++i) {
    if (parts[i] > 255) return std::nullopt;
    addr = (addr << 8) | parts[i];
  }
  unsigned lastBits = static_cast<unsigned>(8 * (5 - n));
  if (parts[n - 1] >= (std::uint64_t{1} << lastBits)) return std::nullopt;
  addr = (addr << lastBits) | parts[n - 1];
  return std::to_string((addr >> 24) & 255) + "." + std::to_string((addr >> 16) & 255) + "." +
         std::to_string((addr >> 8) & 255) + "." + std::to_string(addr & 255);
}

}  // namespace

const char* kindName(Addr::Kind kind) {
  switch (kind) {
    case Addr::Kind::Pending:
      return "pending";
    case Addr::Kind::Bound:
      return "bound";
    case Addr::Kind::Neg:
      return "neg";
    case Addr::Kind::Failed:
      return "failed";
  }
  return "pending";
}

std::optional<std::string> parseIpLiteral(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.find(':') == std::string_view::npos) return parseIpv4(host);
  if (host.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string text(host);
  unsigned char bytes[16];
  if (inet_pton(AF_INET6, text.c_str(), bytes) != 1) return std::nullopt;
  char out[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, bytes, out, sizeof out) == nullptr) return std::nullopt;
  return std::string(out);
}

const std::vector<NamerEntry>& systemNamers() {
  static const std::vector<NamerEntry> namers = [] {
    std::vector<NamerEntry> v;
    auto add = [&v](std::string name, std::shared_ptr<const Namer> namer) {
      v.push_back({Path{"$", std::move(name)}, std::move(namer)});
    };
    add("inet", std::make_shared<InetNamer>(Path{"$", "inet"}, nullptr));
    add("fixedinet", std::make_shared<InetNamer>(Path{"$", "fixedinet"}, nullptr));
    add("nil", std::make_shared<ConstNamer>(NameTree<Name>::empty()));
    add("fail", std::make_shared<ConstNamer>(NameTree<Name>::fail()));
    add("io.buoyant.rinet", std::make_shared<RinetNamer>(nullptr));
    add("io.buoyant.hostportPfx", std::make_shared<HostPortPfxNamer>(false));
    add("io.buoyant.porthostPfx", std::make_shared<HostPortPfxNamer>(true));
    return v;
  }();
  return namers;
}

std::vector<NamerEntry> inetNamers(std::shared_ptr<const HostTable> hosts) {
  return {{Path{"$", "inet"}, std::make_shared<InetNamer>(Path{"$", "inet"}, hosts)},
          {Path{"$", "fixedinet"}, std::make_shared<InetNamer>(Path{"$", "fixedinet"}, hosts)},
          {Path{"$", "io.buoyant.rinet"}, std::make_shared<RinetNamer>(hosts)}};
}

std::string systemNamerNames() {
  std::string out;
  for (const auto& e : systemNamers()) {
    if (!out.empty()) out += ", ";
    out += e.prefix[1];
  }
  return out;
}

bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace switchyard::dtab
