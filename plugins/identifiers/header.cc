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
  return router::identifierPlugin<Settings>(
      "io.l5d.header", [](runtime::ConfigReader& r) { return Settings{r.string("header", "l5d-name")}; },
      [](const Settings& s, const router::IdentifierContext& ctx) {
        return std::make_unique<HeaderPath>(s, ctx.dstPrefix);
      });
}

}  // namespace switchyard::plugins
