#!/usr/bin/env python3
"""The Kubernetes manifests (k8s/*.yaml, examples/k8s-hello-world/*.yaml):
every document is a Kubernetes object; every router and namer config held in
a ConfigMap passes the real binary's `--check` (and every dtab there
`switchyard dtab check`), both outside a cluster and with a pod's in-cluster
environment (KUBERNETES_SERVICE_HOST and a service-account directory, whose
token it then needs), and the etcd storage kept commented out in the
namer's config passes too once uncommented; the io.l5d.k8s namers and
storage reach the API in cluster (no host/port, no `kubectl proxy` container
anywhere) and read EndpointSlices; the DaemonSet publishes 4140 as a hostPort, probes
/admin/ping, takes NODE_NAME from spec.nodeName and gets more time to stop
than the router takes to drain; the ClusterRole only reads, and the only
writes granted are a namespaced Role's, on DTabs (l5d.io); the DTab CRD is
Namerd's and keeps unknown fields; every DTab object matches it and holds a
dtab (the `default` one the same as default.dtab); the names the configs
refer to (the routers' Service and its port `incoming`, the services' port
`http`, the namer service's address, its storage namespace) exist in the
manifests.

Usage: manifests_test.py SWITCHYARD_BINARY REPO_ROOT [TEST_NAME ...]

Needs PyYAML (Debian's python3-yaml) and openssl (test/support/certs.py). No
cluster is used.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import certs  # noqa: E402
import harness  # noqa: E402

try:
    import yaml
except ImportError:
    print("manifests_test: PyYAML is missing (apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(1)

BINARY = None
ROOT = None

# Where manifests live, relative to the repository's root, and the files that
# must be there (so a moved directory fails instead of checking nothing).
MANIFEST_DIRS = ["k8s", "examples/k8s-hello-world"]
REQUIRED_FILES = ["k8s/daemonset.yaml", "k8s/namer.yaml", "examples/k8s-hello-world/hello-world.yaml"]

READ_VERBS = {"get", "list", "watch"}
# What the io.l5d.k8s storage needs on its DTabs, in its own namespace.
DTAB_VERBS = {"get", "list", "watch", "create", "update", "delete"}

# The DTab custom resource (Namerd's).
DTAB_GROUP, DTAB_VERSION, DTAB_PLURAL, DTAB_KIND = "l5d.io", "v1alpha1", "dtabs", "DTab"

# What selects the API client's mode; unset for the plain `--check` runs, so
# that they are out-of-cluster even when this test itself runs in a pod.
IN_CLUSTER_VARS = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "SWITCHYARD_K8S_SERVICEACCOUNT_DIR")

_loaded = None


def manifest_files():
    files = []
    for d in MANIFEST_DIRS:
        files += glob.glob(os.path.join(ROOT, d, "**", "*.yaml"), recursive=True)
    return sorted(files)


def rel(path):
    return os.path.relpath(path, ROOT)


def documents():
    """[(file, index, document)] of every manifest file, loaded once. A file
    that does not parse is recorded as (file, None, exception)."""
    global _loaded
    if _loaded is None:
        _loaded = []
        for f in manifest_files():
            try:
                with open(f, encoding="utf-8") as fh:
                    for i, doc in enumerate(yaml.safe_load_all(fh)):
                        _loaded.append((f, i, doc))
            except yaml.YAMLError as e:
                _loaded.append((f, None, e))
    return _loaded


def objects(kind=None):
    """Every well-formed object (a mapping with kind), optionally of one kind."""
    return [d for _, i, d in documents()
            if i is not None and isinstance(d, dict) and (kind is None or d.get("kind") == kind)]


def find(kind, name, namespace=None):
    for o in objects(kind):
        meta = o.get("metadata") or {}
        if meta.get("name") == name and (namespace is None or meta.get("namespace", "default") == namespace):
            return o
    return None


def dig(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


def container(workload, name):
    for c in dig(workload, "spec", "template", "spec", "containers", default=[]) or []:
        if c.get("name") == name:
            return c
    return None


def env_source(c, name):
    """(index, value, fieldRef path) of env var `name` in container c."""
    for i, e in enumerate(c.get("env") or []):
        if e.get("name") == name:
            return i, e.get("value"), dig(e, "valueFrom", "fieldRef", "fieldPath")
    return None, None, None


def parse_config(text):
    """A ConfigMap value as YAML, or None if it is not a YAML mapping."""
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return v if isinstance(v, dict) else None


def config_kind(text):
    cfg = parse_config(text)
    if cfg is None:
        return None
    if "routers" in cfg:
        return "router"
    if "interfaces" in cfg or "storage" in cfg:
        return "namer"
    return None


def out_of_cluster_env():
    return {k: v for k, v in os.environ.items() if k not in IN_CLUSTER_VARS}


def run_check(args, text, suffix, env=None):
    with tempfile.TemporaryDirectory(prefix="switchyard-manifests-") as d:
        path = os.path.join(d, "config" + suffix)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        p = subprocess.run([BINARY] + args + [path], capture_output=True, text=True, timeout=60,
                           env=env if env is not None else out_of_cluster_env())
    return p.returncode, (p.stdout + p.stderr).strip()


def embedded_configs(kinds=("router", "namer")):
    """[(configmap name, key, kind, text)] of every router/namer config."""
    out = []
    for cm in objects("ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            if isinstance(value, str) and config_kind(value) in kinds:
                out.append((dig(cm, "metadata", "name"), key, config_kind(value), value))
    return out


def router_configs():
    """[(configmap name, key, parsed config)] of every router config."""
    return [(cm, key, parse_config(text)) for cm, key, _, text in embedded_configs(("router",))]


def namer_configs():
    """[(configmap name, key, parsed config)] of every namer service config."""
    return [(cm, key, parse_config(text)) for cm, key, _, text in embedded_configs(("namer",))]


def k8s_api_blocks(cfg):
    """[(where, block)] of every block of a parsed config that reaches the
    Kubernetes API: io.l5d.k8s namers and io.l5d.k8s storage."""
    out = [("namers[%d]" % i, n) for i, n in enumerate(cfg.get("namers") or [])
           if isinstance(n, dict) and n.get("kind") == "io.l5d.k8s"]
    storage = cfg.get("storage")
    if isinstance(storage, dict) and storage.get("kind") == "io.l5d.k8s":
        out.append(("storage", storage))
    return out


def workloads():
    """Every object with a pod template, and the pod spec."""
    return [o for o in objects() if isinstance(dig(o, "spec", "template", "spec"), dict)]


def dtab_text(dentries):
    """A DTab object's dentries as dtab text."""
    return "".join("%s => %s;\n" % (d.get("prefix"), d.get("dst")) for d in dentries)


