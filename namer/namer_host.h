#pragma once

// NamerHost: a configured namer at run time. It watches its source (a
// directory, an API) on the main loop and offers its current state as an
// immutable dtab::Namer, replaced whole on every change; delegation on any
// worker thread reads the snapshot it was handed, never a lock.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dtab/namer.h"
#include "dtab/path.h"
#include "namer/dns_settings.h"
#include "runtime/loop.h"

namespace switchyard::namer {

// What a namer is built with besides its own settings.
struct NamerContext {
  dtab::Path prefix;  // the full one, e.g. /#/io.l5d.fs
  DnsSettings dns;    // the process's `dns` block
};

// A number a namer reports about itself, for the admin metrics
// (`namer/#/io.l5d.k8s/watches`).
struct NamerStat {
  std::string name;  // one path element: "watches"
  bool counter = false;  // else a gauge
  std::string help;
  double value = 0;
};

class NamerHost {
 public:
  virtual ~NamerHost() = default;
  // Starts watching; `onChange` runs on `loop` after current() changed.
  virtual void start(runtime::Loop& loop, std::function<void()> onChange) = 0;
  // The namer as of now. Immutable; safe to share between threads.
  virtual std::shared_ptr<const dtab::Namer> current() const = 0;
  // Its own numbers, on the loop (none by default).
  virtual std::vector<NamerStat> stats() const { return {}; }
};

}  // namespace switchyard::namer
