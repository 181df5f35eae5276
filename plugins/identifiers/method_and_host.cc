#include "plugins/identifiers/method_and_host.h"

#include "plugins/identifiers/uri_segments.h"

namespace switchyard::plugins {
namespace {

struct Settings {
  bool httpUriInDst = false;
};

class MethodAndHost final : public router::Identifier {
 public:
  MethodAndHost(Settings s, dtab::Path prefix) : s_(s), prefix_(std::move(prefix)) {}
  Expected<router::Identified, std::string> identify(const runtime::RequestHead& req) const override {
    std::vector<std::string> elems = prefix_.elems();
    elems.push_back(req.versionMinor == 0 ? "1.0" : "1.1");
    elems.push_back(req.method);
    if (req.versionMinor != 0) {
      auto host = req.headers.get("Host");
      if (!host || host->empty()) {
        return Unexpected(std::string("io.l5d.methodAndHost: an HTTP/1.1 request needs a Host header"));
      }
      elems.emplace_back(*host);
    }
    if (s_.httpUriInDst) {
      for (auto& seg : uriSegments(req.path())) elems.push_back(std::move(seg));
    }
    return router::Identified{dtab::Path(std::move(elems)), std::nullopt};
  }

 private:
  Settings s_;
  dtab::Path prefix_;
};

}  // namespace

router::Plugin methodAndHostIdentifier() {
  return router::identifierPlugin<Settings>(
      "io.l5d.methodAndHost", [](runtime::ConfigReader& r) { return Settings{r.boolean("httpUriInDst", false)}; },
      [](const Settings& s, const router::IdentifierContext& ctx) {
        return std::make_unique<MethodAndHost>(s, ctx.dstPrefix);
      });
}

}  // namespace switchyard::plugins
