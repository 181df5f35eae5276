#pragma once

// WantFn: how an immutable naming snapshot, used on any thread, asks its
// owner on the main loop to look a name up (a host name, an SRV record) that
// it does not know yet. The call posts to the loop; the posted work runs only
// while the owner lives (`alive`, cleared by its destructor on that loop).

#include <functional>
#include <memory>
#include <string>

#include "runtime/loop.h"

namespace switchyard::namer {

using WantFn = std::function<void(const std::string&)>;

inline std::shared_ptr<const WantFn> makeWant(runtime::Loop& loop, std::shared_ptr<bool> alive,
                                              std::function<void(const std::string&)> onLoop) {
  return std::make_shared<const WantFn>(
      [loop = &loop, alive = std::move(alive), onLoop = std::move(onLoop)](const std::string& name) {
        loop->post([alive, onLoop, name] {
          if (*alive) onLoop(name);
        });
      });
}

}  // namespace switchyard::namer
