#pragma once

// The versions of the C libraries this binary was built against and runs
// with, for `switchyard --version` and bug reports.

#include <string>

namespace switchyard::runtime {

// One line per library: "libuv 1.44.2", "llhttp 8.1.0", ...
std::string libraryVersions();

}  // namespace switchyard::runtime
