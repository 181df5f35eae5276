#include "namer/static_namer.h"

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dtab/system_namers.h"

namespace switchyard::namer {

using dtab::BoundName;
using dtab::Name;
using dtab::NameTree;
using dtab::Path;

dtab::NamerResult StaticNamer::lookup(const Path& residual) const {
  if (failing_) return Unexpected("error naming " + (prefix_ + residual).show());
  if (residual.empty()) return NameTree<Name>::neg();
  auto it = table_.find(residual[0]);
  if (it == table_.end()) return NameTree<Name>::neg();
  return NameTree<Name>::leaf(BoundName{prefix_ + residual.take(1), residual.drop(1),
                                        dtab::Addr::bound(it->second)});
}

Expected<dtab::Endpoint, std::string> parseHostPort(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return Unexpected("expected host:port, got '" + std::string(text) + "'");
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  auto ip = dtab::parseIpLiteral(host);
  if (!ip) return Unexpected("'" + std::string(host) + "' is not an IP address (in '" + std::string(text) + "')");
  unsigned long p = 0;
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      (p = std::stoul(std::string(port))) > 65535) {
    return Unexpected("'" + std::string(port) + "' is not a port 0-65535 (in '" + std::string(text) + "')");
  }
  return dtab::Endpoint{*ip, static_cast<std::uint16_t>(p), 1.0, {}};
}

Expected<std::vector<dtab::NamerEntry>, std::string> parseStaticNamers(std::string_view text) {
  // ordered_json: namers are tried in the order the file lists them.
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Unexpected(std::string("namers: not valid JSON"));
  if (!doc.is_object()) return Unexpected(std::string("namers: expected a JSON object of prefix -> names"));
  std::vector<dtab::NamerEntry> out;
  for (const auto& [key, value] : doc.items()) {
    auto prefix = Path::parse(key);
    if (!prefix) return Unexpected("namers[\"" + key + "\"]: invalid prefix: " + prefix.error().message());
    if (value.is_string() && value.get<std::string>() == "error") {
      out.push_back({*prefix, std::make_shared<StaticNamer>(*prefix)});
      continue;
    }
    if (!value.is_object()) {
      return Unexpected("namers[\"" + key + "\"]: expected an object of name -> [\"host:port\", ...] or \"error\"");
    }
    StaticNamer::Table table;
    for (const auto& [name, addrs] : value.items()) {
      std::string where = "namers[\"" + key + "\"][\"" + name + "\"]";
      if (!addrs.is_array()) return Unexpected(where + ": expected an array of \"host:port\" strings");
      auto& endpoints = table[name];
      for (const auto& a : addrs) {
        if (!a.is_string()) return Unexpected(where + ": expected \"host:port\" strings");
        auto ep = parseHostPort(a.get<std::string>());
        if (!ep) return Unexpected(where + ": " + ep.error());
        endpoints.push_back(std::move(*ep));
      }
    }
    out.push_back({*prefix, std::make_shared<StaticNamer>(*prefix, std::move(table))});
  }
  return out;
}

Expected<std::vector<dtab::NamerEntry>, std::string> loadStaticNamers(const std::string& filename) {
  std::ifstream in(filename, std::ios::binary);
  if (!in) return Unexpected("cannot read namers file '" + filename + "'");
  std::ostringstream text;
  text << in.rdbuf();
  auto r = parseStaticNamers(text.str());
  if (!r) return Unexpected(filename + ": " + r.error());
  return r;
}

}  // namespace switchyard::namer
