#include "plugins/identifiers/header_token.h"

namespace switchyard::plugins {
namespace {

struct Settings {
  std::string header;
};

class HeaderToken final : public router::Identifier {
 public:
  HeaderToken(Settings s, dtab::Path prefix) : s_(std::move(s)), prefix_(std::move(prefix)) {}
  Expected<router::Identified, std::string> identify(const runtime::RequestHead& req) const override {
    auto value = req.headers.get(s_.header);
    if (!value || value->empty()) {
      return Unexpected("io.l5d.header.token: the " + s_.header + " header is missing or empty");
    }
    return router::Identified{prefix_ + dtab::Path{std::string(*value)}, std::nullopt};
  }

 private:
  Settings s_;
  dtab::Path prefix_;
};

}  // namespace

router::Plugin headerTokenIdentifier() {
  return router::identifierPlugin<Settings>(
      "io.l5d.header.token", [](runtime::ConfigReader& r) { return Settings{r.string("header", "Host")}; },
      [](const Settings& s, const router::IdentifierContext& ctx) {
        return std::make_unique<HeaderToken>(s, ctx.dstPrefix);
      });
}

}  // namespace switchyard::plugins
