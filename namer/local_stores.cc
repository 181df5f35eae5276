#include "namer/local_stores.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace switchyard::namer {

bool validNamespaceName(const std::string& ns) {
  if (ns.empty() || ns.size() > 128 || ns.front() == '.') return false;
  for (char c : ns) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

MemoryStore::MemoryStore(NamespaceMap initial) : map_(std::move(initial)) {
  for (auto& [ns, v] : map_) v.version = nextVersion();
}

void MemoryStore::start(std::function<void(Expected<NamespaceMap, std::string>)> ready,
                        std::function<void(const NamespaceMap&)> onChange) {
  onChange_ = std::move(onChange);
  ready(map_);
}

std::string MemoryStore::nextVersion() {
  ++counter_;
  return epoch_.empty() ? std::to_string(counter_) : epoch_ + "." + std::to_string(counter_);
}

std::string MemoryStore::persist(const std::string&, const StoredNamespace*) { return {}; }

void MemoryStore::write(const std::string& ns, std::optional<StoredNamespace> value, Done done) {
  std::string version;
  if (value) {
    value->version = nextVersion();
    version = value->version;
  }
  if (auto err = persist(ns, value ? &*value : nullptr); !err.empty()) {
    done(Unexpected(StoreError{StoreError::Kind::Unavailable, err}));
    return;
  }
  if (value) {
    map_[ns] = std::move(*value);
  } else {
    map_.erase(ns);
  }
  if (onChange_) onChange_(map_);
  done(version);
}

void MemoryStore::create(const std::string& ns, StoredNamespace value, Done done) {
  if (map_.count(ns)) {
    done(Unexpected(StoreError{StoreError::Kind::Exists, "namespace " + ns + " already exists"}));
    return;
  }
  write(ns, std::move(value), std::move(done));
}

// Why a write to an existing namespace may not happen, if it may not.
std::optional<StoreError> MemoryStore::precondition(const std::string& ns,
                                                    const std::optional<std::string>& ifVersion) const {
  auto it = map_.find(ns);
  if (it == map_.end()) return StoreError{StoreError::Kind::NotFound, "no namespace " + ns};
  if (ifVersion && *ifVersion != it->second.version) {
    return StoreError{StoreError::Kind::VersionMismatch,
                      "namespace " + ns + " is at version " + it->second.version + ", not " + *ifVersion};
  }
  return std::nullopt;
}

void MemoryStore::update(const std::string& ns, StoredNamespace value, std::optional<std::string> ifVersion,
                         Done done) {
  if (auto refused = precondition(ns, ifVersion)) return done(Unexpected(std::move(*refused)));
  write(ns, std::move(value), std::move(done));
}

void MemoryStore::remove(const std::string& ns, std::optional<std::string> ifVersion, Done done) {
  if (auto refused = precondition(ns, ifVersion)) return done(Unexpected(std::move(*refused)));
  write(ns, std::nullopt, std::move(done));
}

namespace {

std::string errnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

constexpr const char* kSuffix = ".dtab.json";
constexpr const char* kTempPrefix = ".tmp-";

std::string fsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errnoText("cannot open", path);
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) return errnoText("cannot fsync", path);
  return {};
}

}  // namespace

FileStore::FileStore(std::string dir) : dir_(std::move(dir)) {
  std::random_device rd;
  std::uint64_t r = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
  epoch_ = buf;
}

Expected<NamespaceMap, std::string> FileStore::load() {
  // Like mkdir -p: the default /var/lib/switchyard/dtabs may need its parent.
  for (std::size_t at = 1; at <= dir_.size(); ++at) {
    if (at != dir_.size() && dir_[at] != '/') continue;
    std::string part = dir_.substr(0, at);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return Unexpected(errnoText("cannot create", part));
  }
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return Unexpected(errnoText("cannot read the directory", dir_));
  NamespaceMap map;
  std::string problem;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    std::string path = dir_ + "/" + name;
    if (name.rfind(kTempPrefix, 0) == 0) {
      ::unlink(path.c_str());  // a write that was never acknowledged
      continue;
    }
    std::size_t suffix = std::strlen(kSuffix);
    if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, kSuffix) != 0) continue;
    std::string ns = name.substr(0, name.size() - suffix);
    if (!validNamespaceName(ns)) continue;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      problem = errnoText("cannot open", path);
      break;
    }
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("dtab") || !j["dtab"].is_string()) {
      problem = path + " is not a namespace file written by switchyard (expected JSON with a \"dtab\" string)";
      break;
    }
    StoredNamespace v;
    v.dtab = j["dtab"].get<std::string>();
    if (j.contains("base") && j["base"].is_string()) v.base = j["base"].get<std::string>();
    v.version = j.contains("version") && j["version"].is_string() ? j["version"].get<std::string>() : nextVersion();
    map.emplace(std::move(ns), std::move(v));
  }
  ::closedir(d);
  if (!problem.empty()) return Unexpected(problem);
  // A directory made just now must survive a crash too: its entry lives in
  // its parent, which is fsynced (and the directory itself, for its files).
  if (auto err = fsyncPath(dir_, O_RDONLY | O_DIRECTORY); !err.empty()) return Unexpected(err);
  auto slash = dir_.find_last_of('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dir_.substr(0, slash);
  if (auto err = fsyncPath(parent, O_RDONLY | O_DIRECTORY); !err.empty()) return Unexpected(err);
  return map;
}

void FileStore::start(std::function<void(Expected<NamespaceMap, std::string>)> ready,
                      std::function<void(const NamespaceMap&)> onChange) {
  auto loaded = load();
  if (!loaded) {
    ready(Unexpected(loaded.error()));
    return;
  }
  map_ = std::move(*loaded);
  onChange_ = std::move(onChange);
  ready(map_);
}

std::string FileStore::persist(const std::string& ns, const StoredNamespace* value) {
  std::string path = dir_ + "/" + ns + kSuffix;
  if (!value) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errnoText("cannot remove", path);
    return fsyncPath(dir_, O_RDONLY | O_DIRECTORY);
  }
  nlohmann::json j = {{"dtab", value->dtab}, {"base", value->base}, {"version", value->version}};
  std::string text = j.dump(2) + "\n";
  std::string temp = dir_ + "/" + kTempPrefix + ns + "." + value->version;
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errnoText("cannot create", temp);
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto err = errnoText("cannot write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return err;
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto err = errnoText("cannot fsync", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return err;
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    auto err = errnoText("cannot rename " + temp + " to", path);
    ::unlink(temp.c_str());
    return err;
  }
  return fsyncPath(dir_, O_RDONLY | O_DIRECTORY);
}

}  // namespace switchyard::namer
