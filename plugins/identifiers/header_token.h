#pragma once
#include "router/plugin_registry.h"

namespace switchyard::plugins {
// io.l5d.header.token: the value of one header (default `Host`) as one path
// element: `Host: hello` -> /svc/hello. The default identifier.
router::Plugin headerTokenIdentifier();
}  // namespace switchyard::plugins