def daemonset():
    return find("DaemonSet", "switchyard", "linkerd")


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

def test_every_document_is_an_object(c):
    files = [rel(f) for f in manifest_files()]
    for f in REQUIRED_FILES:
        c.check(f in files, "%s is missing (found: %s)" % (f, ", ".join(files) or "nothing"))
    for f, i, doc in documents():
        where = "%s document %s" % (rel(f), i)
        if i is None:
            c.fail("%s does not parse: %s" % (rel(f), doc))
            continue
        if not c.check(isinstance(doc, dict), "%s is not a mapping: %r" % (where, doc)):
            continue
        for key in ("apiVersion", "kind"):
            c.check(isinstance(doc.get(key), str) and doc.get(key), "%s has no %s" % (where, key))
        c.check(isinstance(dig(doc, "metadata", "name"), str) and dig(doc, "metadata", "name"),
                "%s (%s) has no metadata.name" % (where, doc.get("kind")))


def test_configmap_configs_pass_check(c):
    counts = {"router": 0, "namer": 0, "dtab": 0}
    for cm in objects("ConfigMap"):
        name = dig(cm, "metadata", "name")
        for key, value in (cm.get("data") or {}).items():
            where = "ConfigMap %s key %s" % (name, key)
            if not isinstance(value, str):
                c.fail("%s is not a string" % where)
                continue
            kind = config_kind(value)
            if kind == "router":
                rc, out = run_check(["router", "--check", "-c"], value, ".yaml")
            elif kind == "namer":
                rc, out = run_check(["namer", "--check", "-c"], value, ".yaml")
            elif key.endswith(".dtab"):
                kind = "dtab"
                rc, out = run_check(["dtab", "check", "-f"], value, ".dtab")
            else:
                continue
            counts[kind] += 1
            ok = rc == 0 and (kind == "dtab" or "OK" in out)
            c.check(ok, "%s: switchyard %s check: exit %d: %s" % (where, kind, rc, out))
    c.check(counts["router"] >= 2, "router configs found: %d, want the DaemonSet's and its namerd variant"
            % counts["router"])
    c.check(counts["namer"] >= 1, "namer configs found: %d, want the namer service's" % counts["namer"])


