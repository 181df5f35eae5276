#include "plugins/identifiers/path.h"

#include "plugins/identifiers/uri_segments.h"

namespace switchyard::plugins {
namespace {

struct Settings {
  std::size_t segments = 1;
  bool consume = false;
};

class PathIdentifier final : public router::Identifier {
 public:
  PathIdentifier(Settings s, dtab::Path prefix) : s_(s), prefix_(std::move(prefix)) {}
  Expected<router::Identified, std::string> identify(const runtime::RequestHead& req) const override {
    std::vector<std::string> segs = uriSegments(req.path());
    if (segs.size() < s_.segments) {
      return Unexpected("io.l5d.path: the request path " + std::string(req.path()) + " has fewer than " +
                        std::to_string(s_.segments) + " segment(s)");
    }
    std::vector<std::string> elems = prefix_.elems();
    elems.insert(elems.end(), segs.begin(), segs.begin() + static_cast<long>(s_.segments));
    router::Identified out{dtab::Path(std::move(elems)), std::nullopt};
    if (s_.consume) out.target = consumed(req, segs);
    return out;
  }

 private:
  // The origin-form target without the identifying segments, query kept.
  std::string consumed(const runtime::RequestHead& req, const std::vector<std::string>& segs) const {
    std::string rest;
    for (std::size_t i = s_.segments; i < segs.size(); ++i) rest += "/" + segs[i];
    std::string_view path = req.path();
    if (rest.empty() || (path.size() > 1 && path.back() == '/')) rest += "/";
    std::string_view t = req.target;
    auto q = t.find('?');
    if (q != std::string_view::npos) rest += t.substr(q);
    return rest;
  }

  Settings s_;
  dtab::Path prefix_;
};

}  // namespace

router::Plugin pathIdentifier() {
  return router::identifierPlugin<Settings>(
      "io.l5d.path",
      [](runtime::ConfigReader& r) {
        Settings s;
        s.segments = static_cast<std::size_t>(r.integer("segments", 1, 1, 1000));
        s.consume = r.boolean("consume", false);
        return std::optional<Settings>(s);
      },
      [](const Settings& s, const router::IdentifierContext& ctx) {
        return std::make_unique<PathIdentifier>(s, ctx.dstPrefix);
      });
}

}  // namespace switchyard::plugins
