#pragma once

// FsWatch: calls back when anything in a directory changes, once the changes
// have settled for `settleMs` (editors write, rename and chmod in bursts).

#include <functional>
#include <memory>
#include <string>

#include "runtime/loop.h"

struct uv_fs_event_s;
struct uv_timer_s;

namespace switchyard::runtime {

class FsWatch {
 public:
  static std::unique_ptr<FsWatch> start(Loop& loop, const std::string& dir, unsigned settleMs,
                                        std::function<void()> onChange);
  ~FsWatch();

 private:
  FsWatch() = default;
  uv_fs_event_s* event_ = nullptr;
  uv_timer_s* timer_ = nullptr;
  unsigned settleMs_ = 0;
  std::function<void()> onChange_;
};

}  // namespace switchyard::runtime
