#include "runtime/fs_watch.h"

#include <unistd.h>
#include <uv.h>

namespace switchyard::runtime {

namespace {

void closeTimer(uv_timer_t* t) {
  t->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

}  // namespace

std::unique_ptr<FsWatch> FsWatch::start(Loop& loop, const std::string& dir, unsigned settleMs,
                                        std::function<void()> onChange) {
  std::unique_ptr<FsWatch> w(new FsWatch);
  w->dir_ = dir;
  w->settleMs_ = settleMs;
  w->onChange_ = std::move(onChange);
  for (uv_timer_t** t : {&w->timer_, &w->retry_}) {
    *t = new uv_timer_t;
    uv_timer_init(loop.uv(), *t);
    (*t)->data = w.get();
  }
  w->event_ = new uv_fs_event_t;
  uv_fs_event_init(loop.uv(), w->event_);
  w->event_->data = w.get();
  // A directory that does not exist (yet, or any more) is looked for every
  // second; once it is there, it is watched and read again.
  if (!w->watch()) w->retryLater();
  return w;
}

bool FsWatch::watch() {
  int rc = uv_fs_event_start(
      event_,
      [](uv_fs_event_t* h, const char*, int, int) {
        auto* self = static_cast<FsWatch*>(h->data);
        if (self == nullptr) return;
        uv_timer_start(self->timer_, [](uv_timer_t* t) {
          if (auto* s = static_cast<FsWatch*>(t->data)) s->settled();
        }, self->settleMs_, 0);
      },
      dir_.c_str(), 0);
  return rc == 0;
}

void FsWatch::settled() {
  onChange_();
  if (::access(dir_.c_str(), F_OK) != 0) {
    // The directory itself went away: its watch is dead.
    uv_fs_event_stop(event_);
    retryLater();
  }
}

void FsWatch::retryLater() {
  uv_timer_start(retry_, [](uv_timer_t* t) {
    auto* self = static_cast<FsWatch*>(t->data);
    if (self == nullptr || !self->watch()) return;
    uv_timer_stop(t);
    self->onChange_();
  }, 1000, 1000);
}

FsWatch::~FsWatch() {
  event_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(event_), [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_event_t*>(h); });
  closeTimer(timer_);
  closeTimer(retry_);
}

}  // namespace switchyard::runtime
