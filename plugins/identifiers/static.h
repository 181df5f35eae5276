#pragma once
#include "router/plugin_registry.h"

namespace switchyard::plugins {
// io.l5d.static: every request gets the configured `path` (no dstPrefix).
router::Plugin staticIdentifier();
}  // namespace switchyard::plugins
