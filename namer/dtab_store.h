#pragma once

// DtabStore: where the namer service keeps its namespaces. Each namespace
// holds a dtab (as text), an optional base namespace and a version, an
// opaque string that changes on every write. A write is acknowledged (its
// callback runs with success) only once it is durable in the store; a
// conditional write (`ifVersion`) happens only if the namespace is still at
// that version. Every change, made here or by another replica sharing the
// store, is reported through the change callback with the whole state, so
// the service answers reads from memory. All calls and callbacks are on the
// service's loop.

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "dtab/expected.h"
#include "runtime/loop.h"

namespace switchyard::namer {

struct StoredNamespace {
  std::string dtab;     // the dtab's text, as shown by dtab::Dtab::show
  std::string base;     // a namespace whose dtab comes first, or empty
  std::string version;  // set by the store
  friend bool operator==(const StoredNamespace&, const StoredNamespace&) = default;
};

using NamespaceMap = std::map<std::string, StoredNamespace>;

struct StoreError {
  enum class Kind {
    NotFound,         // 404
    Exists,           // 409
    VersionMismatch,  // 412
    Unavailable,      // 503: the backend cannot be reached or failed
    Invalid,          // 400: the backend cannot hold this (a name it does not allow)
  };
  Kind kind;
  std::string message;
};

class DtabStore {
 public:
  using Done = std::function<void(Expected<std::string, StoreError>)>;  // the new version
  virtual ~DtabStore() = default;

  // Loads the state and starts following changes. `ready` runs once with the
  // first state (or why there is none); `onChange` after every later change.
  virtual void start(std::function<void(Expected<NamespaceMap, std::string>)> ready,
                     std::function<void(const NamespaceMap&)> onChange) = 0;
  // Creates a namespace that does not exist.
  virtual void create(const std::string& ns, StoredNamespace value, Done done) = 0;
  // Replaces an existing namespace, if `ifVersion` is empty or matches.
  virtual void update(const std::string& ns, StoredNamespace value, std::optional<std::string> ifVersion,
                      Done done) = 0;
  virtual void remove(const std::string& ns, std::optional<std::string> ifVersion, Done done) = 0;
  // For /admin/metrics.json and logs: "file /var/lib/switchyard", "etcd 127.0.0.1:2379".
  virtual std::string describe() const = 0;
};

// Namespace names: 1-128 of [A-Za-z0-9._-], not starting with '.'. They
// are URL path segments and file names, so nothing else is allowed.
bool validNamespaceName(const std::string& ns);

}  // namespace switchyard::namer
