#include "plugins/storage/etcd.h"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "dtab/dtab.h"
#include "namer/dtab_store.h"
#include "runtime/base64.h"
#include "runtime/http_client.h"
#include "runtime/timer.h"

namespace switchyard::plugins {

namespace {

using nlohmann::json;
using namer::NamespaceMap;
using namer::StoredNamespace;
using namer::StoreError;

struct EtcdSettings {
  std::string host = "localhost";
  std::uint16_t port = 2379;
  std::string prefix = "/namerd/dtabs";
};

// etcd's JSON carries int64 as strings; a missing field is 0 (proto3).
std::int64_t int64Field(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return 0;
  const json& v = j[key];
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

std::string b64Field(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return {};
  return runtime::base64Decode(j[key].get<std::string>()).value_or(std::string());
}

// Whole JSON objects out of a stream of them (etcd's watch writes one per
// message; newlines between them are not relied on).
class ObjectSplitter {
 public:
  template <class F>
  void feed(std::string_view data, F&& each) {
    for (char c : data) {
      if (depth_ == 0 && c != '{') continue;
      buffer_ += c;
      if (inString_) {
        if (escaped_) {
          escaped_ = false;
        } else if (c == '\\') {
          escaped_ = true;
        } else if (c == '"') {
          inString_ = false;
        }
        continue;
      }
      if (c == '"') inString_ = true;
      if (c == '{') ++depth_;
      if (c == '}' && --depth_ == 0) {
        each(buffer_);
        buffer_.clear();
      }
    }
  }
  void reset() {
    buffer_.clear();
    depth_ = 0;
    inString_ = escaped_ = false;
  }

 private:
  std::string buffer_;
  int depth_ = 0;
  bool inString_ = false;
  bool escaped_ = false;
};

class EtcdStore final : public namer::DtabStore {
 public:
  EtcdStore(runtime::Loop& loop, EtcdSettings settings)
      : loop_(loop), settings_(std::move(settings)), calls_(loop), retry_(loop) {}
  ~EtcdStore() override {
    *alive_ = false;
    watch_.reset();
  }

  void start(std::function<void(Expected<NamespaceMap, std::string>)> ready,
             std::function<void(const NamespaceMap&)> onChange) override {
    onChange_ = std::move(onChange);
    auto addr = resolve();
    if (!addr) {
      ready(Unexpected(addr.error()));
      return;
    }
    addr_ = *addr;
    readAll([this, ready = std::move(ready)](std::optional<std::string> error) {
      if (error) {
        ready(Unexpected("etcd at " + where() + ": " + *error));
        return;
      }
      ready(map_);
      watch();
    });
  }

  void create(const std::string& ns, StoredNamespace value, Done done) override {
    json txn = {{"compare", json::array({{{"key", b64Key(ns)}, {"result", "EQUAL"}, {"target", "CREATE"},
                                          {"create_revision", "0"}}})},
                {"success", json::array({{{"request_put", {{"key", b64Key(ns)}, {"value", encodeValue(value)}}}}})},
                {"failure", json::array({{{"request_range", {{"key", b64Key(ns)}}}}})}};
    transact(ns, std::move(value), std::move(txn), std::nullopt, std::move(done), true);
  }

  void update(const std::string& ns, StoredNamespace value, std::optional<std::string> ifVersion,
              Done done) override {
    json txn = {{"compare", json::array({compareFor(ns, ifVersion)})},
                {"success", json::array({{{"request_put", {{"key", b64Key(ns)}, {"value", encodeValue(value)}}}}})},
                {"failure", json::array({{{"request_range", {{"key", b64Key(ns)}}}}})}};
    transact(ns, std::move(value), std::move(txn), ifVersion, std::move(done), false);
  }

  void remove(const std::string& ns, std::optional<std::string> ifVersion, Done done) override {
    json txn = {{"compare", json::array({compareFor(ns, ifVersion)})},
                {"success", json::array({{{"request_delete_range", {{"key", b64Key(ns)}}}}})},
                {"failure", json::array({{{"request_range", {{"key", b64Key(ns)}}}}})}};
    transact(ns, std::nullopt, std::move(txn), ifVersion, std::move(done), false);
  }

  std::string describe() const override { return "io.l5d.etcd " + where() + settings_.prefix; }

 private:
  std::string where() const { return settings_.host + ":" + std::to_string(settings_.port); }
  std::string keyPrefix() const { return settings_.prefix + "/"; }
  std::string b64Key(const std::string& ns) const { return runtime::base64Encode(keyPrefix() + ns); }
  // The end of the prefix's key range: the prefix with its last byte + 1.
  std::string b64RangeEnd() const {
    std::string end = keyPrefix();
    end.back() = static_cast<char>(end.back() + 1);
    return runtime::base64Encode(end);
  }

  // A dtab alone is stored as its text (as Namerd's etcd store keeps it, so
  // etcdctl shows it plainly); with a base, as JSON. A dtab never starts
  // with '{', so a reader tells them apart.
  static std::string encodeValue(const StoredNamespace& v) {
    std::string text = v.base.empty() ? v.dtab : json{{"dtab", v.dtab}, {"base", v.base}}.dump();
    return runtime::base64Encode(text);
  }
  static StoredNamespace decodeValue(const std::string& text) {
    StoredNamespace v;
    if (!text.empty() && text.front() == '{') {
      auto j = json::parse(text, nullptr, false);
      if (j.is_object()) {
        if (j.contains("dtab") && j["dtab"].is_string()) v.dtab = j["dtab"].get<std::string>();
        if (j.contains("base") && j["base"].is_string()) v.base = j["base"].get<std::string>();
        return v;
      }
    }
    v.dtab = text;
    return v;
  }

  json compareFor(const std::string& ns, const std::optional<std::string>& ifVersion) const {
    if (ifVersion) {
      return {{"key", b64Key(ns)}, {"result", "EQUAL"}, {"target", "MOD"}, {"mod_revision", *ifVersion}};
    }
    // Replace only what exists.
    return {{"key", b64Key(ns)}, {"result", "GREATER"}, {"target", "CREATE"}, {"create_revision", "0"}};
  }

  Expected<runtime::SocketAddress, std::string> resolve() const {
    // A name is looked up once, at start (the namer service starts here).
    std::string host = settings_.host == "localhost" ? "127.0.0.1" : settings_.host;
    return runtime::SocketAddress::resolveBlocking(host, settings_.port);
  }

  // One POST to the gateway; `done` gets the JSON answer or why not.
  void post(const std::string& path, const json& body, std::function<void(Expected<json, std::string>)> done) {
    runtime::HttpCall::Request req;
    req.method = "POST";
    req.target = path;
    req.host = where();
    req.headers.add("Content-Type", "application/json");
    req.body = body.dump();
    req.timeoutMs = 5'000;  // an etcd that accepts but never answers fails the write, not hangs it
    calls_.fetch(
        *addr_, std::move(req),
        [done = std::move(done)](Expected<runtime::HttpResult, std::string> r) {
          if (!r) {
            done(Unexpected(r.error()));
            return;
          }
          auto j = json::parse(r->body, nullptr, false);
          if (r->status != 200) {
            std::string msg = j.is_object() && j.contains("error") && j["error"].is_string()
                                  ? j["error"].get<std::string>()
                                  : r->body.substr(0, 200);
            done(Unexpected("etcd answered " + std::to_string(r->status) + ": " + msg));
            return;
          }
          if (j.is_discarded()) {
            done(Unexpected(std::string("etcd sent something that is not JSON")));
            return;
          }
          done(std::move(j));
        },
        64 << 20);
  }

  void readAll(std::function<void(std::optional<std::string>)> done) {
    json range = {{"key", runtime::base64Encode(keyPrefix())}, {"range_end", b64RangeEnd()}};
    post("/v3/kv/range", range, [this, done = std::move(done)](Expected<json, std::string> r) {
      if (!r) {
        done(r.error());
        return;
      }
      NamespaceMap map;
      if (r->contains("kvs") && (*r)["kvs"].is_array()) {
        for (const auto& kv : (*r)["kvs"]) {
          std::string key = b64Field(kv, "key");
          if (key.rfind(keyPrefix(), 0) != 0) continue;
          std::string ns = key.substr(keyPrefix().size());
          if (!namer::validNamespaceName(ns)) continue;
          StoredNamespace v = decodeValue(b64Field(kv, "value"));
          v.version = std::to_string(int64Field(kv, "mod_revision"));
          map[ns] = std::move(v);
        }
      }
      revision_ = int64Field((*r)["header"], "revision");
      deletedAt_.clear();
      map_ = std::move(map);
      done(std::nullopt);
    });
  }

  // Follows every change under the prefix from the revision after the last
  // one seen. A broken watch is reopened; a compacted one reads all again.
  void watch() {
    splitter_.reset();
    json create = {{"create_request",
                    {{"key", runtime::base64Encode(keyPrefix())},
                     {"range_end", b64RangeEnd()},
                     {"start_revision", std::to_string(revision_ + 1)}}}};
    runtime::HttpCall::Request req;
    req.method = "POST";
    req.target = "/v3/watch";
    req.host = where();
    req.headers.add("Content-Type", "application/json");
    req.body = create.dump();
    runtime::HttpCall::Handler h;
    h.onHead = [this](const runtime::ResponseHead& head) { watchStatus_ = head.status; };
    h.onBody = [this, alive = alive_](std::string_view data) {
      if (watchStatus_ != 200) return;
      splitter_.feed(data, [&](const std::string& text) {
        if (*alive) onWatchMessage(text);
      });
    };
    h.onDone = [this, alive = alive_](std::optional<std::string> error) {
      if (!*alive) return;
      std::string why = error ? *error
                              : watchStatus_ != 200 ? "etcd answered " + std::to_string(watchStatus_)
                                                    : std::string("etcd ended the watch");
      rewatchLater(why);
    };
    watchStatus_ = 0;
    watch_ = runtime::HttpCall::start(loop_, *addr_, std::move(req), std::move(h), 2'000);
  }

  void rewatchLater(const std::string& why) {
    if (watch_) {
      std::shared_ptr<runtime::HttpCall> old(std::move(watch_));
      loop_.defer([old] {});
    }
    if (!watchBroken_) {
      std::fprintf(stderr, "switchyard: namer: etcd at %s: watch lost (%s); serving the last state and retrying\n",
                   where().c_str(), why.c_str());
    }
    watchBroken_ = true;
    std::uint64_t delay = std::min<std::uint64_t>(200ull << std::min(watchFailures_, 5), 5'000);
    ++watchFailures_;
    retry_.start(delay, [this] {
      if (compacted_) {
        compacted_ = false;
        readAll([this](std::optional<std::string> error) {
          if (error) {
            compacted_ = true;
            rewatchLater(*error);
            return;
          }
          if (onChange_) onChange_(map_);
          watch();
        });
        return;
      }
      watch();
    });
  }

  void onWatchMessage(const std::string& text) {
    auto j = json::parse(text, nullptr, false);
    if (!j.is_object()) return;
    const json& result = j.contains("result") ? j["result"] : j;
    if (int64Field(result, "compact_revision") > 0) {
      // etcd dropped the history we asked from: read everything again.
      compacted_ = true;
      rewatchLater("the revisions after " + std::to_string(revision_) + " were compacted");
      return;
    }
    if (result.contains("created") && result["created"].is_boolean() && result["created"].get<bool>()) {
      if (watchBroken_) {
        std::fprintf(stderr, "switchyard: namer: etcd at %s: watching again\n", where().c_str());
      }
      watchBroken_ = false;
      watchFailures_ = 0;
    }
    bool changed = false;
    if (result.contains("events") && result["events"].is_array()) {
      for (const auto& e : result["events"]) {
        const json& kv = e.contains("kv") ? e["kv"] : json::object();
        std::string key = b64Field(kv, "key");
        if (key.rfind(keyPrefix(), 0) != 0) continue;
        std::string ns = key.substr(keyPrefix().size());
        if (!namer::validNamespaceName(ns)) continue;
        std::int64_t rev = int64Field(kv, "mod_revision");
        bool isDelete = e.contains("type") && e["type"] == "DELETE";
        changed |= apply(ns, isDelete ? std::nullopt : std::optional(decodeValue(b64Field(kv, "value"))), rev);
      }
      // Only events move the resume point: a header's revision may be ahead
      // of events still to come in this stream.
      for (const auto& e : result["events"]) {
        if (e.contains("kv")) revision_ = std::max(revision_, int64Field(e["kv"], "mod_revision"));
      }
    }
    if (changed && onChange_) onChange_(map_);
  }

  // Applies a change at `rev` unless something newer is known for `ns`
  // (this replica's own write may be known before the watch reports it).
  bool apply(const std::string& ns, std::optional<StoredNamespace> value, std::int64_t rev) {
    auto it = map_.find(ns);
    std::int64_t known = 0;
    if (it != map_.end()) known = std::stoll(it->second.version);
    if (auto d = deletedAt_.find(ns); d != deletedAt_.end()) known = std::max(known, d->second);
    if (rev <= known) return false;
    if (value) {
      value->version = std::to_string(rev);
      map_[ns] = std::move(*value);
      deletedAt_.erase(ns);
    } else {
      map_.erase(ns);
      deletedAt_[ns] = rev;
    }
    return true;
  }

  void transact(const std::string& ns, std::optional<StoredNamespace> value, json txn,
                std::optional<std::string> ifVersion, Done done, bool creating) {
    if (!addr_) {
      done(Unexpected(StoreError{StoreError::Kind::Unavailable, "etcd is not connected"}));
      return;
    }
    post("/v3/kv/txn", txn,
         [this, ns, value = std::move(value), ifVersion, creating, done = std::move(done)](Expected<json, std::string> r) {
           if (!r) {
             done(Unexpected(StoreError{StoreError::Kind::Unavailable, "etcd at " + where() + ": " + r.error()}));
             return;
           }
           bool succeeded = r->contains("succeeded") && (*r)["succeeded"].is_boolean() && (*r)["succeeded"].get<bool>();
           std::int64_t rev = int64Field((*r)["header"], "revision");
           if (succeeded) {
             std::optional<StoredNamespace> v = value;
             if (apply(ns, std::move(v), rev) && onChange_) onChange_(map_);
             done(value ? std::to_string(rev) : std::string());
             return;
           }
           // The failure branch read the key: say why the compare failed.
           std::int64_t current = 0;
           if (r->contains("responses") && (*r)["responses"].is_array() && !(*r)["responses"].empty()) {
             const json& rr = (*r)["responses"][0];
             if (rr.contains("response_range") && rr["response_range"].contains("kvs") &&
                 rr["response_range"]["kvs"].is_array() && !rr["response_range"]["kvs"].empty()) {
               current = int64Field(rr["response_range"]["kvs"][0], "mod_revision");
             }
           }
           if (creating) {
             done(Unexpected(StoreError{StoreError::Kind::Exists, "namespace " + ns + " already exists"}));
           } else if (current == 0) {
             done(Unexpected(StoreError{StoreError::Kind::NotFound, "no namespace " + ns}));
           } else {
             done(Unexpected(StoreError{StoreError::Kind::VersionMismatch, "namespace " + ns + " is at version " +
                                                                               std::to_string(current) + ", not " +
                                                                               ifVersion.value_or("")}));
           }
         });
  }

  runtime::Loop& loop_;
  EtcdSettings settings_;
  std::optional<runtime::SocketAddress> addr_;
  std::function<void(const NamespaceMap&)> onChange_;
  NamespaceMap map_;
  std::map<std::string, std::int64_t> deletedAt_;
  std::int64_t revision_ = 0;  // the last revision the watch (or a full read) covered
  runtime::FetchSet calls_;  // requests in flight, but the watch
  std::unique_ptr<runtime::HttpCall> watch_;
  int watchStatus_ = 0;
  ObjectSplitter splitter_;
  runtime::Timer retry_;
  bool watchBroken_ = false;
  bool compacted_ = false;
  int watchFailures_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

router::Plugin etcdStorage() {
  return router::storagePlugin<EtcdSettings>(
      "io.l5d.etcd",
      [](runtime::ConfigReader& r) -> std::optional<EtcdSettings> {
        EtcdSettings s;
        s.host = r.string("host", s.host);
        s.port = static_cast<std::uint16_t>(r.integer("port", s.port, 1, 65535));
        s.prefix = r.string("pathPrefix", s.prefix);
        while (s.prefix.size() > 1 && s.prefix.back() == '/') s.prefix.pop_back();
        if (s.prefix.size() < 2 || s.prefix.front() != '/') {
          r.problems().error(r.childPath("pathPrefix"), "expected a key prefix such as /namerd/dtabs, got \"" + s.prefix + "\"");
        }
        if (r.has("tls")) r.problems().error(r.childPath("tls"), "TLS to etcd is not supported by Switchyard yet");
        return s;
      },
      [](const EtcdSettings& s, runtime::Loop& loop) -> std::unique_ptr<namer::DtabStore> {
        return std::make_unique<EtcdStore>(loop, s);
      });
}

}  // namespace switchyard::plugins
