#pragma once

// Timer: a one-shot (or repeating) libuv timer with an owner. Destroying it
// cancels it; its callback never runs after that.

#include <cstdint>
#include <functional>

#include "runtime/loop.h"

struct uv_timer_s;

namespace switchyard::runtime {

class Timer {
 public:
  explicit Timer(Loop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)starts: `fn` runs after `ms`, then every `repeatMs` if non-zero.
  void start(std::uint64_t ms, std::function<void()> fn, std::uint64_t repeatMs = 0);
  void stop();
  // Started and not yet fired (or repeating).
  bool active() const;

 private:
  uv_timer_s* timer_;
  std::function<void()> fn_;
};

}  // namespace switchyard::runtime
