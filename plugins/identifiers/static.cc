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
  return router::identifierPlugin<dtab::Path>(
      "io.l5d.static",
      [](runtime::ConfigReader& r) -> std::optional<dtab::Path> {
        auto path = dtab::Path::parse(r.requiredString("path"));
        if (!path) {
          r.problems().error(r.childPath("path"), path.error().message());
          return std::nullopt;
        }
        return *path;
      },
      [](const dtab::Path& path, const router::IdentifierContext&) {
        return std::make_unique<StaticIdentifier>(path);
      });
}

}  // namespace switchyard::plugins
