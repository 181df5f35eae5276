#pragma once

// Loop: one libuv event loop, owned by one thread. Everything that touches
// the loop's handles runs on that thread; other threads hand work over with
// post(). Objects that may be destroyed inside their own callbacks are handed
// to deleteLater(), which destroys them after the current callback returns.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

struct uv_loop_s;
struct uv_async_s;
struct uv_idle_s;

namespace switchyard::runtime {

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_s* uv() { return loop_; }

  // Runs until stop() (or until nothing is left to do).
  void run();
  // Ends run() after the current iteration. Loop thread only.
  void stop();

  // Runs `fn` on the loop thread soon. Safe from any thread; never runs
  // after the Loop is destroyed.
  void post(std::function<void()> fn);

  // Runs `fn` on the loop thread after the current callback returns, before
  // the loop waits for I/O again. Loop thread only.
  void defer(std::function<void()> fn);
  template <class T>
  void deleteLater(std::unique_ptr<T> object) {
    auto* raw = object.release();
    defer([raw] { delete raw; });
  }

  // Runs deferred work now (owners call it in their destructors, so that
  // deferred deletions still find the owner's members alive).
  void drainDeferred();

  // Milliseconds on the loop's clock (cached per iteration).
  std::uint64_t nowMs() const;
  // Microseconds on a monotonic clock, read now (not cached).
  static std::uint64_t nowUs();

 private:
  static void onAsync(uv_async_s* handle);
  static void onIdle(uv_idle_s* handle);

  uv_loop_s* loop_;
  uv_async_s* async_;
  uv_idle_s* idle_;
  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;  // guarded by mutex_
  std::vector<std::function<void()>> deferred_;
  bool closing_ = false;
};

}  // namespace switchyard::runtime
