#pragma once

// Identifier: request -> logical name (`/svc/hello`). The first step of the
// router's stack; what it cannot identify is answered 400 with the reason in
// `l5d-err`.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dtab/expected.h"
#include "dtab/path.h"
#include "runtime/http_message.h"

namespace switchyard::router {

struct Identified {
  dtab::Path name;
  // Set when the identifier rewrites the request target (io.l5d.path with
  // `consume: true` strips the segments it used).
  std::optional<std::string> target;
};

class Identifier {
 public:
  virtual ~Identifier() = default;
  // The logical name, or why this request has none (for a person).
  virtual Expected<Identified, std::string> identify(const runtime::RequestHead& request) const = 0;
};

// Linkerd's list of identifiers: each is tried in order and the first that
// identifies the request wins; if none does, the reasons are joined.
class IdentifierChain final : public Identifier {
 public:
  explicit IdentifierChain(std::vector<std::unique_ptr<Identifier>> chain) : chain_(std::move(chain)) {}
  Expected<Identified, std::string> identify(const runtime::RequestHead& request) const override;

 private:
  std::vector<std::unique_ptr<Identifier>> chain_;
};

}  // namespace switchyard::router
