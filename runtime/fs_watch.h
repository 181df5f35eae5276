#pragma once

// FsWatch: calls back when anything in a directory changes, once the changes
// have settled for `settleMs` (editors write, rename and chmod in bursts). A
// directory that is missing, at start or later, is looked for every second,
// with a callback when it appears.

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
  bool watch();
  void settled();
  void retryLater();

  std::string dir_;
  uv_fs_event_s* event_ = nullptr;
  uv_timer_s* timer_ = nullptr;  // settle
  uv_timer_s* retry_ = nullptr;  // looks for a missing directory
  unsigned settleMs_ = 0;
  std::function<void()> onChange_;
};

}  // namespace switchyard::runtime