def test_configmap_configs_pass_check_in_cluster(c):
    """As in a pod: KUBERNETES_SERVICE_HOST set and the service account's
    token and CA mounted (here, in a directory named by
    SWITCHYARD_K8S_SERVICEACCOUNT_DIR). A block with no host or port then
    uses them, so every config still passes, and fails without the token."""
    configs = embedded_configs()
    c.check(configs, "no router or namer config in any ConfigMap")
    with tempfile.TemporaryDirectory(prefix="switchyard-manifests-sa-") as d:
        pki = certs.make_ca_and_server_cert(os.path.join(d, "pki"))
        sa = os.path.join(d, "serviceaccount")
        os.mkdir(sa)
        shutil.copy(pki["ca"], os.path.join(sa, "ca.crt"))
        token = os.path.join(sa, "token")
        with open(token, "w", encoding="utf-8") as f:
            f.write("manifests-test-token\n")
        env = out_of_cluster_env()
        env.update({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
                    "SWITCHYARD_K8S_SERVICEACCOUNT_DIR": sa})
        for cm, key, kind, text in configs:
            rc, out = run_check([kind, "--check", "-c"], text, ".yaml", env)
            c.check(rc == 0 and "OK" in out,
                    "ConfigMap %s key %s: in cluster, switchyard %s --check: exit %d: %s" % (cm, key, kind, rc, out))
        os.remove(token)
        for cm, key, kind, text in configs:
            rc, out = run_check([kind, "--check", "-c"], text, ".yaml", env)
            c.check(rc != 0 and token in out,
                    "ConfigMap %s key %s: in cluster without a token, switchyard %s --check fails naming %s: "
                    "exit %d: %s" % (cm, key, kind, token, rc, out))


def uncomment_storage(text):
    """A namer config with its commented-out `# storage:` block (the
    alternative kept in the file) in place of its storage; None if it has no
    such block."""
    m = re.search(r"^# storage:\n((?:#   .*\n)+)", text, flags=re.M)
    if not m:
        return None
    rest = re.sub(r"^storage:\n(?:[ \t].*\n)*", "", text.replace(m.group(0), "", 1), flags=re.M)
    return rest + "storage:\n" + re.sub(r"^#   ", "  ", m.group(1), flags=re.M)


def test_commented_storage_alternative_passes_check(c):
    """The etcd storage kept as a commented-out block still passes --check
    once uncommented (in place of the io.l5d.k8s storage)."""
    seen = 0
    for cm, key, kind, text in embedded_configs(("namer",)):
        alt = uncomment_storage(text)
        if alt is None:
            continue
        seen += 1
        cfg = parse_config(alt) or {}
        c.eq(dig(cfg, "storage", "kind"), "io.l5d.etcd", "ConfigMap %s key %s: the commented storage's kind" % (cm, key))
        rc, out = run_check(["namer", "--check", "-c"], alt, ".yaml")
        c.check(rc == 0 and "OK" in out,
                "ConfigMap %s key %s with its commented storage: switchyard namer --check: exit %d: %s"
                % (cm, key, rc, out))
    c.check(seen >= 1, "no namer config keeps a commented-out `# storage:` alternative")


