#pragma once

// StaticNamer: a fixed map of names to addresses under one prefix, read from
// JSON. For tests and `switchyard delegate --namers FILE`. The file format is
// the conformance corpus' `namers` field:
//   { "/#/io.l5d.fs": { "hello": ["127.0.0.1:8080", "[::1]:8081"] },
//     "/#/broken": "error" }
// Under a prefix, /<prefix>/<name>/rest binds to id /<prefix>/<name> with
// residual /rest when <name> is in the map, and is Neg otherwise; "error"
// makes every lookup under the prefix fail with "error naming <path>".

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dtab/addr.h"
#include "dtab/expected.h"
#include "dtab/namer.h"

namespace switchyard::namer {

class StaticNamer final : public dtab::Namer {
 public:
  using Table = std::map<std::string, std::vector<dtab::Endpoint>>;

  StaticNamer(dtab::Path prefix, Table table) : prefix_(std::move(prefix)), table_(std::move(table)) {}
  // A namer whose every lookup fails.
  explicit StaticNamer(dtab::Path prefix) : prefix_(std::move(prefix)), failing_(true) {}

  dtab::NamerResult lookup(const dtab::Path& residual) const override;

 private:
  dtab::Path prefix_;
  Table table_;
  bool failing_ = false;
};

// Parses the JSON text; the error names the offending key.
Expected<std::vector<dtab::NamerEntry>, std::string> parseStaticNamers(std::string_view json);
Expected<std::vector<dtab::NamerEntry>, std::string> loadStaticNamers(const std::string& filename);

// "host:port" or "[v6]:port" with a numeric host, as an Endpoint.
Expected<dtab::Endpoint, std::string> parseHostPort(std::string_view text);

}  // namespace switchyard::namer
