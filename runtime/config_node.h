#pragma once

// ConfigNode: a configuration document (YAML or JSON: JSON is read as YAML
// 1.2) as one tree of maps, lists and scalars. Scalars stay text; typed
// reading (ports, booleans, kinds) is ConfigReader's job, so that every
// error can name its place in the file. Each node keeps its line and column.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dtab/expected.h"

namespace switchyard::runtime {

class ConfigNode {
 public:
  enum class Kind { Null, Scalar, List, Map };

  ConfigNode() = default;
  static ConfigNode scalar(std::string value, bool quoted, int line = 0, int column = 0);
  static ConfigNode list(std::vector<ConfigNode> items, int line = 0, int column = 0);
  static ConfigNode map(std::vector<std::pair<std::string, ConfigNode>> entries, int line = 0,
                        int column = 0);

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isScalar() const { return kind_ == Kind::Scalar; }
  bool isList() const { return kind_ == Kind::List; }
  bool isMap() const { return kind_ == Kind::Map; }

  // Scalar only: the text, and whether the source quoted it ("8080").
  const std::string& text() const { return text_; }
  bool quoted() const { return quoted_; }
  // List only.
  const std::vector<ConfigNode>& items() const { return items_; }
  // Map only, in the order of the file.
  const std::vector<std::pair<std::string, ConfigNode>>& entries() const { return entries_; }
  const ConfigNode* find(std::string_view key) const;

  // 1-based position in the source; 0 when built in code.
  int line() const { return line_; }
  int column() const { return column_; }

  // "map", "list", "scalar", "null": for error messages.
  const char* kindName() const;

 private:
  ConfigNode(Kind kind, int line, int column);

  Kind kind_ = Kind::Null;
  std::string text_;
  bool quoted_ = false;
  std::vector<ConfigNode> items_;
  std::vector<std::pair<std::string, ConfigNode>> entries_;
  int line_ = 0;
  int column_ = 0;
};

// Reads YAML or JSON text. Errors name the source, line and column; a
// duplicate key in a map is an error (YAML parsers usually keep the last).
Expected<ConfigNode, std::string> parseConfig(std::string_view text, const std::string& source);
Expected<ConfigNode, std::string> loadConfigFile(const std::string& filename);

}  // namespace switchyard::runtime
