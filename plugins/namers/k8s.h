#pragma once

#include "router/plugin_registry.h"

namespace switchyard::plugins {

// io.l5d.k8s: /#/io.l5d.k8s/<namespace>/<port>/<service>[/rest] binds to the
// ready addresses of that Service's Endpoints, at the endpoint port named
// <port> (or numbered <port>). Each service asked for is listed, then
// watched from the list's resourceVersion, as Kubernetes clients do: a watch
// that ends is reopened from the last resourceVersion seen (bookmarks
// included); 410 Gone or an ERROR event with code 410 makes it list again;
// errors back off. A change the API reports replaces the set at once; while
// the API cannot be reached the last good set is kept. A service (or port)
// that does not exist is a negative binding, so the dtab can fall back.
// Config as Linkerd's: host (localhost), port (8001: a `kubectl proxy`
// beside the router), labelSelector (only Endpoints with these labels).
router::Plugin k8sNamer();

}  // namespace switchyard::plugins
