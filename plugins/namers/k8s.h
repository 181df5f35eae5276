#pragma once

#include "router/plugin_registry.h"

namespace switchyard::plugins {

// io.l5d.k8s: /#/io.l5d.k8s/<namespace>/<port>/<service>[/rest] binds to the
// ready addresses of that Service, read from its Endpoints object or, with
// `useEndpointSlices: true`, from its EndpointSlices (discovery.k8s.io/v1,
// label kubernetes.io/service-name). <port> is a port name, or a number: the
// Service's port, mapped through its targetPort as Linkerd does (the Service
// is watched too, for numbered ports only; without such a Service port the
// number is the endpoints' own port).
//
// Each query is listed, then watched from the list's resourceVersion, as
// Kubernetes clients do: a watch that ends is reopened from the last
// resourceVersion seen (bookmarks included); 410 Gone or an ERROR event makes
// it list again; errors back off 0.2 s -> 5 s. A change the API reports
// replaces the set at once; while the API cannot be reached the last good
// set is kept. A service (or port) that does not exist is a negative
// binding, so the dtab can fall back.
//
// Config as Linkerd's: host (localhost), port (8001: a `kubectl proxy`
// beside the router), labelSelector. With no host and KUBERNETES_SERVICE_HOST
// set (inside a pod) the namer talks to the API server itself: HTTPS to
// KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT, verified against the
// service account's ca.crt, with its token (read again every minute, as the
// kubelet rotates it) as the bearer token.
router::Plugin k8sNamer();

}  // namespace switchyard::plugins
