#include "plugins/registry.h"

#include "plugins/identifiers/header.h"
#include "plugins/identifiers/header_token.h"
#include "plugins/identifiers/method_and_host.h"
#include "plugins/identifiers/path.h"
#include "plugins/identifiers/static.h"
#include "plugins/namers/dnssrv.h"
#include "plugins/namers/fs.h"
#include "plugins/namers/k8s.h"
#include "plugins/storage/etcd.h"
#include "plugins/storage/k8s.h"
#include "router/builtin_plugins.h"

namespace switchyard::plugins {

router::PluginRegistry allPlugins() {
  router::PluginRegistry r;
  router::addBuiltinPlugins(r);
  r.add(headerTokenIdentifier());
  r.add(methodAndHostIdentifier());
  r.add(pathIdentifier());
  r.add(headerIdentifier());
  r.add(staticIdentifier());
  r.add(fsNamer());
  r.add(dnsSrvNamer());
  r.add(k8sNamer());
  r.add(k8sExternalNamer());
  r.add(k8sNamespacedNamer());
  r.add(etcdStorage());
  r.add(k8sStorage());
  return r;
}

}  // namespace switchyard::plugins