def test_k8s_api_in_cluster(c):
    """No `kubectl proxy` container remains, and every io.l5d.k8s namer or
    storage block leaves host and port out (in-cluster mode); the namers read
    EndpointSlices; the pods keep their service-account token."""
    for w in workloads():
        where = "%s %s" % (w.get("kind"), dig(w, "metadata", "name"))
        pod = dig(w, "spec", "template", "spec")
        for cont in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            c.check(cont.get("name") != "kubectl" and "kubectl" not in str(cont.get("image", "")),
                    "%s: no kubectl container: %r (%r)" % (where, cont.get("name"), cont.get("image")))
            c.check("proxy" not in (cont.get("args") or []),
                    "%s container %s: no `proxy` argument: %r" % (where, cont.get("name"), cont.get("args")))
        c.check(pod.get("automountServiceAccountToken", True) is not False,
                "%s: automountServiceAccountToken is not turned off" % where)
        sa = find("ServiceAccount", pod.get("serviceAccountName"), dig(w, "metadata", "namespace"))
        if sa is not None:
            c.check(sa.get("automountServiceAccountToken", True) is not False,
                    "%s: its ServiceAccount %s does not turn automountServiceAccountToken off"
                    % (where, dig(sa, "metadata", "name")))
    seen = 0
    for cm, key, kind, text in embedded_configs():
        for where, block in k8s_api_blocks(parse_config(text)):
            seen += 1
            c.check("host" not in block and "port" not in block,
                    "ConfigMap %s key %s %s: io.l5d.k8s gives no host or port (in-cluster): %r"
                    % (cm, key, where, block))
            c.check(block.get("port") != 8001, "ConfigMap %s key %s %s: not port 8001" % (cm, key, where))
            if where.startswith("namers"):
                c.eq(block.get("useEndpointSlices"), True,
                     "ConfigMap %s key %s %s: useEndpointSlices" % (cm, key, where))
    c.check(seen >= 4, "io.l5d.k8s blocks found: %d, want the routers' (2), the namer's and its storage" % seen)


def test_daemonset(c):
    ds = daemonset()
    if not c.check(ds is not None, "no DaemonSet switchyard in namespace linkerd"):
        return
    pod = dig(ds, "spec", "template", "spec")
    sy = container(ds, "switchyard")
    if not c.check(sy is not None, "the DaemonSet has no container switchyard"):
        return
    ports = sy.get("ports") or []
    p4140 = [p for p in ports if p.get("containerPort") == 4140]
    c.check(p4140 and p4140[0].get("hostPort") == 4140,
            "container port 4140 is published as hostPort 4140: %r" % p4140)
    c.check(not pod.get("hostNetwork"), "hostPort, not hostNetwork")
    for port in (4141, 9990):
        c.check(any(p.get("containerPort") == port for p in ports), "container port %d is declared" % port)
    for probe in ("readinessProbe", "livenessProbe"):
        c.eq(dig(sy, probe, "httpGet", "path"), "/admin/ping", "%s path" % probe)
        c.eq(dig(sy, probe, "httpGet", "port"), 9990, "%s port" % probe)
    c.eq(env_source(sy, "NODE_NAME")[2], "spec.nodeName", "NODE_NAME comes from fieldRef spec.nodeName")
    c.eq(env_source(sy, "POD_IP")[2], "status.podIP", "POD_IP comes from fieldRef status.podIP")
    c.eq(dig(sy, "resources", "requests"), {"cpu": "50m", "memory": "32Mi"}, "resource requests")
    c.eq(dig(sy, "resources", "limits", "memory"), "128Mi", "memory limit")

    # The command's config file is a key of the mounted ConfigMap, and that
    # ConfigMap holds a router config.
    cmd = sy.get("command") or []
    c.eq(cmd[:3], ["switchyard", "router", "-c"], "the command runs the router")
    cfg_path = cmd[3] if len(cmd) > 3 else ""
    mount = next((m for m in sy.get("volumeMounts") or [] if cfg_path.startswith(m.get("mountPath", "") + "/")), None)
    if c.check(mount is not None, "%r is under a volume mount" % cfg_path):
        vol = next((v for v in pod.get("volumes") or [] if v.get("name") == mount.get("name")), {})
        cm = find("ConfigMap", dig(vol, "configMap", "name"), "linkerd")
        key = cfg_path[len(mount["mountPath"]) + 1:]
        if c.check(cm is not None, "the config volume's ConfigMap %r exists" % dig(vol, "configMap", "name")):
            value = (cm.get("data") or {}).get(key)
            c.check(isinstance(value, str) and config_kind(value) == "router",
                    "ConfigMap %s has a router config at key %r" % (dig(cm, "metadata", "name"), key))
            cfg = parse_config(value) or {}
            # The router drains for admin.shutdownGraceMs; the pod must get longer.
            grace_ms = dig(cfg, "admin", "shutdownGraceMs", default=10000)
            c.check(pod.get("terminationGracePeriodSeconds", 30) * 1000 > grace_ms,
                    "terminationGracePeriodSeconds %r > shutdownGraceMs %r"
                    % (pod.get("terminationGracePeriodSeconds"), grace_ms))

    # The router reaches the API itself (test_k8s_api_in_cluster): it is the
    # pod's only container.
    c.eq([x.get("name") for x in pod.get("containers") or []], ["switchyard"], "the DaemonSet's containers")
    for cm, key, cfg in router_configs():
        c.check(any(n.get("kind") == "io.l5d.k8s" for n in cfg.get("namers") or []),
                "ConfigMap %s %s has an io.l5d.k8s namer (for its dtab or its transformers)" % (cm, key))


