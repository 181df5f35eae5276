#include "runtime/config_reader.h"

#include <charconv>
#include <cmath>

namespace switchyard::runtime {

void ConfigProblems::error(const std::string& path, const std::string& message) {
  errors_.push_back((path.empty() ? std::string("config") : path) + ": " + message);
}

void ConfigProblems::warning(const std::string& path, const std::string& message) {
  warnings_.push_back((path.empty() ? std::string("config") : path) + ": " + message);
}

void ConfigReader::error(const std::string& message) const { problems_->error(path_, message); }

void ConfigReader::warning(const std::string& message) const {
  problems_->warning(path_, message);
}

bool ConfigReader::expectMap() const {
  if (node_->isMap()) return true;
  error(std::string("expected a map, got a ") + node_->kindName());
  return false;
}

std::string ConfigReader::childPath(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool ConfigReader::has(std::string_view key) {
  known_.emplace(key);
  const ConfigNode* n = node_->isMap() ? node_->find(key) : nullptr;
  return n != nullptr && !n->isNull();
}

std::optional<ConfigReader> ConfigReader::field(std::string_view key) {
  if (!has(key)) return std::nullopt;
  return ConfigReader(*node_->find(key), childPath(key), *problems_);
}

namespace {

std::string quote(const ConfigNode& n) {
  if (n.isScalar()) return "\"" + n.text() + "\"";
  return std::string("a ") + n.kindName();
}

}  // namespace

std::optional<std::string> ConfigReader::optionalString(std::string_view key) {
  auto f = field(key);
  if (!f) return std::nullopt;
  if (!f->node().isScalar()) {
    f->error(std::string("expected a string, got a ") + f->node().kindName());
    return std::nullopt;
  }
  return f->node().text();
}

std::string ConfigReader::string(std::string_view key, std::string fallback) {
  auto s = optionalString(key);
  return s ? *s : fallback;
}

std::string ConfigReader::requiredString(std::string_view key) {
  if (!has(key)) {
    problems_->error(childPath(key), "required");
    return {};
  }
  return string(key, {});
}

std::optional<std::int64_t> readInteger(const ConfigReader& r, std::int64_t min, std::int64_t max) {
  const ConfigNode& n = r.node();
  std::int64_t v = 0;
  bool ok = false;
  if (n.isScalar()) {
    const std::string& t = n.text();
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    ok = ec == std::errc() && end == t.data() + t.size();
  }
  if (!ok || v < min || v > max) {
    r.error("expected an integer " + std::to_string(min) + "-" + std::to_string(max) + ", got " +
            quote(n));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> readBoolean(const ConfigReader& r) {
  const ConfigNode& n = r.node();
  if (n.isScalar()) {
    // YAML 1.1 spellings too, as Jackson's YAML reader accepts them.
    const std::string& t = n.text();
    if (t == "true" || t == "True" || t == "TRUE" || t == "yes" || t == "on") return true;
    if (t == "false" || t == "False" || t == "FALSE" || t == "no" || t == "off") return false;
  }
  r.error("expected true or false, got " + quote(n));
  return std::nullopt;
}

std::int64_t ConfigReader::integer(std::string_view key, std::int64_t fallback, std::int64_t min,
                                   std::int64_t max) {
  auto f = field(key);
  if (!f) return fallback;
  return readInteger(*f, min, max).value_or(fallback);
}

double ConfigReader::number(std::string_view key, double fallback, double min, double max) {
  auto f = field(key);
  if (!f) return fallback;
  const ConfigNode& n = f->node();
  double v = 0;
  bool ok = false;
  if (n.isScalar()) {
    const std::string& t = n.text();
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    ok = ec == std::errc() && end == t.data() + t.size() && std::isfinite(v);
  }
  if (!ok || v < min || v > max) {
    f->error("expected a number " + std::to_string(min) + "-" + std::to_string(max) + ", got " +
             quote(n));
    return fallback;
  }
  return v;
}

bool ConfigReader::boolean(std::string_view key, bool fallback) {
  auto f = field(key);
  if (!f) return fallback;
  return readBoolean(*f).value_or(fallback);
}

std::vector<ConfigReader> ConfigReader::list(std::string_view key, bool oneAllowed) {
  std::vector<ConfigReader> out;
  auto f = field(key);
  if (!f) return out;
  const ConfigNode& n = f->node();
  if (n.isList()) {
    for (std::size_t i = 0; i < n.items().size(); ++i) {
      out.emplace_back(n.items()[i], f->path() + "[" + std::to_string(i) + "]", *problems_);
    }
  } else if (oneAllowed && n.isMap()) {
    out.push_back(*f);
  } else {
    f->error(std::string("expected a list") + (oneAllowed ? " or a map" : "") + ", got a " +
             n.kindName());
  }
  return out;
}

void ConfigReader::ignore(std::string_view key, std::string_view why) {
  if (has(key)) problems_->warning(childPath(key), "ignored: " + std::string(why));
}

void ConfigReader::finish() {
  if (!node_->isMap()) return;
  for (const auto& [key, value] : node_->entries()) {
    if (known_.count(key)) continue;
    std::string known;
    for (const auto& k : known_) known += (known.empty() ? "" : ", ") + k;
    problems_->error(childPath(key), "unknown key; known: " + known);
  }
}

}  // namespace switchyard::runtime
