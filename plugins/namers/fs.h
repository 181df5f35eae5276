#pragma once
#include <map>
#include <string>
#include <vector>

#include "dtab/addr.h"
#include "router/plugin_registry.h"

namespace switchyard::plugins {

// io.l5d.fs: a directory of files, one per service; each line `host port`
// (blank lines and `#` comments allowed). /#/io.l5d.fs/<file>/rest binds to
// the file's addresses, and edits to the directory reach the router within
// milliseconds (libuv fs events, then a re-read of the directory).
struct FsNamerSettings {
  std::string rootDir;
};

router::Plugin fsNamer();

// Reads one service file's text; a malformed line makes the whole Addr
// Failed with a message naming the file and line.
dtab::Addr parseFsAddrs(const std::string& text, const std::string& filename);

}  // namespace switchyard::plugins
