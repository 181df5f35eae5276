#pragma once

// SignalWatch: runs a function on the loop when the process gets a signal
// (SIGTERM, SIGINT), instead of in a signal handler.

#include <functional>
#include <memory>

#include "runtime/loop.h"

struct uv_signal_s;

namespace switchyard::runtime {

class SignalWatch {
 public:
  SignalWatch(Loop& loop, int signum, std::function<void()> fn);
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

 private:
  uv_signal_s* signal_;
  std::function<void()> fn_;
};

}  // namespace switchyard::runtime