def test_rbac_is_read_only(c):
    """ClusterRoles only read; the only writes granted anywhere are a
    namespaced Role's, on dtabs in l5d.io."""
    roles = objects("ClusterRole") + objects("Role")
    if not c.check(objects("ClusterRole"), "no ClusterRole"):
        return
    for role in roles:
        name = dig(role, "metadata", "name")
        for i, rule in enumerate(role.get("rules") or []):
            verbs = set(rule.get("verbs") or [])
            where = "%s %s rule %d" % (role["kind"], name, i)
            c.check(verbs, "%s grants some verb" % where)
            for field in ("apiGroups", "resources", "verbs"):
                c.check("*" not in (rule.get(field) or []), "%s: no * in %s" % (where, field))
            c.check(not rule.get("nonResourceURLs"), "%s: no nonResourceURLs" % where)
            if verbs <= READ_VERBS:
                continue
            # A write: only in a namespaced Role, only on l5d.io's dtabs.
            c.check(role["kind"] == "Role" and dig(role, "metadata", "namespace"),
                    "%s grants %s: writes only in a namespaced Role" % (where, sorted(verbs - READ_VERBS)))
            c.eq(rule.get("apiGroups"), [DTAB_GROUP], "%s writes: apiGroups" % where)
            c.eq(rule.get("resources"), [DTAB_PLURAL], "%s writes: resources" % where)
            c.check(verbs <= DTAB_VERBS, "%s grants only %s: %s" % (where, sorted(DTAB_VERBS), sorted(verbs)))
    # Every binding names a role defined here (not, say, the built-in edit).
    for b in objects("ClusterRoleBinding") + objects("RoleBinding"):
        ref = b.get("roleRef") or {}
        ns = dig(b, "metadata", "namespace")
        target = find(ref.get("kind"), ref.get("name"), ns if ref.get("kind") == "Role" else None)
        c.check(target is not None, "%s %s binds %s %s, defined in the manifests"
                % (b["kind"], dig(b, "metadata", "name"), ref.get("kind"), ref.get("name")))
    granted = {(g, r) for role in objects("ClusterRole") if dig(role, "metadata", "name") == "switchyard"
               for rule in role.get("rules") or [] for g in rule.get("apiGroups") or [] for r in rule.get("resources") or []}
    for g, r in [("", "endpoints"), ("", "services"), ("", "pods"), ("discovery.k8s.io", "endpointslices")]:
        c.check((g, r) in granted, "ClusterRole switchyard grants %s in %r" % (r, g or "core"))
    # The binding gives the role to the service account the pods run as.
    ds = daemonset()
    sa = dig(ds, "spec", "template", "spec", "serviceAccountName")
    c.check(find("ServiceAccount", sa, "linkerd") is not None, "the DaemonSet's ServiceAccount %r exists" % sa)
    bound = any(dig(b, "roleRef", "name") == "switchyard" and
                any(s.get("kind") == "ServiceAccount" and s.get("name") == sa and s.get("namespace") == "linkerd"
                    for s in b.get("subjects") or [])
                for b in objects("ClusterRoleBinding"))
    c.check(bound, "a ClusterRoleBinding gives ClusterRole switchyard to ServiceAccount linkerd/%s" % sa)


