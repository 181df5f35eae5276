#pragma once
#include "router/plugin_registry.h"

namespace switchyard::plugins {
// io.l5d.header: a header (default `l5d-name`) that holds a whole path:
// `l5d-name: /hello/v2` -> /svc/hello/v2.
router::Plugin headerIdentifier();
}  // namespace switchyard::plugins
