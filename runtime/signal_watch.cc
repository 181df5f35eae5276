#include "runtime/signal_watch.h"

#include <uv.h>

namespace switchyard::runtime {

SignalWatch::SignalWatch(Loop& loop, int signum, std::function<void()> fn)
    : signal_(new uv_signal_t), fn_(std::move(fn)) {
  uv_signal_init(loop.uv(), signal_);
  signal_->data = this;
  uv_signal_start(signal_, [](uv_signal_t* s, int) {
    if (auto* self = static_cast<SignalWatch*>(s->data)) self->fn_();
  }, signum);
  // A signal watch alone does not keep the loop running.
  uv_unref(reinterpret_cast<uv_handle_t*>(signal_));
}

SignalWatch::~SignalWatch() {
  signal_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(signal_), [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
}

}  // namespace switchyard::runtime