def test_namer_may_write_its_dtabs(c):
    """The namer's io.l5d.k8s storage namespace has a Role with every verb the
    storage uses on dtabs.l5d.io, bound to the namer's ServiceAccount."""
    dep = find("Deployment", "switchyard-namer", "linkerd")
    sa = dig(dep, "spec", "template", "spec", "serviceAccountName")
    stores = [(cm, key, cfg["storage"]) for cm, key, cfg in namer_configs()
              if dig(cfg, "storage", "kind") == "io.l5d.k8s"]
    c.check(stores, "no namer config uses io.l5d.k8s storage")
    for cm, key, storage in stores:
        ns = storage.get("namespace", "default")
        where = "ConfigMap %s %s: storage namespace %s" % (cm, key, ns)
        granted = set()
        for role in objects("Role"):
            if dig(role, "metadata", "namespace") != ns:
                continue
            bound = any(dig(b, "metadata", "namespace") == ns and dig(b, "roleRef", "kind") == "Role" and
                        dig(b, "roleRef", "name") == dig(role, "metadata", "name") and
                        any(s.get("kind") == "ServiceAccount" and s.get("name") == sa and
                            s.get("namespace", ns) == "linkerd" for s in b.get("subjects") or [])
                        for b in objects("RoleBinding"))
            if not bound:
                continue
            for rule in role.get("rules") or []:
                if DTAB_GROUP in (rule.get("apiGroups") or []) and DTAB_PLURAL in (rule.get("resources") or []) \
                        and not rule.get("resourceNames"):
                    granted |= set(rule.get("verbs") or [])
        c.eq(sorted(granted & DTAB_VERBS), sorted(DTAB_VERBS),
             "%s: verbs on dtabs.l5d.io granted to ServiceAccount linkerd/%s by a bound Role" % (where, sa))


def dtab_crd():
    return find("CustomResourceDefinition", "%s.%s" % (DTAB_PLURAL, DTAB_GROUP))


def test_dtab_crd(c):
    crd = dtab_crd()
    if not c.check(crd is not None, "no CustomResourceDefinition %s.%s" % (DTAB_PLURAL, DTAB_GROUP)):
        return
    c.eq(crd.get("apiVersion"), "apiextensions.k8s.io/v1", "CRD apiVersion")
    spec = crd.get("spec") or {}
    c.eq(spec.get("group"), DTAB_GROUP, "CRD group")
    c.eq(spec.get("scope"), "Namespaced", "CRD scope")
    c.eq(dig(spec, "names", "plural"), DTAB_PLURAL, "CRD plural")
    c.eq(dig(spec, "names", "singular"), "dtab", "CRD singular")
    c.eq(dig(spec, "names", "kind"), DTAB_KIND, "CRD kind")
    versions = spec.get("versions") or []
    c.eq([v.get("name") for v in versions if v.get("storage")], [DTAB_VERSION], "the CRD's stored version")
    v = next((v for v in versions if v.get("name") == DTAB_VERSION), None)
    if not c.check(v is not None, "the CRD has version %s" % DTAB_VERSION):
        return
    c.eq(v.get("served"), True, "version %s is served" % DTAB_VERSION)
    schema = dig(v, "schema", "openAPIV3Schema")
    if not c.check(isinstance(schema, dict), "version %s has an openAPIV3Schema" % DTAB_VERSION):
        return
    c.eq(schema.get("type"), "object", "the schema's type")
    c.eq(schema.get("x-kubernetes-preserve-unknown-fields"), True,
         "the schema preserves unknown fields (nothing Namerd wrote is pruned)")
    # Structural: every property given has a type; dentries as Namerd's.
    dentries = dig(schema, "properties", "dentries")
    if c.check(isinstance(dentries, dict), "the schema documents dentries"):
        c.eq(dentries.get("type"), "array", "dentries type")
        c.eq(dig(dentries, "items", "type"), "object", "dentries items type")
        for field in ("prefix", "dst"):
            c.eq(dig(dentries, "items", "properties", field, "type"), "string", "dentries[].%s type" % field)

    def typed(node, where):
        for name, sub in (node.get("properties") or {}).items():
            if c.check(isinstance(sub, dict) and sub.get("type"), "%s.%s has a type" % (where, name)):
                typed(sub, where + "." + name)
                if isinstance(sub.get("items"), dict):
                    c.check(sub["items"].get("type"), "%s.%s.items has a type" % (where, name))
                    typed(sub["items"], where + "." + name + "[]")
    typed(schema, "schema")


