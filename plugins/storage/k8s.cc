#include "plugins/storage/k8s.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "dtab/dtab.h"
#include "namer/delegate_json.h"
#include "namer/dtab_store.h"
#include "plugins/k8s/api.h"
#include "runtime/http_server.h"

namespace switchyard::plugins {

namespace {

using k8s::stringAt;
using namer::NamespaceMap;
using namer::StoredNamespace;
using namer::StoreError;
using nlohmann::json;

constexpr const char* kApiVersion = "l5d.io/v1alpha1";
constexpr const char* kBaseAnnotation = "switchyard.io/base";

struct K8sStoreSettings {
  k8s::ApiSettings api;
  std::string ns = "default";
};

// A member, or null: for chains such as at(at(obj, "metadata"), "name").
const json& at(const json& obj, const char* key) {
  static const json kNone;
  const json* m = k8s::member(obj, key);
  return m ? *m : kNone;
}

// An object's name must be a DNS subdomain: lowercase, digits, '-' and '.'.
bool isObjectName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

// resourceVersions are opaque, but the API server's are etcd revisions:
// where both are numbers, an older one is not applied over a newer.
std::optional<unsigned long long> revision(const std::string& s) {
  if (s.empty() || s.size() > 19 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoull(s);
}

bool olderThan(const std::string& a, const std::string& b) {
  auto x = revision(a), y = revision(b);
  return x && y && *x < *y;
}

bool notNewer(const std::string& a, const std::string& b) {
  auto x = revision(a), y = revision(b);
  return x && y && *x <= *y;
}

class K8sStore final : public namer::DtabStore {
 public:
  K8sStore(runtime::Loop& loop, K8sStoreSettings settings)
      : loop_(loop), settings_(std::move(settings)), calls_(loop) {}
  ~K8sStore() override {
    *alive_ = false;
    watch_.reset();
  }

  void start(std::function<void(Expected<NamespaceMap, std::string>)> ready,
             std::function<void(const NamespaceMap&)> onChange) override {
    onChange_ = std::move(onChange);
    ready_ = std::move(ready);
    api_ = std::make_unique<k8s::ApiClient>(loop_, settings_.api);
    k8s::ListWatch::Handler h;
    h.onList = [this](const json& items, const std::string& listVersion) {
      NamespaceMap map;
      for (const auto& obj : items) {
        std::string name = stringAt(at(obj, "metadata"), "name");
        if (name.empty()) continue;
        if (auto v = decode(obj)) map[name] = std::move(*v);
      }
      // A list may have been answered before a write of this replica's was
      // (it was asked for earlier): what is known here past the list's
      // version stays, and so do deletions the list is older than.
      for (const auto& [ns, v] : map_) {
        auto listed = map.find(ns);
        if (olderThan(listVersion, v.version) &&
            (listed == map.end() || olderThan(listed->second.version, v.version))) {
          map[ns] = v;
        }
      }
      for (auto it = deletedAt_.begin(); it != deletedAt_.end();) {
        auto listed = map.find(it->first);
        if (listed != map.end() && notNewer(listed->second.version, it->second)) {
          map.erase(listed);
          ++it;
        } else if (listed != map.end() || olderThan(it->second, listVersion)) {
          it = deletedAt_.erase(it);  // the list is past it: nothing to guard against
        } else {
          ++it;
        }
      }
      bool changed = map != map_;
      map_ = std::move(map);
      if (auto first = std::move(ready_)) {
        ready_ = nullptr;
        first(map_);
      } else if (changed && onChange_) {
        onChange_(map_);
      }
    };
    h.onEvent = [this](const std::string& type, const json& obj) {
      const json& meta = at(obj, "metadata");
      std::string name = stringAt(meta, "name");
      if (name.empty()) return;
      std::string rv = stringAt(meta, "resourceVersion");
      bool changed =
          type == "DELETED" ? apply(name, std::nullopt, rv) : apply(name, decode(obj), rv);
      if (changed && onChange_) onChange_(map_);
    };
    h.onFailure = [this](const std::string& why, bool firstFailure) {
      std::string what = "the Kubernetes API at " + api_->where() + ": " + why;
      if (why.find("answered 404") != std::string::npos) {
        what +=
            "; is the DTab custom resource (dtabs.l5d.io) installed? kubectl apply -f "
            "k8s/namer.yaml";
      }
      if (auto first = std::move(ready_)) {
        ready_ = nullptr;
        // Retries go on, but the service will not start without a state.
        loop_.defer([this, alive = alive_] {
          if (*alive) watch_.reset();
        });
        first(Unexpected(what));
      } else if (firstFailure) {
        std::fprintf(
            stderr,
            "switchyard: storage io.l5d.k8s: %s; serving the last dtabs, writes fail meanwhile\n",
            what.c_str());
      }
    };
    h.onRecovered = [] {
      std::fprintf(stderr, "switchyard: storage io.l5d.k8s: watching again\n");
    };
    watch_ = std::make_unique<k8s::ListWatch>(*api_, collection(), "", std::move(h));
    watch_->start();
  }

  void create(const std::string& ns, StoredNamespace value, Done done) override {
    if (!isObjectName(ns)) {
      done(Unexpected(StoreError{
          StoreError::Kind::Invalid,
          "namespace " + ns +
              ": io.l5d.k8s storage keeps each namespace as a Kubernetes object, whose name "
              "must be lowercase letters, digits, '-' and '.'"}));
      return;
    }
    auto body = encode(ns, value);
    if (!body) {
      done(Unexpected(StoreError{StoreError::Kind::Invalid, body.error()}));
      return;
    }
    call("POST", collection(), std::move(*body),
         [this, ns, value, done](int status, const json& reply) mutable {
           if (status == 201 || status == 200) return written(ns, std::move(value), reply, done);
           if (status == 409) {
             return done(Unexpected(
                 StoreError{StoreError::Kind::Exists, "namespace " + ns + " already exists"}));
           }
           done(Unexpected(failure("creating", ns, status, reply)));
         });
  }

  void update(const std::string& ns, StoredNamespace value, std::optional<std::string> ifVersion,
              Done done) override {
    put(ns, std::move(value), ifVersion, std::move(done), 0);
  }

  void remove(const std::string& ns, std::optional<std::string> ifVersion, Done done) override {
    std::string body;
    if (ifVersion) {
      body = json{{"kind", "DeleteOptions"},
                  {"apiVersion", "v1"},
                  {"preconditions", {{"resourceVersion", *ifVersion}}}}
                 .dump();
    }
    call("DELETE", object(ns), std::move(body),
         [this, ns, ifVersion, done](int status, const json& reply) {
           if (status == 200 || status == 202) {
             // The API server answers a custom resource's delete with a Status,
             // not the object: what was known of it is what the watch may still
             // replay, so nothing at or before that version brings it back.
             auto it = map_.find(ns);
             std::string rv = it != map_.end() ? it->second.version : std::string();
             if (ifVersion && (rv.empty() || olderThan(rv, *ifVersion))) rv = *ifVersion;
             if (apply(ns, std::nullopt, rv) && onChange_) onChange_(map_);
             return done(std::string());
           }
           if (status == 404)
             return done(Unexpected(StoreError{StoreError::Kind::NotFound, "no namespace " + ns}));
           if (status == 409) return done(Unexpected(mismatch(ns, ifVersion)));
           done(Unexpected(failure("deleting", ns, status, reply)));
         });
  }

  std::string describe() const override {
    return "io.l5d.k8s " + (api_ ? api_->where() : std::string()) + " namespace " + settings_.ns;
  }

 private:
  std::string collection() const {
    return "/apis/l5d.io/v1alpha1/namespaces/" + runtime::percentEncode(settings_.ns) + "/dtabs";
  }
  std::string object(const std::string& ns) const {
    return collection() + "/" + runtime::percentEncode(ns);
  }

  // A DTab object as a namespace; nullopt for one being deleted, and (with a
  // warning) for one whose dentries are not a dtab, say one written by hand.
  std::optional<StoredNamespace> decode(const json& obj) {
    const json& meta = at(obj, "metadata");
    // Being deleted (a finalizer holds it): gone as far as routing goes.
    if (!at(meta, "deletionTimestamp").is_null()) return std::nullopt;
    auto dtab =
        namer::dtabFromJson(at(obj, "dentries").is_null() ? json::array() : at(obj, "dentries"));
    if (!dtab) {
      std::fprintf(stderr,
                   "switchyard: storage io.l5d.k8s: DTab %s/%s is skipped: its dentries: %s\n",
                   settings_.ns.c_str(), stringAt(meta, "name").c_str(), dtab.error().c_str());
      return std::nullopt;
    }
    StoredNamespace v;
    v.dtab = dtab->show();
    v.base = stringAt(at(meta, "annotations"), kBaseAnnotation);
    v.version = stringAt(meta, "resourceVersion");
    return v;
  }

  // A new DTab object.
  Expected<std::string, std::string> encode(const std::string& ns,
                                            const StoredNamespace& value) const {
    auto dtab = dtab::Dtab::parse(value.dtab);
    if (!dtab) return Unexpected("the dtab does not parse: " + dtab.error().message());
    json meta = {{"name", ns}, {"namespace", settings_.ns}};
    if (!value.base.empty()) meta["annotations"] = {{kBaseAnnotation, value.base}};
    json obj = {{"apiVersion", kApiVersion},
                {"kind", "DTab"},
                {"metadata", std::move(meta)},
                {"dentries", namer::dtabToJson(*dtab)}};
    return obj.dump();
  }

  // An update reads the object first and writes it back with the new
  // dentries and base, so what others set on it (labels, annotations,
  // kubectl's last-applied configuration) is kept. Custom resources take no
  // unconditional update: the precondition is the caller's version or, with
  // none, the one just read; a 409 then means someone wrote in between, and
  // the read and write are tried again (3 times at most).
  void put(const std::string& ns, StoredNamespace value, std::optional<std::string> ifVersion,
           Done done, int attempt) {
    auto dtab = dtab::Dtab::parse(value.dtab);
    if (!dtab) {
      done(Unexpected(StoreError{StoreError::Kind::Invalid,
                                 "the dtab does not parse: " + dtab.error().message()}));
      return;
    }
    call("GET", object(ns), "",
         [this, ns, value = std::move(value), ifVersion, done = std::move(done), attempt,
          dentries = namer::dtabToJson(*dtab)](int status, const json& current) mutable {
           if (status == 404)
             return done(Unexpected(StoreError{StoreError::Kind::NotFound, "no namespace " + ns}));
           if (status != 200 || !current.is_object())
             return done(Unexpected(failure("reading", ns, status, current)));
           json obj = current;
           json& meta = obj["metadata"];
           if (!meta.is_object()) meta = json::object();
           if (ifVersion) meta["resourceVersion"] = *ifVersion;
           json& annotations = meta["annotations"];
           if (!annotations.is_object()) annotations = json::object();
           if (value.base.empty()) {
             annotations.erase(kBaseAnnotation);
           } else {
             annotations[kBaseAnnotation] = value.base;
           }
           if (annotations.empty()) meta.erase("annotations");
           obj["dentries"] = std::move(dentries);
           call("PUT", object(ns), obj.dump(),
                [this, ns, value, ifVersion, done, attempt](int put, const json& reply) mutable {
                  if (put == 200 || put == 201) return written(ns, std::move(value), reply, done);
                  if (put == 404)
                    return done(
                        Unexpected(StoreError{StoreError::Kind::NotFound, "no namespace " + ns}));
                  if (put == 409 && ifVersion) return done(Unexpected(mismatch(ns, ifVersion)));
                  if (put == 409 && attempt < 3)
                    return this->put(ns, std::move(value), std::nullopt, std::move(done),
                                     attempt + 1);
                  done(Unexpected(failure("updating", ns, put, reply)));
                });
         });
  }

  // A write the API server took: its answer is the object as stored, known
  // here before the watch reports it (so a read after the write sees it).
  void written(const std::string& ns, StoredNamespace value, const json& reply, const Done& done) {
    std::string rv = stringAt(at(reply, "metadata"), "resourceVersion");
    value.version = rv;
    if (apply(ns, std::move(value), rv) && onChange_) onChange_(map_);
    done(rv);
  }

  // Applies a change at `rv` unless something newer is known for `ns`.
  bool apply(const std::string& ns, std::optional<StoredNamespace> value, const std::string& rv) {
    auto it = map_.find(ns);
    if (it != map_.end() && olderThan(rv, it->second.version)) return false;
    if (auto d = deletedAt_.find(ns); d != deletedAt_.end() && notNewer(rv, d->second))
      return false;
    if (value) {
      value->version = rv;
      if (it != map_.end() && it->second == *value) return false;
      map_[ns] = std::move(*value);
      deletedAt_.erase(ns);
      return true;
    }
    if (!rv.empty()) deletedAt_[ns] = rv;
    if (it == map_.end()) return false;
    map_.erase(it);
    return true;
  }

  StoreError mismatch(const std::string& ns, const std::optional<std::string>& ifVersion) const {
    auto it = map_.find(ns);
    std::string now = it != map_.end() ? " is at version " + it->second.version + "," : " changed:";
    return StoreError{StoreError::Kind::VersionMismatch,
                      "namespace " + ns + now + " not " + ifVersion.value_or("")};
  }

  StoreError failure(const char* doing, const std::string& ns, int status,
                     const json& reply) const {
    std::string message = stringAt(reply, "message");
    std::string why = status == 0 ? message
                                  : "answered " + std::to_string(status) +
                                        (message.empty() ? "" : ": " + message);
    auto kind =
        status == 422 || status == 400 ? StoreError::Kind::Invalid : StoreError::Kind::Unavailable;
    return StoreError{kind, std::string(doing) + " namespace " + ns +
                                " through the Kubernetes API at " +
                                (api_ ? api_->where() : std::string()) + ": " + why};
  }

  // One request; `then` gets the status (0: no answer, the reason as the
  // reply's message) and the JSON reply.
  void call(const std::string& method, std::string target, std::string body,
            std::function<void(int, const json&)> then) {
    auto req = api_->request(method, std::move(target), std::move(body));
    req.timeoutMs = 5'000;
    api_->withAddress([this, alive = alive_, req = std::move(req), then = std::move(then)](
                          Expected<runtime::SocketAddress, std::string> addr) mutable {
      if (!*alive) return;
      if (!addr) return then(0, json{{"message", addr.error()}});
      calls_.fetch(*addr, std::move(req),
                   [this, then = std::move(then)](Expected<runtime::HttpResult, std::string> r) {
                     if (!r) return then(0, json{{"message", r.error()}});
                     if (r->status == 401) api_->unauthorized();
                     then(r->status, json::parse(r->body, nullptr, false));
                   });
    });
  }

  runtime::Loop& loop_;
  K8sStoreSettings settings_;
  std::unique_ptr<k8s::ApiClient> api_;
  std::unique_ptr<k8s::ListWatch> watch_;
  std::function<void(Expected<NamespaceMap, std::string>)> ready_;
  std::function<void(const NamespaceMap&)> onChange_;
  NamespaceMap map_;
  std::map<std::string, std::string>
      deletedAt_;  // namespace -> the resourceVersion of its deletion
  runtime::FetchSet calls_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

router::Plugin k8sStorage() {
  return router::storagePlugin<K8sStoreSettings>(
      "io.l5d.k8s",
      [](runtime::ConfigReader& r) -> std::optional<K8sStoreSettings> {
        K8sStoreSettings s;
        s.api = k8s::ApiSettings::read(r);
        s.ns = r.string("namespace", s.ns);
        if (!isObjectName(s.ns) || s.ns.find('.') != std::string::npos) {
          r.problems().error(r.childPath("namespace"),
                             "expected a Kubernetes namespace name, got \"" + s.ns + "\"");
        }
        // Namerd marked this storage experimental; the flag changes nothing here.
        r.boolean("experimental", false);
        return s;
      },
      [](const K8sStoreSettings& s, runtime::Loop& loop) -> std::unique_ptr<namer::DtabStore> {
        return std::make_unique<K8sStore>(loop, s);
      });
}

}  // namespace switchyard::plugins
