#!/usr/bin/env python3
"""The Kubernetes manifests (k8s/*.yaml, examples/k8s-hello-world/*.yaml):
every document is a Kubernetes object; every router and namer config held in
a ConfigMap passes the real binary's `--check` (and every dtab there
`switchyard dtab check`); the DaemonSet publishes 4140 as a hostPort, probes
/admin/ping, takes NODE_NAME from spec.nodeName and gets more time to stop
than the router takes to drain; the ClusterRole only reads; the names the
configs refer to (the routers' Service and its port `incoming`, the
services' port `http`, the namer service's address) exist in the manifests.

Usage: manifests_test.py SWITCHYARD_BINARY REPO_ROOT [TEST_NAME ...]

Needs PyYAML (Debian's python3-yaml). No cluster is used.
"""

import glob
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
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


def run_check(args, text, suffix):
    with tempfile.TemporaryDirectory(prefix="switchyard-manifests-") as d:
        path = os.path.join(d, "config" + suffix)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        p = subprocess.run([BINARY] + args + [path], capture_output=True, text=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


def router_configs():
    """[(configmap name, key, parsed config)] of every router config."""
    out = []
    for cm in objects("ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            if isinstance(value, str) and config_kind(value) == "router":
                out.append((dig(cm, "metadata", "name"), key, parse_config(value)))
    return out


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

    # The io.l5d.k8s namer reaches the API through the kubectl proxy sidecar.
    kc = container(ds, "kubectl")
    if c.check(kc is not None, "the DaemonSet has a kubectl sidecar"):
        c.check("proxy" in (kc.get("args") or []) and "--port=8001" in (kc.get("args") or []),
                "the sidecar runs `kubectl proxy --port=8001`: %r" % kc.get("args"))
    for cm, key, cfg in router_configs():
        for n in cfg.get("namers") or []:
            if n.get("kind") == "io.l5d.k8s":
                c.eq((n.get("host"), n.get("port")), ("localhost", 8001),
                     "ConfigMap %s %s: io.l5d.k8s reaches the sidecar" % (cm, key))


def test_rbac_is_read_only(c):
    roles = objects("ClusterRole") + objects("Role")
    if not c.check(roles, "no ClusterRole"):
        return
    for role in roles:
        name = dig(role, "metadata", "name")
        for i, rule in enumerate(role.get("rules") or []):
            verbs = set(rule.get("verbs") or [])
            c.check(verbs and verbs <= READ_VERBS,
                    "%s %s rule %d grants only get/list/watch: %s" % (role["kind"], name, i, sorted(verbs)))
            for field in ("apiGroups", "resources"):
                c.check("*" not in (rule.get(field) or []), "%s %s rule %d: no * in %s" % (role["kind"], name, i, field))
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
        c.check(container(dep, "kubectl") is not None, "the namer has a kubectl sidecar")
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
    test_daemonset,
    test_rbac_is_read_only,
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