def test_dtab_objects(c):
    """Every DTab object is of the CRD's served version, in the namer's
    storage namespace, and holds a dtab; the namespace the routers bind in
    through the namer service exists, the same as default.dtab."""
    dtabs = objects(DTAB_KIND)
    if not c.check(dtabs, "no %s object" % DTAB_KIND):
        return
    store_ns = {dig(cfg, "storage", "namespace", default="default") for _, _, cfg in namer_configs()
                if dig(cfg, "storage", "kind") == "io.l5d.k8s"}
    for d in dtabs:
        name = dig(d, "metadata", "name")
        where = "DTab %s" % name
        c.eq(d.get("apiVersion"), "%s/%s" % (DTAB_GROUP, DTAB_VERSION), "%s apiVersion" % where)
        c.check(dig(d, "metadata", "namespace") in store_ns,
                "%s is in a storage namespace %r: %r" % (where, sorted(store_ns), dig(d, "metadata", "namespace")))
        dentries = d.get("dentries")
        if not c.check(isinstance(dentries, list) and dentries, "%s has dentries: %r" % (where, dentries)):
            continue
        ok = True
        for i, e in enumerate(dentries):
            ok &= c.check(isinstance(e, dict) and isinstance(e.get("prefix"), str) and isinstance(e.get("dst"), str),
                          "%s dentries[%d] is {prefix, dst} strings: %r" % (where, i, e))
            ok &= c.check(str((e or {}).get("prefix", "")).startswith("/"),
                          "%s dentries[%d] prefix starts with /: %r" % (where, i, e))
        if not ok:
            continue
        rc, out = run_check(["dtab", "check", "-f"], dtab_text(dentries), ".dtab")
        c.eq(rc, 0, "%s: its dentries pass switchyard dtab check: %s" % (where, out))
    # The routers' namespace(s) on the namer service, as DTab objects too,
    # with the same dtab as the file for `switchyard dtab create`.
    wanted = {dig(r, "interpreter", "namespace") for _, _, cfg in router_configs() for r in cfg.get("routers") or []
              if dig(r, "interpreter", "kind") == "io.l5d.namerd.http"}
    for ns in wanted:
        d = next((d for d in dtabs if dig(d, "metadata", "name") == ns), None)
        if not c.check(d is not None, "a DTab %s for the routers' namespace on the namer service" % ns):
            continue
        files = []
        for cm in objects("ConfigMap"):
            text = (cm.get("data") or {}).get(ns + ".dtab")
            if isinstance(text, str):
                files.append((dig(cm, "metadata", "name"), text))
        for cm, text in files:
            rc1, want = run_check(["dtab", "check", "-f"], text, ".dtab")
            rc2, got = run_check(["dtab", "check", "-f"], dtab_text(d.get("dentries") or []), ".dtab")
            c.check(rc1 == 0 and rc2 == 0 and got == want,
                    "DTab %s is the same dtab as ConfigMap %s key %s.dtab: %r vs %r" % (ns, cm, ns, got, want))


def test_daemonset_transformer_finds_the_routers(c):
    ds = daemonset()
    labels = dig(ds, "spec", "template", "metadata", "labels", default={}) or {}
    seen = 0
    for cm, key, cfg in router_configs():
        incoming_ports = {s.get("port") for r in cfg.get("routers") or [] if r.get("label") == "incoming"
                          for s in r.get("servers") or []}
        for r in cfg.get("routers") or []:
            for t in dig(r, "interpreter", "transformers", default=[]) or []:
                if t.get("kind") != "io.l5d.k8s.daemonset":
                    continue
                seen += 1
                where = "ConfigMap %s %s router %s" % (cm, key, r.get("label"))
                svc = find("Service", t.get("service"), t.get("namespace"))
                if not c.check(svc is not None, "%s: the Service %s/%s exists"
                               % (where, t.get("namespace"), t.get("service"))):
                    continue
                selector = dig(svc, "spec", "selector", default={}) or {}
                c.check(selector and all(labels.get(k) == v for k, v in selector.items()),
                        "%s: the Service's selector %r selects the DaemonSet's pods %r" % (where, selector, labels))
                port = next((p for p in dig(svc, "spec", "ports", default=[]) or [] if p.get("name") == t.get("port")), None)
                if c.check(port is not None, "%s: the Service has a port named %r" % (where, t.get("port"))):
                    c.check(port.get("targetPort", port.get("port")) in incoming_ports,
                            "%s: port %r targets the incoming router %r" % (where, port, sorted(incoming_ports)))
    c.check(seen >= 1, "no io.l5d.k8s.daemonset transformer in any router config")


