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
  return {router::PluginCategory::Identifier, "io.l5d.methodAndHost",
          [](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
            return std::make_shared<Settings>(Settings{r.boolean("httpUriInDst", false)});
          },
          [](const void* s, const router::IdentifierContext& ctx) -> std::unique_ptr<router::Identifier> {
            return std::make_unique<MethodAndHost>(*static_cast<const Settings*>(s), ctx.dstPrefix);
          },
          nullptr};
}

}  // namespace switchyard::plugins
