#include "plugins/identifiers/header.h"

namespace switchyard::plugins {
namespace {

struct Settings {
  std::string header;
};

class HeaderPath final : public router::Identifier {
 public:
  HeaderPath(Settings s, dtab::Path prefix) : s_(std::move(s)), prefix_(std::move(prefix)) {}
  Expected<router::Identified, std::string> identify(const runtime::RequestHead& req) const override {
    auto value = req.headers.get(s_.header);
    if (!value) return Unexpected("io.l5d.header: the " + s_.header + " header is missing");
    auto path = dtab::Path::parse(*value);
    if (!path) {
      return Unexpected("io.l5d.header: the " + s_.header + " header is not a path: " +
                        path.error().message());
    }
    return router::Identified{prefix_ + *path, std::nullopt};
  }

 private:
  Settings s_;
  dtab::Path prefix_;
};

}  // namespace

router::Plugin headerIdentifier() {
  return {router::PluginCategory::Identifier, "io.l5d.header",
          [](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
            return std::make_shared<Settings>(Settings{r.string("header", "l5d-name")});
          },
          [](const void* s, const router::IdentifierContext& ctx) -> std::unique_ptr<router::Identifier> {
            return std::make_unique<HeaderPath>(*static_cast<const Settings*>(s), ctx.dstPrefix);
          },
          nullptr};
}

}  // namespace switchyard::plugins
