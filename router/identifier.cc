#include "router/identifier.h"

namespace switchyard::router {

Expected<Identified, std::string> IdentifierChain::identify(const runtime::RequestHead& request) const {
  std::string reasons;
  for (const auto& id : chain_) {
    auto r = id->identify(request);
    if (r) return r;
    reasons += (reasons.empty() ? "" : "; ") + r.error();
  }
  return Unexpected(reasons.empty() ? std::string("no identifier configured") : reasons);
}

}  // namespace switchyard::router
