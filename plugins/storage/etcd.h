#pragma once

#include "router/plugin_registry.h"

namespace switchyard::plugins {

// storage kind io.l5d.etcd (Namerd's name): namespaces kept in etcd v3,
// spoken to through its JSON gateway over HTTP/1.1 (/v3/kv/range, /v3/kv/txn,
// /v3/watch), so several namer replicas share one state. Each namespace is
// the key <pathPrefix>/<namespace> holding {"dtab": ..., "base": ...}; its
// version is the key's mod_revision. Writes are etcd transactions that
// compare the key's revision first (absent for create, the If-Match version
// for conditional writes), so concurrent writers through any replica lose
// nothing. A watch from the revision of the first read reports every change;
// when it breaks it resumes from the last revision seen (or reads everything
// again if etcd compacted past it). Config: host (localhost), port (2379),
// pathPrefix (/namerd/dtabs).
router::Plugin etcdStorage();

}  // namespace switchyard::plugins
