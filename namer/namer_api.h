#pragma once

// NamerApi: the namer service's HTTP interface, Namerd's io.l5d.httpController
// paths and JSON shapes (docs/ARCHITECTURE.md, "The namer service"):
//   GET    /api/1/dtabs                      namespace names
//   GET    /api/1/dtabs/<ns>                 dentries as JSON, or text with
//                                            Accept: application/dtab; ETag
//   POST   /api/1/dtabs/<ns>[?base=B]        create (409 if it exists)
//   PUT    /api/1/dtabs/<ns>[?base=B]        replace (If-Match: version, 412)
//   DELETE /api/1/dtabs/<ns>                 (If-Match too)
//   GET    /api/1/bind/<ns>?path=&dtab=      bound tree
//   GET    /api/1/addr/<ns>?path=/#/...      addresses of a bound name
//   GET    /api/1/resolve/<ns>?path=&dtab=   addresses of a logical name
//   GET    /api/1/delegate/<ns>?path=&dtab=  every delegation step
// `?watch=true` on the GETs streams the answer again after every change that
// alters it, one JSON document per line, starting with the current one.
// A namespace with a base has as its dtab the base's (effective) dtab
// followed by its own entries. Writes need a token when tokens are set: the
// admin token for any namespace, a namespace's own token for it alone.

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtab/dtab.h"
#include "dtab/namer.h"
#include "namer/dtab_store.h"
#include "runtime/http_server.h"
#include "runtime/loop.h"

namespace switchyard::namer {

struct ApiAuth {
  std::string adminToken;                         // may write every namespace
  std::map<std::string, std::string> namespaces;  // namespace -> its token
  bool open() const { return adminToken.empty() && namespaces.empty(); }
};

struct ApiStats {
  std::uint64_t requests = 0;
  std::uint64_t writes = 0;
  std::uint64_t rejected = 0;  // 4xx answers
  std::uint64_t watches = 0;   // open now
  std::uint64_t updatesSent = 0;
};

class NamerApi {
 public:
  // `namers` gives the configured and system namers as of now.
  NamerApi(runtime::Loop& loop, DtabStore& store, ApiAuth auth,
           std::function<std::vector<dtab::NamerEntry>()> namers);
  ~NamerApi();

  Expected<std::uint16_t, std::string> listen(const std::string& ip, std::uint16_t port);
  void stop();

  // The store's state changed (or was first read); watches are re-evaluated.
  void setNamespaces(const NamespaceMap& map);
  // A namer's state changed; watches are re-evaluated.
  void namingChanged();
  const ApiStats& stats() const { return stats_; }

 private:
  struct Watch;
  struct Answer {
    int status;
    std::string contentType;
    std::string body;
    runtime::HttpHeaders headers;
  };
  void handle(runtime::HttpRequest&& req, std::shared_ptr<runtime::HttpResponder> r);
  void write(const runtime::HttpRequest& req, const std::string& ns, std::shared_ptr<runtime::HttpResponder> r);
  // The answer to a GET, as of now.
  Answer read(const runtime::HttpRequest& req);
  Answer bindLike(const std::string& kind, const std::string& ns, const runtime::HttpRequest& req);
  void reevaluate();
  // The effective dtab of `ns`: its base's first. Nullopt if no such namespace.
  std::optional<dtab::Dtab> effectiveDtab(const std::string& ns) const;
  // Empty if `token` may write `ns`, else the status and why.
  std::optional<Answer> forbidden(const runtime::HttpRequest& req, const std::string& ns) const;

  runtime::Loop& loop_;
  DtabStore& store_;
  ApiAuth auth_;
  std::function<std::vector<dtab::NamerEntry>()> namers_;
  runtime::HttpServer server_;
  NamespaceMap namespaces_;
  std::map<std::string, dtab::Dtab> parsed_;  // each namespace's own entries
  std::list<std::shared_ptr<Watch>> watches_;
  ApiStats stats_;
  bool reevaluating_ = false;
  bool reevaluateAgain_ = false;
};

}  // namespace switchyard::namer