def test_namer_service(c):
    dep = find("Deployment", "switchyard-namer", "linkerd")
    if c.check(dep is not None, "no Deployment switchyard-namer in namespace linkerd"):
        c.eq(dig(dep, "spec", "replicas"), 2, "namer replicas")
        c.eq([x.get("name") for x in dig(dep, "spec", "template", "spec", "containers", default=[]) or []],
             ["namer"], "the namer's containers (no sidecar)")
    # Its dtabs are DTab objects: io.l5d.k8s storage, in the namespace linkerd.
    stores = [dig(cfg, "storage") for _, _, cfg in namer_configs()]
    c.check(stores, "no namer config")
    for storage in stores:
        c.eq(dig(storage, "kind"), "io.l5d.k8s", "the namer's storage kind")
        c.eq(dig(storage, "namespace"), "linkerd", "the namer's storage namespace")
    svc = find("Service", "switchyard-namer", "linkerd")
    if not c.check(svc is not None, "no Service switchyard-namer"):
        return
    ports = {p.get("port") for p in dig(svc, "spec", "ports", default=[]) or []}
    c.check({4180, 9991} <= ports, "Service switchyard-namer ports: %r" % sorted(ports))
    # Routers that bind through it name it by its (fixed) clusterIP.
    cluster_ip = dig(svc, "spec", "clusterIP")
    dsts = [dig(r, "interpreter", "dst") for _, _, cfg in router_configs() for r in cfg.get("routers") or []
            if dig(r, "interpreter", "kind") == "io.l5d.namerd.http"]
    c.check(dsts, "no router config uses the io.l5d.namerd.http interpreter")
    for dst in dsts:
        parts = (dst or "").split("/")
        c.check(len(parts) == 5 and parts[1:3] == ["$", "inet"] and parts[4] == "4180",
                "dst %r is /$/inet/<host>/4180" % dst)
        if cluster_ip and len(parts) == 5 and parts[3][:1].isdigit():
            c.eq(parts[3], cluster_ip, "dst %r names the Service's clusterIP" % dst)


def test_hello_world_services(c):
    for name in ("hello", "world"):
        svc = find("Service", name, "default")
        dep = find("Deployment", name, "default")
        if not c.check(svc is not None and dep is not None, "Deployment and Service %s in namespace default" % name):
            continue
        # The routers' dtab binds /svc/<name> to /#/io.l5d.k8s/default/http/<name>.
        c.check(any(p.get("name") == "http" for p in dig(svc, "spec", "ports", default=[]) or []),
                "Service %s has a port named http" % name)
        cont = (dig(dep, "spec", "template", "spec", "containers", default=[]) or [{}])[0]
        node_ip_at, _, node_ip_from = env_source(cont, "NODE_IP")
        proxy_at, proxy, _ = env_source(cont, "http_proxy")
        c.eq(node_ip_from, "status.hostIP", "%s: NODE_IP comes from status.hostIP" % name)
        c.eq(proxy, "$(NODE_IP):4140", "%s: http_proxy" % name)
        c.check(node_ip_at is not None and proxy_at is not None and node_ip_at < proxy_at,
                "%s: NODE_IP is defined before http_proxy (so $(NODE_IP) expands)" % name)


TESTS = [
    test_every_document_is_an_object,
    test_configmap_configs_pass_check,
    test_configmap_configs_pass_check_in_cluster,
    test_commented_storage_alternative_passes_check,
    test_k8s_api_in_cluster,
    test_daemonset,
    test_rbac_is_read_only,
    test_namer_may_write_its_dtabs,
    test_dtab_crd,
    test_dtab_objects,
    test_daemonset_transformer_finds_the_routers,
    test_namer_service,
    test_hello_world_services,
]

if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    BINARY = os.path.abspath(sys.argv[1])
    ROOT = os.path.abspath(sys.argv[2])
    only = sys.argv[3:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
