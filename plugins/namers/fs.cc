#include "plugins/namers/fs.h"

namespace switchyard::plugins {

router::Plugin fsNamer() {
  return {router::PluginCategory::Namer, "io.l5d.fs",
          [](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
            return std::make_shared<FsNamerSettings>(FsNamerSettings{r.requiredString("rootDir")});
          },
          nullptr};
}

}  // namespace switchyard::plugins
