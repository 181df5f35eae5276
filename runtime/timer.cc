#include "runtime/timer.h"

#include <uv.h>

namespace switchyard::runtime {

Timer::Timer(Loop& loop) : timer_(new uv_timer_t) {
  uv_timer_init(loop.uv(), timer_);
  timer_->data = this;
}

Timer::~Timer() {
  timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void Timer::start(std::uint64_t ms, std::function<void()> fn, std::uint64_t repeatMs) {
  fn_ = std::move(fn);
  uv_timer_start(timer_, [](uv_timer_t* t) {
    auto* self = static_cast<Timer*>(t->data);
    if (self == nullptr) return;
    // Copy: the callback may restart or destroy this timer.
    auto callback = self->fn_;
    callback();
  }, ms, repeatMs);
}

void Timer::stop() { uv_timer_stop(timer_); }

bool Timer::active() const { return uv_is_active(reinterpret_cast<const uv_handle_t*>(timer_)) != 0; }

}  // namespace switchyard::runtime
