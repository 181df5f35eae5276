#pragma once

// ConfigReader: typed, checked reading of one ConfigNode, for config structs.
// Every problem is recorded with its path in the file
// (`routers[1].servers[0].port: expected an integer 0-65535, got "http"`) and
// reading goes on, so one run reports them all. Map keys that are read are
// marked known; finish() reports every other key as unknown, listing the known
// ones. Keys Linkerd has that mean nothing here are accepted with a warning
// (ignore()).

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/config_node.h"

namespace switchyard::runtime {

class ConfigProblems {
 public:
  void error(const std::string& path, const std::string& message);
  void warning(const std::string& path, const std::string& message);
  const std::vector<std::string>& errors() const { return errors_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  bool ok() const { return errors_.empty(); }

 private:
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

class ConfigReader {
 public:
  ConfigReader(const ConfigNode& node, std::string path, ConfigProblems& problems)
      : node_(&node), path_(std::move(path)), problems_(&problems) {}

  const ConfigNode& node() const { return *node_; }
  const std::string& path() const { return path_; }
  ConfigProblems& problems() const { return *problems_; }

  // Records an error (or warning) at this node's path.
  void error(const std::string& message) const;
  void warning(const std::string& message) const;

  // This node must be a map; false (and an error) otherwise.
  bool expectMap() const;

  // Map access. Each marks `key` known; a missing key gives the default.
  bool has(std::string_view key);
  std::optional<ConfigReader> field(std::string_view key);
  std::string string(std::string_view key, std::string fallback);
  std::optional<std::string> optionalString(std::string_view key);
  std::string requiredString(std::string_view key);
  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max);
  double number(std::string_view key, double fallback, double min, double max);
  bool boolean(std::string_view key, bool fallback);
  // A list under `key`; a single map where a list is allowed counts as a
  // one-item list when `oneAllowed` (Linkerd's "one identifier or a list").
  std::vector<ConfigReader> list(std::string_view key, bool oneAllowed = false);
  // Keys Linkerd knows that do nothing here: accepted with a warning.
  void ignore(std::string_view key, std::string_view why);

  // Reports every key not read as unknown. Call once, after reading.
  void finish();

  // The path of a child: `routers[0].servers`.
  std::string childPath(std::string_view key) const;

 private:
  const ConfigNode* node_;
  std::string path_;
  ConfigProblems* problems_;
  std::set<std::string, std::less<>> known_;
};

// Typed reading of a scalar; nullopt and an error if it does not fit.
std::optional<std::int64_t> readInteger(const ConfigReader& r, std::int64_t min, std::int64_t max);
std::optional<bool> readBoolean(const ConfigReader& r);

}  // namespace switchyard::runtime
