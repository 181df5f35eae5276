#include "plugins/identifiers/static.h"

namespace switchyard::plugins {
namespace {

class StaticIdentifier final : public router::Identifier {
 public:
  explicit StaticIdentifier(dtab::Path path) : path_(std::move(path)) {}
  Expected<router::Identified, std::string> identify(const runtime::RequestHead&) const override {
    return router::Identified{path_, std::nullopt};
  }

 private:
  dtab::Path path_;
};

}  // namespace

router::Plugin staticIdentifier() {
  return {router::PluginCategory::Identifier, "io.l5d.static",
          [](runtime::ConfigReader& r) -> std::shared_ptr<const void> {
            std::string text = r.requiredString("path");
            auto path = dtab::Path::parse(text);
            if (!path) {
              r.problems().error(r.childPath("path"), path.error().message());
              return nullptr;
            }
            return std::make_shared<dtab::Path>(*path);
          },
          [](const void* s, const router::IdentifierContext&) -> std::unique_ptr<router::Identifier> {
            return std::make_unique<StaticIdentifier>(*static_cast<const dtab::Path*>(s));
          },
          nullptr};
}

}  // namespace switchyard::plugins
