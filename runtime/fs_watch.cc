#include "runtime/fs_watch.h"

#include <uv.h>

namespace switchyard::runtime {

std::unique_ptr<FsWatch> FsWatch::start(Loop& loop, const std::string& dir, unsigned settleMs,
                                        std::function<void()> onChange) {
  std::unique_ptr<FsWatch> w(new FsWatch);
  w->settleMs_ = settleMs;
  w->onChange_ = std::move(onChange);
  w->timer_ = new uv_timer_t;
  uv_timer_init(loop.uv(), w->timer_);
  w->timer_->data = w.get();
  w->event_ = new uv_fs_event_t;
  uv_fs_event_init(loop.uv(), w->event_);
  w->event_->data = w.get();
  // A directory that does not exist yet is not watched; the namer still
  // answers (negatively) from its last read.
  uv_fs_event_start(
      w->event_,
      [](uv_fs_event_t* h, const char*, int, int) {
        auto* self = static_cast<FsWatch*>(h->data);
        if (self == nullptr) return;
        uv_timer_start(self->timer_, [](uv_timer_t* t) {
          auto* s = static_cast<FsWatch*>(t->data);
          if (s != nullptr) s->onChange_();
        }, self->settleMs_, 0);
      },
      dir.c_str(), 0);
  return w;
}

FsWatch::~FsWatch() {
  event_->data = nullptr;
  timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(event_), [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_event_t*>(h); });
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

}  // namespace switchyard::runtime
