#pragma once
#include "router/plugin_registry.h"

namespace switchyard::plugins {
// io.l5d.methodAndHost: /svc/1.1/GET/hello for HTTP/1.1 (Host required),
// /svc/1.0/GET for HTTP/1.0; with `httpUriInDst: true` the request path's
// segments follow.
router::Plugin methodAndHostIdentifier();
}  // namespace switchyard::plugins
