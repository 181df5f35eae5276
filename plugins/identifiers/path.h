#pragma once
#include "router/plugin_registry.h"

namespace switchyard::plugins {
// io.l5d.path: the first `segments` (default 1) segments of the request path:
// GET /users/42 -> /svc/users. With `consume: true` they are removed from the
// request before it is forwarded (/42).
router::Plugin pathIdentifier();
}  // namespace switchyard::plugins
