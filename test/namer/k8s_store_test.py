#!/usr/bin/env python3
"""The namer service on Kubernetes storage (io.l5d.k8s: DTab custom
resources, l5d.io/v1alpha1), against the API fixture
(test/support/k8s_api.py): two replicas share the objects; versions are
resourceVersions; If-Match writes through both replicas lose no update; a
DTab written straight to the API (by kubectl, or by Namerd) is read; a
missing CRD stops the service at start, saying what to install; with the
API down reads go on and writes are 503. And the namer service hosting the
io.l5d.k8s namer: one watch on the API serves every router.

Usage: k8s_store_test.py SWITCHYARD_BINARY [TEST_NAME ...]
"""

import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Connection, Namer, Router, header, http, wait_until  # noqa: E402
from k8s_api import K8sApiServer  # noqa: E402

BINARY = None
DTABS = "/apis/l5d.io/v1alpha1/namespaces/linkerd/dtabs"


def namer_config(api, extra=""):
    return """admin: {port: 0}
storage: {kind: io.l5d.k8s, host: 127.0.0.1, port: %d, namespace: linkerd}
%sinterfaces:
- {kind: io.l5d.httpController, port: 0}
""" % (api.port, extra)


def dtab_of(n, ns):
    s, h, body = http("GET", n.api_url("/api/1/dtabs/" + ns), headers={"Accept": "application/dtab"})
    return (body.decode(), header(h, "ETag")) if s == 200 else (s, None)


