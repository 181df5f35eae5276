#pragma once

#include "router/plugin_registry.h"

namespace switchyard::plugins {

// Every kind Switchyard implements, router built-ins included. The one
// explicit list: adding a plugin means adding a line to registry.cc.
router::PluginRegistry allPlugins();

}  // namespace switchyard::plugins
