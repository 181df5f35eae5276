#pragma once

#include "router/plugin_registry.h"

namespace switchyard::plugins {

// storage kind io.l5d.k8s (Namerd's): each dtab namespace is a DTab custom
// resource (l5d.io/v1alpha1, plural dtabs, the CRD in k8s/namer.yaml) named
// after it, in one Kubernetes namespace, with Namerd's own shape:
//   {"apiVersion": "l5d.io/v1alpha1", "kind": "DTab",
//    "metadata": {"name": "default", ...},
//    "dentries": [{"prefix": "/svc", "dst": "/#/io.l5d.k8s/default/http"}]}
// so dtabs written by Namerd (or kubectl) are read as they are. A base
// namespace (Switchyard's tenants) is the annotation switchyard.io/base.
// The version is the object's resourceVersion; updates and deletes send it
// as their precondition, so the API server refuses a lost update (409 ->
// 412 for the caller). The collection is listed, then watched, and every
// replica follows what any of them (or kubectl) writes. Config: host, port
// (a `kubectl proxy`, or in-cluster HTTPS with neither, as the io.l5d.k8s
// namer), namespace (default).
router::Plugin k8sStorage();

}  // namespace switchyard::plugins
