#include "runtime/config_node.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

namespace switchyard::runtime {

ConfigNode::ConfigNode(Kind kind, int line, int column) : kind_(kind), line_(line), column_(column) {}

ConfigNode ConfigNode::scalar(std::string value, bool quoted, int line, int column) {
  ConfigNode n(Kind::Scalar, line, column);
  n.text_ = std::move(value);
  n.quoted_ = quoted;
  return n;
}

ConfigNode ConfigNode::list(std::vector<ConfigNode> items, int line, int column) {
  ConfigNode n(Kind::List, line, column);
  n.items_ = std::move(items);
  return n;
}

ConfigNode ConfigNode::map(std::vector<std::pair<std::string, ConfigNode>> entries, int line,
                           int column) {
  ConfigNode n(Kind::Map, line, column);
  n.entries_ = std::move(entries);
  return n;
}

const ConfigNode* ConfigNode::find(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const char* ConfigNode::kindName() const {
  switch (kind_) {
    case Kind::Null:
      return "null";
    case Kind::Scalar:
      return "scalar";
    case Kind::List:
      return "list";
    case Kind::Map:
      return "map";
  }
  return "null";
}

namespace {

// Nesting deeper than this is refused: no real config comes close, and the
// conversion below recurses.
constexpr int kMaxDepth = 64;

std::string where(const std::string& source, const YAML::Mark& m) {
  if (m.is_null()) return source;
  return source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

Expected<ConfigNode, std::string> convert(const YAML::Node& y, const std::string& source,
                                          int depth) {
  YAML::Mark m = y.Mark();
  int line = m.is_null() ? 0 : m.line + 1;
  int column = m.is_null() ? 0 : m.column + 1;
  if (depth > kMaxDepth) {
    return Unexpected(where(source, m) + ": nested more than " + std::to_string(kMaxDepth) +
                      " levels deep");
  }
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return ConfigNode();
    case YAML::NodeType::Scalar:
      // yaml-cpp tags quoted scalars "!" and plain ones "?".
      return ConfigNode::scalar(y.Scalar(), y.Tag() == "!", line, column);
    case YAML::NodeType::Sequence: {
      std::vector<ConfigNode> items;
      for (const auto& item : y) {
        auto c = convert(item, source, depth + 1);
        if (!c) return c;
        items.push_back(std::move(*c));
      }
      return ConfigNode::list(std::move(items), line, column);
    }
    case YAML::NodeType::Map: {
      std::vector<std::pair<std::string, ConfigNode>> entries;
      std::set<std::string> seen;
      for (const auto& kv : y) {
        if (!kv.first.IsScalar()) {
          return Unexpected(where(source, kv.first.Mark()) + ": a map key must be a plain string");
        }
        std::string key = kv.first.Scalar();
        if (!seen.insert(key).second) {
          return Unexpected(where(source, kv.first.Mark()) + ": duplicate key \"" + key + "\"");
        }
        auto c = convert(kv.second, source, depth + 1);
        if (!c) return c;
        entries.emplace_back(std::move(key), std::move(*c));
      }
      return ConfigNode::map(std::move(entries), line, column);
    }
  }
  return ConfigNode();
}

}  // namespace

Expected<ConfigNode, std::string> parseConfig(std::string_view text, const std::string& source) {
  // yaml-cpp reports errors by exception; they stop here (start-up only).
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return convert(root, source, 0);
  } catch (const YAML::Exception& e) {
    return Unexpected(where(source, e.mark) + ": " + e.msg);
  }
}

Expected<ConfigNode, std::string> loadConfigFile(const std::string& filename) {
  std::ifstream in(filename, std::ios::binary);
  if (!in) return Unexpected("cannot read config file '" + filename + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parseConfig(text.str(), filename);
}

}  // namespace switchyard::runtime
