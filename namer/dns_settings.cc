#include "namer/dns_settings.h"

#include <algorithm>

#include "dtab/system_namers.h"

namespace switchyard::namer {

bool isDnsServerAddress(const std::string& text) {
  std::string ip = text;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos) return false;
    ip = text.substr(1, close - 1);
    // c-ares takes a bracketed address only with a port.
    if (close + 1 >= text.size() || text[close + 1] != ':') return false;
    port = text.substr(close + 2);
    if (port.empty()) return false;
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    ip = text.substr(0, text.find(':'));
    port = text.substr(text.find(':') + 1);
    if (port.empty()) return false;
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    int p = std::stoi(port);
    if (p < 1 || p > 65535) return false;
  }
  // Only the canonical form (127.0.0.1, not Java's 127.1), as c-ares reads it.
  auto canonical = dtab::parseIpLiteral(ip);
  return canonical && *canonical == ip;
}

Expected<std::unique_ptr<runtime::DnsResolver>, std::string> makeDnsResolver(runtime::Loop& loop,
                                                                            const DnsSettings& settings) {
  runtime::DnsResolver::Options options;
  options.servers = settings.servers;
  options.timeoutMs = static_cast<std::uint64_t>(settings.timeoutMs);
  return runtime::DnsResolver::create(loop, options);
}

}  // namespace switchyard::namer
