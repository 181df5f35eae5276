#include "runtime/loop.h"

#include <uv.h>

#include <cstdlib>
#include <cstdio>

namespace switchyard::runtime {
namespace {

// libuv failures while setting up a loop are "impossible" after start-up
// (out of file descriptors at init): abort loudly rather than limp on.
void check(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "switchyard: fatal: %s: %s\n", what, uv_strerror(rc));
    std::abort();
  }
}

}  // namespace

Loop::Loop() : loop_(new uv_loop_t), async_(new uv_async_t), idle_(new uv_idle_t) {
  check(uv_loop_init(loop_), "uv_loop_init");
  check(uv_async_init(loop_, async_, &Loop::onAsync), "uv_async_init");
  async_->data = this;
  // The async handle must not keep run() alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  check(uv_idle_init(loop_, idle_), "uv_idle_init");
  idle_->data = this;
}

Loop::~Loop() {
  drainDeferred();
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  uv_close(reinterpret_cast<uv_handle_t*>(idle_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
  // Let every close callback run (ours and any handle still closing); work
  // they defer runs here, without the idle handle.
  do {
    drainDeferred();
  } while (uv_run(loop_, UV_RUN_NOWAIT) != 0);
  drainDeferred();
  int rc = uv_loop_close(loop_);
  if (rc != 0) {
    // A handle is still open: its owner outlived the loop. A bug; say so.
    std::fprintf(stderr, "switchyard: loop closed with live handles: %s\n", uv_strerror(rc));
  }
  delete loop_;
}

void Loop::run() {
  uv_ref(reinterpret_cast<uv_handle_t*>(async_));
  uv_run(loop_, UV_RUN_DEFAULT);
  uv_unref(reinterpret_cast<uv_handle_t*>(async_));
}

void Loop::stop() { uv_stop(loop_); }

void Loop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    posted_.push_back(std::move(fn));
  }
  uv_async_send(async_);
}

void Loop::defer(std::function<void()> fn) {
  if (deferred_.empty() && !closing_) uv_idle_start(idle_, &Loop::onIdle);
  deferred_.push_back(std::move(fn));
}

std::uint64_t Loop::nowMs() const { return uv_now(loop_); }

std::uint64_t Loop::nowUs() { return uv_hrtime() / 1000; }

void Loop::onAsync(uv_async_t* handle) {
  auto* self = static_cast<Loop*>(handle->data);
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    work.swap(self->posted_);
  }
  for (auto& fn : work) fn();
}

void Loop::onIdle(uv_idle_t* handle) {
  auto* self = static_cast<Loop*>(handle->data);
  self->drainDeferred();
  uv_idle_stop(handle);
}

void Loop::drainDeferred() {
  // Deferred work may defer more; run until none is left.
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> work;
    work.swap(deferred_);
    for (auto& fn : work) fn();
  }
}

}  // namespace switchyard::runtime
