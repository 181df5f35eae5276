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
// beside the router), labelSelector (a label key: names then end in the
// label's value, /<namespace>/<port>/<service>/<value>, and only objects
// with that label value count). With no host and KUBERNETES_SERVICE_HOST
// set (inside a pod) the namer talks to the API server itself: HTTPS to
// KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT, verified against the
// service account's ca.crt, with its token (read again every minute, as the
// kubelet rotates it) as the bearer token.
router::Plugin k8sNamer();

// io.l5d.k8s.external: /#/io.l5d.k8s.external/<namespace>/<port>/<service>
// binds to that Service's load balancer (status.loadBalancer.ingress) on the
// Service port named (or numbered) <port>, for routers outside the cluster.
// An ingress IP is bound as it is; an ingress host name (AWS) becomes
// /$/inet/<host>/<port>, looked up and followed through the dns block. No
// such port, or no load balancer address yet: a negative binding. The same
// config, list-then-watch and metrics as io.l5d.k8s.
router::Plugin k8sExternalNamer();

// io.l5d.k8s.ns: io.l5d.k8s within one namespace, the value of the
// environment variable `envVar` (POD_NAMESPACE) when the namer is made:
// /#/io.l5d.k8s.ns/<port>/<service>[/<label value>]. Without the variable
// (or with one that is no namespace name) its names fail, saying so.
router::Plugin k8sNamespacedNamer();

}  // namespace switchyard::plugins
