#pragma once
#include "router/plugin_registry.h"

namespace switchyard::plugins {

// io.l5d.fs: a directory of files, one per service; each line `host port`.
// /#/io.l5d.fs/<file>/rest binds to the file's addresses.
struct FsNamerSettings {
  std::string rootDir;
};

router::Plugin fsNamer();

}  // namespace switchyard::plugins
