#pragma once

// The two stores that need nothing outside the process:
//  - MemoryStore (`io.l5d.inMemory`): namespaces in memory, optionally
//    seeded from the config; gone at exit. For tests and demos.
//  - FileStore (`file`, the default): one JSON file per namespace in one
//    directory. A write goes to a temporary file, is fsynced, renamed over
//    the old one, and the directory is fsynced, all before the write is
//    acknowledged: after a crash at any moment every acknowledged write is
//    there and no file is torn. Leftover temporary files are removed at
//    start. Writes block the loop for the fsyncs (milliseconds); the service
//    takes few writes.

#include <memory>
#include <random>
#include <string>

#include "namer/dtab_store.h"

namespace switchyard::namer {

class MemoryStore : public DtabStore {
 public:
  explicit MemoryStore(NamespaceMap initial = {});
  void start(std::function<void(Expected<NamespaceMap, std::string>)> ready,
             std::function<void(const NamespaceMap&)> onChange) override;
  void create(const std::string& ns, StoredNamespace value, Done done) override;
  void update(const std::string& ns, StoredNamespace value, std::optional<std::string> ifVersion, Done done) override;
  void remove(const std::string& ns, std::optional<std::string> ifVersion, Done done) override;
  std::string describe() const override { return "io.l5d.inMemory"; }

 protected:
  // Makes a change durable before it is applied; the memory store has
  // nothing to do. An error (non-empty: why) fails the write and changes nothing.
  virtual std::string persist(const std::string& ns, const StoredNamespace* value);
  std::string nextVersion();
  std::optional<StoreError> precondition(const std::string& ns, const std::optional<std::string>& ifVersion) const;

  NamespaceMap map_;
  std::function<void(const NamespaceMap&)> onChange_;
  std::uint64_t counter_ = 0;
  std::string epoch_;  // FileStore: random per start, so versions never repeat across restarts

 private:
  void write(const std::string& ns, std::optional<StoredNamespace> value, Done done);
};

class FileStore final : public MemoryStore {
 public:
  explicit FileStore(std::string dir);
  void start(std::function<void(Expected<NamespaceMap, std::string>)> ready,
             std::function<void(const NamespaceMap&)> onChange) override;
  std::string describe() const override { return "file " + dir_; }

 private:
  std::string persist(const std::string& ns, const StoredNamespace* value) override;
  Expected<NamespaceMap, std::string> load();
  std::string dir_;
};

}  // namespace switchyard::namer
