#pragma once

// What the Kubernetes plugins share: how to reach the API server (through a
// `kubectl proxy`, or in a pod as its service account over HTTPS) and the
// list-then-watch loop every Kubernetes client runs. The io.l5d.k8s namer
// watches Endpoints, EndpointSlices and Services with it; the io.l5d.k8s
// dtab storage watches its DTab objects. Everything here runs on one loop.

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "namer/dns_settings.h"
#include "runtime/config_reader.h"
#include "runtime/http_client.h"
#include "runtime/loop.h"
#include "runtime/tcp.h"
#include "runtime/timer.h"
#include "runtime/tls.h"

namespace switchyard::plugins::k8s {

// Reading the API's JSON, which may hold anything: an object's member, or
// nullptr (not an object, or no such key); a string member, or "".
const nlohmann::json* member(const nlohmann::json& obj, const char* key);
std::string stringAt(const nlohmann::json& obj, const char* key);

struct ApiSettings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8001;
  // In-cluster: HTTPS with the service account's CA and token.
  std::shared_ptr<const runtime::TlsClientContext> tls;
  std::string tokenFile;

  // Linkerd's `host` and `port` (localhost:8001, a `kubectl proxy` beside
  // the process). With no host and KUBERNETES_SERVICE_HOST set, as in every
  // pod, the API server itself at KUBERNETES_SERVICE_HOST:_PORT over HTTPS,
  // trusting the service account's ca.crt and sending its token (the
  // account's directory is /var/run/secrets/kubernetes.io/serviceaccount, or
  // SWITCHYARD_K8S_SERVICEACCOUNT_DIR). Problems go to `r`.
  static ApiSettings read(runtime::ConfigReader& r);
};

class ApiClient {
 public:
  // `dns`: how a host name in `host` is looked up (the process's `dns`
  // block; resolv.conf by default).
  ApiClient(runtime::Loop& loop, ApiSettings settings, namer::DnsSettings dns = {});
  ~ApiClient();
  runtime::Loop& loop() { return loop_; }
  // The API server's address, then `then` (at once for a numeric host). A
  // host name is looked up at most every 30 s, one lookup for every caller
  // meanwhile; if a lookup fails, the last address found is used.
  void withAddress(std::function<void(Expected<runtime::SocketAddress, std::string>)> then);
  // "https://10.96.0.1:443", "http://127.0.0.1:8001": for messages.
  std::string where() const;
  // A request with Host, Accept and (in-cluster) TLS and the bearer token.
  runtime::HttpCall::Request request(std::string method, std::string target, std::string body = {});
  // The API said 401: the token may have been rotated; read it again.
  void unauthorized() { tokenReadMs_ = 0; }

 private:
  std::string bearerToken();
  std::string authority() const;

  runtime::Loop& loop_;
  ApiSettings settings_;
  namer::DnsSettings dnsSettings_;
  std::unique_ptr<runtime::DnsResolver> dns_;
  std::optional<runtime::SocketAddress> addr_;
  bool numeric_ = false;
  std::uint64_t resolvedMs_ = 0;
  std::vector<std::function<void(Expected<runtime::SocketAddress, std::string>)>> waiting_;
  std::string token_;
  std::uint64_t tokenReadMs_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// One collection (or a selection of it) listed, then watched from the
// list's resourceVersion, as Kubernetes clients do: a watch that ends is
// reopened from the last resourceVersion seen (bookmarks included); 410
// Gone or an ERROR event lists again; failures back off 0.2 s -> 5 s, and
// the handler hears each one. Destroying it cancels everything: no callback
// runs after that.
class ListWatch {
 public:
  struct Handler {
    // The whole state: a list's items (an array, possibly empty), as of
    // the list's resourceVersion.
    std::function<void(const nlohmann::json& items, const std::string& resourceVersion)> onList;
    // One change: type ADDED, MODIFIED or DELETED, and the object.
    std::function<void(const std::string& type, const nlohmann::json& object)> onEvent;
    // A list or watch failed, and is tried again after a backoff. `first`:
    // the first failure since it last worked.
    std::function<void(const std::string& why, bool first)> onFailure;
    // After failures, a watch has stayed open and delivered for a second.
    std::function<void()> onRecovered;
  };
  // `collection`: /api/v1/namespaces/default/endpoints; `query`: selectors
  // (fieldSelector=...&labelSelector=...), or empty.
  ListWatch(ApiClient& api, std::string collection, std::string query, Handler handler);
  ~ListWatch();
  ListWatch(const ListWatch&) = delete;
  ListWatch& operator=(const ListWatch&) = delete;
  void start();

 private:
  void list();
  void list(const runtime::SocketAddress& addr);
  void watch();
  void watch(const runtime::SocketAddress& addr);
  void onLine(const std::string& line);
  void failed(const std::string& why);
  // Gives up the call in flight and lists again, after the backoff: for an
  // answer that ends the stream's use (an ERROR event, an event too large).
  void relistLater(std::string why);
  // `step` once the API server's address is known, unless dropped meanwhile.
  void withAddress(void (ListWatch::*step)(const runtime::SocketAddress&));
  // Resets the failure count once a watch has lasted a second; false if a
  // handler dropped (or destroyed) this meanwhile.
  bool healthy();
  void drop();
  std::string target(bool watching) const;

  ApiClient& api_;
  std::string collection_, query_;
  Handler handler_;
  std::string resourceVersion_;
  std::unique_ptr<runtime::HttpCall> call_;
  int status_ = 0;
  std::string buffer_;
  int failures_ = 0;
  bool relist_ = false;  // the watch said 410 (or ERROR): list again
  std::uint64_t watchStartMs_ = 0;
  runtime::Timer retry_;
  std::shared_ptr<std::uint64_t> gen_ =
      std::make_shared<std::uint64_t>(0);  // bumped when a call is dropped
};

}  // namespace switchyard::plugins::k8s