def api_call(api, method, path, doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(api.url(path), data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_replicas_share_dtab_objects(c):
    api = K8sApiServer()
    api.start()
    a = Namer(BINARY, namer_config(api))
    b = Namer(BINARY, namer_config(api))
    try:
        s, h, _ = http("POST", a.api_url("/api/1/dtabs/default"), body=b"/svc => /#/io.l5d.fs")
        c.eq(s, 204, "create through replica A")
        version = header(h, "ETag")
        s, obj = api_call(api, "GET", DTABS + "/default")
        c.eq(s, 200, "the namespace is a DTab object in the Kubernetes namespace linkerd")
        c.eq((obj.get("kind"), obj.get("apiVersion"), obj.get("dentries")),
             ("DTab", "l5d.io/v1alpha1", [{"prefix": "/svc", "dst": "/#/io.l5d.fs"}]),
             "in Namerd's shape")
        c.eq('"%s"' % obj["metadata"]["resourceVersion"], version, "the version is the object's resourceVersion")
        c.check(wait_until(lambda: dtab_of(b, "default") == ("/svc=>/#/io.l5d.fs", version), 5),
                "replica B sees it, with the same version, through its watch")
        version = dtab_of(b, "default")[1]
        s, _, _ = http("POST", b.api_url("/api/1/dtabs/default"), body=b"/x => /y")
        c.eq(s, 409, "creating it again through B is 409")
        s, _, _ = http("PUT", a.api_url("/api/1/dtabs/default"), body=b"/svc => /#/io.l5d.fs; /x => /z",
                       headers={"If-Match": version})
        c.eq(s, 204, "an update through A with the current version")
        s, _, _ = http("PUT", b.api_url("/api/1/dtabs/default"), body=b"/x => /y", headers={"If-Match": version})
        c.eq(s, 412, "the version before it, through B, is 412 (the API server said 409 Conflict)")
        s, _, body = http("POST", a.api_url("/api/1/dtabs/Not_A_Name"), body=b"/x => /y")
        c.check(s == 400 and b"lowercase" in body, "a name Kubernetes cannot hold is 400, saying why: %d %r" % (s, body))

        s, _ = api_call(api, "POST", DTABS, {"apiVersion": "l5d.io/v1alpha1", "kind": "DTab",
                                             "metadata": {"name": "by-kubectl"},
                                             "dentries": [{"prefix": "/svc", "dst": "/$/inet/127.0.0.1/1"}]})
        c.eq(s, 201, "a DTab written straight to the API (as kubectl or Namerd would)")
        c.check(wait_until(lambda: dtab_of(a, "by-kubectl")[0] == "/svc=>/$/inet/127.0.0.1/1", 5),
                "appears in the namer's API")
        s, _, _ = http("POST", a.api_url("/api/1/dtabs/tenant?base=default"), body=b"/svc/t => /#/t")
        c.eq(s, 204, "a tenant with a base")
        s, obj = api_call(api, "GET", DTABS + "/tenant")
        c.eq(obj.get("metadata", {}).get("annotations"), {"switchyard.io/base": "default"},
             "its base is an annotation on its object")
        c.check(wait_until(lambda: header(http("GET", b.api_url("/api/1/dtabs/tenant"))[1] or [],
                                          "X-Switchyard-Base") == "default", 5),
                "and the other replica sees it")
        s, _ = api_call(api, "DELETE", DTABS + "/by-kubectl")
        c.eq(s, 200, "deleted straight from the API")
        c.check(wait_until(lambda: dtab_of(b, "by-kubectl")[0] == 404, 5), "the namespace is gone from both replicas")
        s, _, _ = http("DELETE", a.api_url("/api/1/dtabs/tenant"), headers={"If-Match": '"1"'})
        c.eq(s, 412, "a delete with a stale If-Match is refused")
        s, _, _ = http("DELETE", a.api_url("/api/1/dtabs/tenant"))
        c.eq(s, 204, "a plain delete works")
        c.eq(api_call(api, "GET", DTABS + "/tenant")[0], 404, "and removes the object")

        # 16 writers, half through each replica, each adding one with If-Match.
        http("POST", a.api_url("/api/1/dtabs/counter"), body=b"/count => /#/0")
        per_writer = 4
        errors = harness.increment_concurrently([b, a], "counter", 16, per_writer)
        c.eq(errors, [], "no writer failed")
        s, obj = api_call(api, "GET", DTABS + "/counter")
        c.eq(obj.get("dentries"), [{"prefix": "/count", "dst": "/#/%d" % (16 * per_writer)}],
             "16 writers over two replicas lost no update")
        s, _, _ = http("PUT", b.api_url("/api/1/dtabs/counter"), body=b"/count => /#/plain")
        c.eq(s, 204, "a write without If-Match takes whatever version is current")
        c.check(wait_until(lambda: dtab_of(a, "counter")[0] == "/count=>/#/plain", 5), "and reaches the other replica")
    finally:
        a.stop()
        b.stop()
        api.stop()


def test_missing_crd_stops_the_service(c):
    api = K8sApiServer(crds=False)
    api.start()
    n = Namer(BINARY, namer_config(api), wait_ready=False)
    try:
        code = n.wait_exit(15)
        c.eq(code, 1, "without the DTab custom resource the namer exits 1")
        c.check("dtabs.l5d.io" in n.stderr(), "naming what to install: %r" % n.stderr()[-400:])
    finally:
        n.stop()
        api.stop()


def test_api_outage_keeps_reads(c):
    api = K8sApiServer()
    api.start()
    a = Namer(BINARY, namer_config(api))
    try:
        http("POST", a.api_url("/api/1/dtabs/default"), body=b"/svc => /#/a")
        api.set_down(seconds=30)
        c.eq(dtab_of(a, "default")[0], "/svc=>/#/a", "with the API down, reads are served from memory")
        s, _, _ = http("PUT", a.api_url("/api/1/dtabs/default"), body=b"/svc => /#/b")
        c.eq(s, 503, "and writes are 503")
        api.up()
        c.check(wait_until(lambda: http("PUT", a.api_url("/api/1/dtabs/default"), body=b"/svc => /#/b")[0] == 204, 10),
                "once it is back, writes work")
        api_call(api, "PUT", DTABS + "/default", dict(api_call(api, "GET", DTABS + "/default")[1],
                                                      dentries=[{"prefix": "/svc", "dst": "/#/c"}]))
        c.check(wait_until(lambda: dtab_of(a, "default")[0] == "/svc=>/#/c", 10), "and the watch follows changes again")
    finally:
        a.stop()
        api.stop()


def test_one_watch_serves_every_router(c):
    """The namer service runs the io.l5d.k8s namer; routers ask it
    (io.l5d.namerd.http), so the API sees one watch, however many routers."""
    api = K8sApiServer()
    api.start()
    x = Backend("x", host="127.0.0.1")
    y = Backend("y", host="127.0.0.2", port=x.port)
    api.put_service({"namespace": "default", "name": "web", "ports": [{"name": "http", "port": 80, "targetPort": x.port}],
                     "endpoints": [{"ip": "127.0.0.1"}]})
    n = Namer(BINARY, namer_config(api, "namers:\n- {kind: io.l5d.k8s, host: 127.0.0.1, port: %d}\n" % api.port))
    routers = []
    try:
        http("POST", n.api_url("/api/1/dtabs/default"), body=b"/svc => /#/io.l5d.k8s/default/http")
        for _ in range(3):
            routers.append(Router(BINARY, """admin: {port: 0}
routers:
- protocol: http
  label: out
  interpreter: {kind: io.l5d.namerd.http, dst: /$/inet/127.0.0.1/%d, namespace: default}
  servers: [{port: 0}]
""" % n.api_port()))

        def answer(r):
            s, _, body = Connection("127.0.0.1", r.port("out")).request("GET", "http://web/")
            return json.loads(body)["backend"] if s == 200 else s
        c.eq([answer(r) for r in routers], ["x"] * 3, "three routers route through the namer's k8s namer")
        def endpoint_streams():
            return [w for w in api.watcher_info()["streams"] if w["resource"] == "endpoints"]
        # The watch opens once the list has answered: wait for it, then
        # check that no second one follows.
        wait_until(lambda: len(endpoint_streams()) >= 1, 5)
        time.sleep(0.5)
        streams = endpoint_streams()
        c.eq(len(streams), 1, "the API has one endpoints watch for all of them: %s" % streams)
        m = json.loads(http("GET", n.admin_url("/admin/metrics.json"))[2])
        c.eq(m.get("namer/#/io.l5d.k8s/watches"), 1, "the namer's metrics count that one watch")
        text = http("GET", n.admin_url("/admin/metrics/prometheus"))[2].decode()
        p = harness.subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        c.check('namer_watches{namer="/#/io.l5d.k8s"} 1' in text and p.returncode == 0,
                "in Prometheus too, clean for promtool: %s %s" % (p.stdout, p.stderr))
        api.put_service({"namespace": "default", "name": "web",
                         "ports": [{"name": "http", "port": 80, "targetPort": x.port}],
                         "endpoints": [{"ip": "127.0.0.2"}]})
        c.check(wait_until(lambda: [answer(r) for r in routers] == ["y"] * 3, 5), "and a change reaches every router")
    finally:
        for r in routers:
            r.stop()
        n.stop()
        api.stop()
        x.stop()
        y.stop()


def test_updates_keep_what_others_set(c):
    api = K8sApiServer()
    api.start()
    a = Namer(BINARY, namer_config(api))
    try:
        http("POST", a.api_url("/api/1/dtabs/default"), body=b"/svc => /#/a")
        s, obj = api_call(api, "GET", DTABS + "/default")
        obj["metadata"]["labels"] = {"team": "payments"}
        obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
        c.eq(api_call(api, "PUT", DTABS + "/default", obj)[0], 200, "kubectl labels and annotates the DTab")
        c.check(wait_until(lambda: dtab_of(a, "default")[1] == '"%s"' % api_call(api, "GET", DTABS + "/default")[1]
                           ["metadata"]["resourceVersion"], 5), "the namer sees the new version")
        s, _, _ = http("PUT", a.api_url("/api/1/dtabs/default"), body=b"/svc => /#/b")
        c.eq(s, 204, "an update through the namer")
        s, obj = api_call(api, "GET", DTABS + "/default")
        c.eq((obj["dentries"], obj["metadata"].get("labels"), obj["metadata"].get("annotations")),
             ([{"prefix": "/svc", "dst": "/#/b"}], {"team": "payments"},
              {"kubectl.kubernetes.io/last-applied-configuration": "{}"}),
             "changes the dentries and keeps the labels and annotations others set")

        s, _ = api_call(api, "POST", DTABS, {"apiVersion": "l5d.io/v1alpha1", "kind": "DTab",
                                             "metadata": {"name": "broken"},
                                             "dentries": [{"prefix": "no-slash", "dst": "/x"}]})
        c.eq(s, 201, "a DTab whose dentries are no dtab, written by hand")
        c.check(wait_until(lambda: "DTab linkerd/broken is skipped" in a.stderr(), 5),
                "is skipped, with a warning naming it: %r" % a.stderr()[-300:])
        c.eq(dtab_of(a, "broken")[0], 404, "so the API does not show it")
        s, _, _ = http("PUT", a.api_url("/api/1/dtabs/broken"), body=b"/svc => /#/fixed")
        c.eq(s, 204, "and a PUT through the namer repairs it")
        c.check(wait_until(lambda: dtab_of(a, "broken")[0] == "/svc=>/#/fixed", 5), "after which it is served")
    finally:
        a.stop()
        api.stop()


def test_namer_transformers_in_the_namer_service(c):
    """A namer with Linkerd's per-namer daemonset transformer, hosted by the
    namer service: what it binds is already the router on each endpoint's
    node, found through the plain namer."""
    api = K8sApiServer()
    api.start()
    api.put_service({"namespace": "default", "name": "web", "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                     "endpoints": [{"ip": "10.1.0.7", "nodeName": "node-1"}]})
    api.put_service({"namespace": "linkerd", "name": "l5d", "ports": [{"name": "incoming", "port": 4141}],
                     "endpoints": [{"ip": "127.0.0.1", "nodeName": "node-0"}, {"ip": "127.0.0.2", "nodeName": "node-1"}]})
    n = Namer(BINARY, namer_config(api, """namers:
- {kind: io.l5d.k8s, host: 127.0.0.1, port: %d}
- kind: io.l5d.k8s
  prefix: /io.l5d.k8s.ds
  host: 127.0.0.1
  port: %d
  transformers:
  - {kind: io.l5d.k8s.daemonset, namespace: linkerd, port: incoming, service: l5d}
""" % (api.port, api.port)))
    try:
        http("POST", n.api_url("/api/1/dtabs/default"), body=b"/svc => /#/io.l5d.k8s.ds/default/http")

        def bound():
            s, _, body = http("GET", n.api_url("/api/1/bind/default?path=/svc/web"))
            tree = json.loads(body) if s == 200 else {}
            return tree.get("bound", {})
        c.check(wait_until(lambda: bound().get("addr", {}).get("type") == "bound", 5), "the name binds: %s" % bound())
        b = bound()
        c.eq(b.get("id"), "/%/io.l5d.k8s.daemonset/linkerd/incoming/l5d/#/io.l5d.k8s.ds/default/http/web",
             "under the transformer's prefix")
        c.eq([(a["ip"], a["port"]) for a in b["addr"]["addrs"]], [("127.0.0.2", 4141)],
             "to the router on the endpoint's node, at its incoming port, not the pod itself")
    finally:
        n.stop()
        api.stop()


TESTS = [
    test_replicas_share_dtab_objects,
    test_missing_crd_stops_the_service,
    test_api_outage_keeps_reads,
    test_one_watch_serves_every_router,
    test_updates_keep_what_others_set,
    test_namer_transformers_in_the_namer_service,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
