#!/usr/bin/env python3
"""The io.l5d.k8s namer against the Kubernetes API fixture
(test/support/k8s_api.py): Endpoints listed then watched; changes reach
routing while traffic flows with no failed request; dropped watches, a
compacted history (410) and an API down for 30 s keep the last good set;
a service or port that does not exist is a negative binding; EndpointSlices
(useEndpointSlices), a numbered port that is the Service's port, and
in-cluster HTTPS with the service account's CA and (rotated) token;
labelSelector as Linkerd's label key, the io.l5d.k8s.ns namer (one
namespace, from $POD_NAMESPACE) and the io.l5d.k8s.external namer over
Services' load balancers.

Usage: k8s_test.py SWITCHYARD_BINARY [TEST_NAME ...]
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Connection, Router, free_port, http, wait_until  # noqa: E402
from k8s_api import K8sApiServer  # noqa: E402
import certs  # noqa: E402

BINARY = None


def config(api, fallback_port):
    return """admin: {port: 0}
namers:
- kind: io.l5d.k8s
  host: localhost
  port: %d
routers:
- protocol: http
  label: out
  bindingTimeoutMs: 3000
  dtab: |
    /svc => /#/io.l5d.k8s/default/http | /$/inet/127.0.0.1/%d;
  servers:
  - port: 0
""" % (api.port, fallback_port)


def service(api, ips, port, name="web", port_name="http"):
    api.put_service({"namespace": "default", "name": name,
                     "ports": [{"name": port_name, "port": 80, "targetPort": port}],
                     "endpoints": [{"ip": ip, "nodeName": "node-%d" % i} for i, ip in enumerate(ips)]})


class Traffic:
    """Keep-alive clients sending GET http://web/ through the router and
    recording which backend answered (or the failure)."""

    def __init__(self, router, clients=2):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.log = []  # (time, backend or "status N")
        self.threads = [threading.Thread(target=self._run, args=(router,)) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self, router):
        conn = Connection("127.0.0.1", router.port("out"))
        try:
            while not self.stop.is_set():
                try:
                    s, _, body = conn.request("GET", "http://web/")
                    got = json.loads(body)["backend"] if s == 200 else "status %d" % s
                except OSError as e:
                    got = "error %s" % e
                    conn.close()
                    conn = Connection("127.0.0.1", router.port("out"))
                with self.lock:
                    self.log.append((time.monotonic(), got))
                time.sleep(0.005)
        finally:
            conn.close()

    def since(self, t0):
        with self.lock:
            return [g for t, g in self.log if t >= t0]

    def last_all(self, want, n=30):
        """The last n answers (at least n must exist) were all `want`: with
        two endpoints in the set, chance alone gives that once in 2**n."""
        with self.lock:
            tail = [g for _, g in self.log[-n:]]
        return len(tail) == n and all(g == want for g in tail)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def test_endpoints_follow_changes_under_traffic(c):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    b = Backend("b", host="127.0.0.2", port=port)
    fallback = Backend("fallback")
    api = K8sApiServer()
    api.start()
    service(api, ["127.0.0.1", "127.0.0.2"], port)
    r = Router(BINARY, config(api, fallback.port))
    traffic = None
    try:
        conn = Connection("127.0.0.1", r.port("out"))
        seen = set()
        for _ in range(40):
            s, _, body = conn.request("GET", "http://web/")
            seen.add(json.loads(body)["backend"] if s == 200 else s)
        c.eq(seen, {"a", "b"}, "both endpoints of the service serve")
        s, _, body = conn.request("GET", "http://nosuch/")
        c.eq(json.loads(body)["backend"], "fallback", "a service that does not exist is negative: the dtab falls back")
        s, _, body = conn.request("GET", "http://Web/")
        c.check(s == 200 and json.loads(body)["backend"] in ("a", "b"),
                "names are lower-cased, as in Linkerd: Host: Web finds web (%d %r)" % (s, body[:100]))
        conn.close()

        traffic = Traffic(r)
        time.sleep(0.5)
        service(api, ["127.0.0.2"], port)
        t_change = time.monotonic()
        c.check(wait_until(lambda: traffic.last_all("b"), 5), "the removal reaches routing")
        t_seen = time.monotonic()
        time.sleep(1)
        after = traffic.since(t_seen)
        c.eq(sorted(set(after)), ["b"], "once visible, no request goes to the removed endpoint")
        failures = [g for g in traffic.since(t_change - 0.5) if g not in ("a", "b")]
        c.eq(failures, [], "no request failed around the change")

        service(api, ["127.0.0.1", "127.0.0.2"], port)
        c.check(wait_until(lambda: "a" in traffic.since(time.monotonic() - 0.3), 5), "an added endpoint gets traffic")

        # Watches dropped mid-stream every second for 5 s, while the set
        # changes twice; then a compacted history.
        for i in range(5):
            api.drop_watches(reset=bool(i % 2))
            if i == 1:
                service(api, ["127.0.0.2"], port)
            if i == 2:
                c.check(wait_until(lambda: traffic.last_all("b"), 5),
                        "a removal made while watches keep dropping arrives")
            if i == 3:
                service(api, ["127.0.0.1", "127.0.0.2"], port)
            time.sleep(1)
        c.check(wait_until(lambda: "a" in traffic.since(time.monotonic() - 0.3), 5),
                "and so does the endpoint added back")
        # Let a watch last, so the drops above no longer count toward the
        # backoff (it resets once a watch has lasted a second).
        c.check(wait_until(lambda: json.loads(http("GET", r.admin_url("/admin/metrics.json"))[2])
                           .get("namer/#/io.l5d.k8s/watches_failing") == 0, 15),
                "the watch settles after the drops")
        # While the API refuses for a second, the set changes and the history
        # is compacted past what the router saw: its next watch gets 410.
        mark = api.request_log()["next"]
        api.set_down(seconds=1.0)
        api.drop_watches()
        service(api, ["127.0.0.2"], port)
        api.compact()
        c.check(wait_until(lambda: traffic.last_all("b"), 20),
                "after dropped watches and a compaction (410) the change still arrives")
        reqs = api.request_log(mark)["requests"]
        c.check(any(not r.get("watch") and "/endpoints" in r.get("path", "") for r in reqs),
                "the router listed again after the 410: %s" % [r.get("path") for r in reqs][:6])
        t0 = time.monotonic()
        api.set_down(seconds=30)
        time.sleep(30)
        during = traffic.since(t0)
        c.check(len(during) > 100 and set(during) == {"b"},
                "API down for 30 s: the last good set keeps serving (%d requests, %s)" % (len(during), sorted(set(during))))
        service(api, ["127.0.0.1", "127.0.0.2"], port)
        c.check(wait_until(lambda: "a" in traffic.since(time.monotonic() - 0.3), 10), "and changes arrive once it is back")
        traffic.finish()
        failures = [g for g in traffic.since(0) if g not in ("a", "b")]
        c.eq(failures, [], "no request failed in the whole run (%d requests)" % len(traffic.since(0)))
    finally:
        if traffic:
            traffic.finish()
        r.stop()
        api.stop()
        for x in (a, b, fallback):
            x.stop()


def test_missing_port_and_deleted_service(c):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    fallback = Backend("fallback")
    api = K8sApiServer()
    api.start()
    service(api, ["127.0.0.1"], port, port_name="grpc")
    r = Router(BINARY, config(api, fallback.port))
    try:
        s, _, body = http("GET", "http://web/", proxy=("127.0.0.1", r.port("out")))
        c.eq(json.loads(body)["backend"], "fallback", "a port name the service lacks is negative")
        service(api, ["127.0.0.1"], port)
        c.check(wait_until(lambda: json.loads(http("GET", "http://web/", proxy=("127.0.0.1", r.port("out")))[2])["backend"] == "a", 5),
                "once the port exists, the service serves")
        api.delete_service("default", "web")
        c.check(wait_until(lambda: json.loads(http("GET", "http://web/", proxy=("127.0.0.1", r.port("out")))[2])["backend"] == "fallback", 5),
                "a deleted service is negative again")
    finally:
        r.stop()
        api.stop()
        a.stop()
        fallback.stop()


def transforming_router(api, label, transformers, env=None):
    """A router whose one router `label` binds /svc through io.l5d.k8s and
    then the interpreter's `transformers` (YAML list items)."""
    return Router(BINARY, """admin: {port: 0}
namers:
- {kind: io.l5d.k8s, port: %d}
routers:
- protocol: http
  label: %s
  interpreter:
    kind: default
    transformers:
%s
  dtab: /svc => /#/io.l5d.k8s/default/http;
  servers: [{port: 0}]
""" % (api.port, label, transformers), env=env)


def test_localnode_and_port_transformers(c):
    port = free_port(harness.socket.SOCK_STREAM)
    other = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)       # on node-0
    b = Backend("b", host="127.0.0.2", port=port)       # on node-1
    b2 = Backend("b-other-port", host="127.0.0.2", port=other)
    d = Backend("d", host="127.0.1.2", port=port)       # on node-2, another /24
    api = K8sApiServer()
    api.start()
    service(api, ["127.0.0.1", "127.0.0.2", "127.0.1.2"], port)

    r1 = transforming_router(api, "in", "    - kind: io.l5d.k8s.localnode", {"NODE_NAME": "node-1"})
    r2 = transforming_router(api, "in", "    - kind: io.l5d.k8s.localnode\n    - {kind: io.l5d.port, port: %d}" % other,
                             {"NODE_NAME": "node-1"})
    # Linkerd's manifests give POD_IP only: then the pod's /24 is the node.
    r3 = transforming_router(api, "in", "    - kind: io.l5d.k8s.localnode", {"NODE_NAME": "", "POD_IP": "127.0.1.9"})
    try:
        got = set()
        for _ in range(20):
            s, _, body = http("GET", "http://web/", proxy=("127.0.0.1", r1.port("in")))
            got.add(json.loads(body)["backend"] if s == 200 else s)
        c.eq(got, {"b"}, "io.l5d.k8s.localnode keeps only the endpoints on NODE_NAME's node")
        c.eq(sorted(set(answers(r3, "web", 20, label="in"))), ["d"],
             "without NODE_NAME, the endpoints in POD_IP's /24, as Linkerd's transformer")
        c.check("POD_IP's /24" in r3.logs(), "and the router says which rule it uses")
        s, _, body = http("GET", r1.admin_url("/admin/metrics.json"))
        c.check("rt/in/client/%/io.l5d.k8s.localnode/#/io.l5d.k8s/default/http/web/requests" in json.loads(body),
                "the transformed name has its own client metrics: %s" % [k for k in json.loads(body) if "client" in k][:3])
        s, _, body = http("GET", "http://web/", proxy=("127.0.0.1", r2.port("in")))
        c.eq(json.loads(body)["backend"] if s == 200 else s, "b-other-port", "io.l5d.port then sends it to another port")
        service(api, ["127.0.0.1"], port)
        c.check(wait_until(lambda: http("GET", "http://web/", proxy=("127.0.0.1", r1.port("in")))[0] == 502, 5),
                "with no endpoint left on this node, no request goes elsewhere")
    finally:
        r1.stop()
        r2.stop()
        r3.stop()
        api.stop()
        for x in (a, b, b2, d):
            x.stop()


def two_nodes(c, namers, out_router, client):
    """Router A (node-0, 127.0.0.1) sends to router B (node-1, 127.0.0.2),
    which delivers to the backend on its own node. `namers` and `out_router`
    are YAML for the namers (after a plain io.l5d.k8s one) and the outgoing
    router's dtab and interpreter; `client` is the bound name A's outgoing
    router must have used."""
    port = free_port(harness.socket.SOCK_STREAM)
    incoming = free_port(harness.socket.SOCK_STREAM)
    b = Backend("b", host="127.0.0.2", port=port)
    api = K8sApiServer()
    api.start()
    api.put_service({"namespace": "default", "name": "web", "ports": [{"name": "http", "port": 80, "targetPort": port}],
                     "endpoints": [{"ip": "127.0.0.2", "nodeName": "node-1"}]})
    api.put_service({"namespace": "linkerd", "name": "l5d",
                     "ports": [{"name": "incoming", "port": 4141, "targetPort": incoming}],
                     "endpoints": [{"ip": "127.0.0.1", "nodeName": "node-0"}, {"ip": "127.0.0.2", "nodeName": "node-1"}]})

    def node_router(ip, node):
        return Router(BINARY, """admin: {port: 0}
namers:
- {kind: io.l5d.k8s, port: %d}
%s
routers:
- protocol: http
  label: out
%s
  servers: [{ip: %s, port: 0}]
- protocol: http
  label: in
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.k8s.localnode
  dtab: /svc => /#/io.l5d.k8s/default/http;
  servers: [{ip: %s, port: %d}]
""" % (api.port, namers % {"api": api.port}, out_router, ip, ip, incoming), env={"NODE_NAME": node})
    ra = node_router("127.0.0.1", "node-0")
    rb = node_router("127.0.0.2", "node-1")
    try:
        s, h, body = http("GET", "http://web/", proxy=("127.0.0.1", ra.port("out")))
        c.eq((s, json.loads(body).get("backend") if s == 200 else body), (200, "b"),
             "a request entering router A on node-0 reaches the backend on node-1")

        def metrics(router):
            return json.loads(http("GET", router.admin_url("/admin/metrics.json"))[2])

        def requests(m, label):
            return sum(v for k, v in m.items() if k.startswith("rt/%s/server/" % label) and k.endswith("/requests"))
        ma, mb = metrics(ra), metrics(rb)
        c.eq((requests(ma, "out"), requests(mb, "in"), requests(ma, "in")), (1, 1, 0),
             "through A's outgoing router and B's incoming router, not A's incoming")
        c.eq(ma.get("rt/out/client/%s/requests" % client), 1,
             "bound as %s: %s" % (client, [k for k in ma if "/client/" in k][:3]))
        c.eq(mb.get("rt/in/client/%/io.l5d.k8s.localnode/#/io.l5d.k8s/default/http/web/requests"), 1,
             "and B's plain namer's name has no daemonset prefix")
    finally:
        ra.stop()
        rb.stop()
        api.stop()
        b.stop()


def test_two_node_daemonset_on_loopback(c):
    two_nodes(c, "", """  interpreter:
    kind: default
    transformers:
    - {kind: io.l5d.k8s.daemonset, namespace: linkerd, port: incoming, service: l5d}
  dtab: /svc => /#/io.l5d.k8s/default/http;""",
              "%/io.l5d.k8s.daemonset/linkerd/incoming/l5d/#/io.l5d.k8s/default/http/web")


def test_daemonset_as_a_namer_transformer(c):
    """Linkerd's egress pattern: the daemonset transformer on a second
    io.l5d.k8s namer (namers[].transformers) rather than on the
    interpreter; it finds the routers through the plain namer."""
    two_nodes(c, """- kind: io.l5d.k8s
  prefix: /io.l5d.k8s.ds
  port: %(api)d
  transformers:
  - {kind: io.l5d.k8s.daemonset, namespace: linkerd, port: incoming, service: l5d}""",
              "  dtab: /svc => /#/io.l5d.k8s.ds/default/http;",
              "%/io.l5d.k8s.daemonset/linkerd/incoming/l5d/#/io.l5d.k8s.ds/default/http/web")


def test_api_unreachable_from_the_start(c):
    dead = free_port(harness.socket.SOCK_STREAM)
    r = Router(BINARY, """admin: {port: 0}
namers:
- {kind: io.l5d.k8s, host: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: out
  dtab: /svc => /#/io.l5d.k8s/default/http;
  servers: [{port: 0}]
""" % dead)
    try:
        s, h, body = http("GET", "http://web/", proxy=("127.0.0.1", r.port("out")))
        c.eq(s, 502, "with the API unreachable and nothing known, the request fails at once")
        c.check(b"Kubernetes API" in body, "saying the API cannot be reached: %r" % body)
    finally:
        r.stop()


def answers(router, host, n=1, label="out"):
    """The backends (or statuses) that n requests for `host` got."""
    got = []
    conn = Connection("127.0.0.1", router.port(label))
    try:
        for _ in range(n):
            s, _, body = conn.request("GET", "http://%s/" % host)
            got.append(json.loads(body)["backend"] if s == 200 else "status %d" % s)
    finally:
        conn.close()
    return got


def test_endpoint_slices(c):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    b = Backend("b", host="127.0.0.2", port=port)
    not_ready = Backend("not-ready", host="127.0.0.3", port=port)
    extra = Backend("extra-slice", host="127.0.0.4", port=port)
    fallback = Backend("fallback")
    api = K8sApiServer()
    api.start()
    api.put_service({"namespace": "default", "name": "web",
                     "ports": [{"name": "http", "port": 80, "targetPort": port}],
                     "endpoints": [{"ip": "127.0.0.1", "nodeName": "node-0"},
                                   {"ip": "127.0.0.2", "nodeName": "node-1"},
                                   {"ip": "127.0.0.3", "ready": False}]})
    # The Endpoints object says otherwise: only the slices may be read.
    api.put_object({"kind": "Endpoints", "apiVersion": "v1",
                    "metadata": {"name": "web", "namespace": "default"},
                    "subsets": [{"addresses": [{"ip": "127.0.0.3"}], "ports": [{"name": "http", "port": port}]}]})
    r = Router(BINARY, config(api, fallback.port).replace("  port: %d\n" % api.port,
                                                           "  port: %d\n  useEndpointSlices: true\n" % api.port))
    try:
        c.eq(set(answers(r, "web", 40)), {"a", "b"}, "the ready endpoints of the slice serve; a not-ready one does not")
        second = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                  "metadata": {"name": "web-extra", "namespace": "default",
                               "labels": {"kubernetes.io/service-name": "web"}},
                  "addressType": "IPv4",
                  "endpoints": [{"addresses": ["127.0.0.4"], "conditions": {}, "nodeName": "node-4"}],
                  "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
        v6 = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
              "metadata": {"name": "web-v6", "namespace": "default",
                           "labels": {"kubernetes.io/service-name": "web"}},
              "addressType": "IPv6",
              "endpoints": [{"addresses": ["::1"], "conditions": {"ready": True}}],
              "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
        api.put_object(v6)
        api.put_object(second)
        c.check(wait_until(lambda: "extra-slice" in answers(r, "web", 20), 5),
                "a second slice of the service adds its endpoints (a ready condition left out counts as ready)")
        got = answers(r, "web", 40)
        c.eq(sorted(set(got)), ["a", "b", "extra-slice"],
             "a dual-stack service's IPv6 slice is not used beside its IPv4 ones (nothing listens on ::1)")
        api.delete_object("EndpointSlice", "default", "web-v6")
        api.delete_object("EndpointSlice", "default", "web-extra")
        c.check(wait_until(lambda: "extra-slice" not in answers(r, "web", 30), 5), "a deleted slice takes its endpoints away")
        api.drop_watches()
        api.compact()
        api.put_service({"namespace": "default", "name": "web",
                         "ports": [{"name": "http", "port": 80, "targetPort": port}],
                         "endpoints": [{"ip": "127.0.0.2", "nodeName": "node-1"}]})
        c.check(wait_until(lambda: set(answers(r, "web", 30)) == {"b"}, 10),
                "after a dropped watch and a compaction the slice's change arrives")
        api.delete_service("default", "web")
        c.check(wait_until(lambda: answers(r, "web") == ["fallback"], 5),
                "a service with no slices left is negative: the dtab falls back")
        paths = {q["path"] for q in api.request_log()["requests"]}
        c.check(paths and all(p.startswith("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices") for p in paths),
                "only EndpointSlices were read: %s" % sorted(paths))
    finally:
        r.stop()
        api.stop()
        for x in (a, b, not_ready, extra, fallback):
            x.stop()


def test_numbered_port_is_the_service_port(c):
    pa = free_port(harness.socket.SOCK_STREAM)
    pb = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", port=pa)
    b = Backend("b", port=pb)
    fallback = Backend("fallback")
    api = K8sApiServer()
    api.start()

    def web(http_target, admin_target):
        api.put_service({"namespace": "default", "name": "web",
                         "ports": [{"name": "http", "port": 80, "targetPort": http_target},
                                   {"name": "admin", "port": 9000, "targetPort": admin_target}],
                         "endpoints": [{"ip": "127.0.0.1", "nodeName": "node-0"}]})
    web(pa, pb)
    r = Router(BINARY, """admin: {port: 0}
namers:
- {kind: io.l5d.k8s, port: %d}
routers:
- protocol: http
  label: out
  dtab: |
    /svc/web80 => /#/io.l5d.k8s/default/80/web;
    /svc/web9000 => /#/io.l5d.k8s/default/9000/web;
    /svc/webtarget => /#/io.l5d.k8s/default/%d/web;
    /svc/web81 => /#/io.l5d.k8s/default/81/web | /$/inet/127.0.0.1/%d;
  servers: [{port: 0}]
""" % (api.port, pa, fallback.port))
    try:
        c.eq(answers(r, "web80"), ["a"], "port 80 is the Service's port 80, whose target is a's port")
        c.eq(answers(r, "web9000"), ["b"], "port 9000 is the Service's admin port, whose target is b's port")
        c.eq(answers(r, "webtarget"), ["a"], "a number that is no Service port is the endpoints' own port")
        c.eq(answers(r, "web81"), ["fallback"], "a number that is neither is negative: the dtab falls back")
        web(pb, pa)
        c.check(wait_until(lambda: answers(r, "web80") == ["b"] and answers(r, "web9000") == ["a"], 5),
                "when the Service's target ports change, its numbered ports follow")
        paths = {q["path"] for q in api.request_log()["requests"]}
        c.check("/api/v1/namespaces/default/services" in paths, "the Service was read: %s" % sorted(paths))
    finally:
        r.stop()
        api.stop()
        for x in (a, b, fallback):
            x.stop()


def test_in_cluster_https_with_the_service_account(c):
    tmp = tempfile.mkdtemp(prefix="k8s-incluster-")
    pki = certs.make_ca_and_server_cert(tmp)
    other = certs.make_other_ca(tmp)
    good = os.path.join(tmp, "sa")
    wrong = os.path.join(tmp, "sa-wrong-ca")
    for d, ca in ((good, pki["ca"]), (wrong, other["ca"])):
        os.makedirs(d)
        with open(ca) as f, open(os.path.join(d, "ca.crt"), "w") as out:
            out.write(f.read())
        with open(os.path.join(d, "token"), "w") as out:
            out.write("token-1\n")
    pa = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=pa)
    b = Backend("b", host="127.0.0.2", port=pa)
    api = K8sApiServer(token="token-1", tls_cert=pki["cert"], tls_key=pki["key"])
    api.start()
    service(api, ["127.0.0.1"], pa)
    in_cluster = """admin: {port: 0}
namers:
- kind: io.l5d.k8s
routers:
- protocol: http
  label: out
  dtab: /svc => /#/io.l5d.k8s/default/http;
  servers: [{port: 0}]
"""

    def env(sa_dir):
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(api.port),
                "SWITCHYARD_K8S_SERVICEACCOUNT_DIR": sa_dir}
    r = Router(BINARY, in_cluster, env=env(good))
    refused = None
    try:
        c.eq(answers(r, "web"), ["a"], "with no host, inside a pod, the namer reads the API server over HTTPS")
        auth = {q.get("authorization") for q in api.request_log()["requests"]}
        c.eq(auth, {"Bearer token-1"}, "every API request carries the service account's token")

        # The kubelet rotates the token file; the API stops taking the old one.
        with open(os.path.join(good, "token"), "w") as out:
            out.write("token-2\n")
        api.set_token("token-2")
        api.drop_watches()
        service(api, ["127.0.0.2"], pa)
        c.check(wait_until(lambda: answers(r, "web") == ["b"], 10),
                "after a 401 the rotated token is read again and changes arrive")
        c.check(any(q.get("authorization") == "Bearer token-2" for q in api.request_log()["requests"]),
                "the new token was sent")

        refused = Router(BINARY, in_cluster, env=env(wrong))
        s, _, body = http("GET", "http://web/", proxy=("127.0.0.1", refused.port("out")))
        c.check(s == 502 and b"certificate" in body,
                "a server certificate the service account's CA did not sign is refused, saying so: %d %r" % (s, body[:300]))

        gone = os.path.join(tmp, "sa-no-token")
        os.makedirs(gone)
        with open(os.path.join(gone, "ca.crt"), "w") as out, open(pki["ca"]) as f:
            out.write(f.read())
        cfg = os.path.join(tmp, "in-cluster.yaml")
        with open(cfg, "w") as f:
            f.write(in_cluster)
        p = subprocess.run([BINARY, "router", "--check", "-c", cfg], capture_output=True, text=True,
                           env=dict(os.environ, **env(gone)))
        c.check(p.returncode != 0 and os.path.join(gone, "token") in p.stderr,
                "a missing token fails the config check, naming the file: %d %r" % (p.returncode, p.stderr[-300:]))
    finally:
        r.stop()
        if refused:
            refused.stop()
        api.stop()
        a.stop()
        b.stop()


def test_specific_host_replace_and_const_transformers(c):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    b = Backend("b", host="127.0.0.2", port=port)
    const = Backend("const")
    api = K8sApiServer()
    api.start()
    service(api, ["127.0.0.1", "127.0.0.2"], port)
    service(api, ["127.0.0.1", "127.0.0.2"], port, name="web2")

    def router(transformers):
        return transforming_router(api, "out", transformers)
    by_ip = router("    - {kind: io.l5d.specificHost, host: 127.0.0.2}")
    by_name = router("    - {kind: io.l5d.specificHost, host: localhost}")
    replaced = router("    - {kind: io.l5d.replace, path: /#/shared}")
    constant = router("    - {kind: io.l5d.const, path: /$/inet/127.0.0.1/%d}" % const.port)
    try:
        c.eq(set(answers(by_ip, "web", 20)), {"b"}, "io.l5d.specificHost keeps only the endpoints at that address")
        c.eq(set(answers(by_name, "web", 20)), {"a"}, "a host name is resolved first (localhost: 127.0.0.1)")
        got = set(answers(replaced, "web", 10) + answers(replaced, "web2", 10))
        c.eq(got, {"a", "b"}, "io.l5d.replace keeps the addresses")
        m = json.loads(http("GET", replaced.admin_url("/admin/metrics.json"))[2])
        c.eq(m.get("rt/out/client/#/shared/requests"), 20,
             "and both services share the one client it names: %s" % [k for k in m if "/client/" in k][:4])
        c.eq(answers(constant, "web", 3) + answers(constant, "nosuch"), ["const"] * 4,
             "io.l5d.const sends everything to its path, even a name that binds to nothing")
    finally:
        for r in (by_ip, by_name, replaced, constant):
            r.stop()
        api.stop()
        for x in (a, b, const):
            x.stop()


def test_idle_watches_are_closed(c):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    api = K8sApiServer()
    api.start()
    service(api, ["127.0.0.1"], port)
    r = Router(BINARY, config(api, a.port).replace("  port: %d\n" % api.port,
                                                    "  port: %d\n  idleWatchSecs: 1\n" % api.port))

    def streams():
        return [w["id"] for w in api.watcher_info()["streams"] if w["resource"] == "endpoints"]
    try:
        c.eq(answers(r, "web"), ["a"], "a service is listed and watched when first asked for")
        c.check(wait_until(lambda: len(streams()) == 1, 5), "one watch: %s" % streams())
        first = streams()
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            answers(r, "web")
            time.sleep(0.05)
        c.eq(streams(), first, "a service asked for all along keeps its watch across three sweeps")
        c.check(wait_until(lambda: streams() == [], 5), "once nobody asks for it, its watch is closed")
        c.check(wait_until(lambda: "closed 1 watch(es)" in r.stderr(), 3),
                "and the router says so: %r" % r.stderr()[-300:])
        mark = api.request_log()["next"]
        c.eq(answers(r, "web"), ["a"], "asked for again, it serves")
        c.check(any(not q.get("watch") for q in api.request_log(mark)["requests"]), "listed afresh")
        c.check(wait_until(lambda: len(streams()) == 1, 5), "and watched again")
    finally:
        r.stop()
        api.stop()
        a.stop()


def test_hostile_watch_stream(c):
    """What an API server (or something in its place) sends cannot take the
    router down: lines that are not events are skipped, an event that never
    ends is cut off at 16 MB and the service listed again."""
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    b = Backend("b", host="127.0.0.2", port=port)
    api = K8sApiServer()
    api.start()
    service(api, ["127.0.0.1"], port)
    r = Router(BINARY, config(api, a.port))
    try:
        c.eq(answers(r, "web"), ["a"], "the service serves")
        c.check(wait_until(lambda: api.watcher_info()["watchers"] == 1, 5), "and is watched")
        for raw in ["this is not JSON", '{"type": "MODIFIED", "object": "nonsense"}', '{"type": 7}',
                    '{"type": "ADDED", "object": {"metadata": {"name": 1}, "subsets": "x"}}', "[]", "{" * 5000]:
            api.inject(raw=raw)
        c.eq(answers(r, "web", 5), ["a"] * 5, "lines that are not events change nothing")
        service(api, ["127.0.0.2"], port)
        c.check(wait_until(lambda: answers(r, "web") == ["b"], 5), "and the watch goes on: a change arrives")
        mark = api.request_log()["next"]
        api.inject(raw="x" * (17 << 20))
        c.check(wait_until(lambda: any(not q.get("watch") for q in api.request_log(mark)["requests"]), 10),
                "a 17 MB line is cut off and the service listed again")
        c.check("an event over 16 MB" in r.stderr(), "saying so: %r" % r.stderr()[-300:])
        c.eq(answers(r, "web", 5), ["b"] * 5, "the last good set served throughout")
        service(api, ["127.0.0.1"], port)
        c.check(wait_until(lambda: answers(r, "web") == ["a"], 10), "and changes arrive again")
        c.check(r.alive(), "the router is still running")
    finally:
        r.stop()
        api.stop()
        a.stop()
        b.stop()


def promtool_problems(text):
    """What promtool says of an exposition beyond Linkerd's own naming."""
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    allowed = ('should have "_total" suffix', "should not contain ':'", "abbreviated units")
    other = [l for l in (p.stdout + p.stderr).splitlines() if l.strip() and not any(a in l for a in allowed)]
    return other if p.returncode != 1 or other else ["exit %d" % p.returncode]


def test_namer_metrics(c):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    api = K8sApiServer()
    api.start()
    service(api, ["127.0.0.1"], port)
    r = Router(BINARY, config(api, a.port))

    def metrics():
        return json.loads(http("GET", r.admin_url("/admin/metrics.json"))[2])
    try:
        answers(r, "web")
        m = metrics()
        c.eq((m.get("namer/#/io.l5d.k8s/watches"), m.get("namer/#/io.l5d.k8s/watches_failing")), (1, 0),
             "one query followed, none failing")
        c.check(m.get("namer/#/io.l5d.k8s/lists", 0) >= 1, "its list is counted: %s" %
                {k: v for k, v in m.items() if k.startswith("namer/")})
        service(api, ["127.0.0.1", "127.0.0.3"], port)
        c.check(wait_until(lambda: metrics().get("namer/#/io.l5d.k8s/events", 0) >= 1, 5), "a change is an event")
        api.set_down(seconds=3)
        c.check(wait_until(lambda: metrics().get("namer/#/io.l5d.k8s/watches_failing") == 1, 5),
                "with the API down the query is counted as failing (serving its last state)")
        c.check(metrics().get("namer/#/io.l5d.k8s/failures", 0) >= 1, "and its failures counted")
        c.check(wait_until(lambda: metrics().get("namer/#/io.l5d.k8s/watches_failing") == 0, 15),
                "once the API is back and the watch has lasted, none is failing")
        text = http("GET", r.admin_url("/admin/metrics/prometheus"))[2].decode()
        c.check('namer:watches{namer="/#/io.l5d.k8s"} 1' in text, "the same in Prometheus")
        c.eq(promtool_problems(text), [], "and promtool finds nothing beyond Linkerd's naming")
    finally:
        r.stop()
        api.stop()
        a.stop()


def test_api_server_by_host_name(c):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    api = K8sApiServer()
    api.start()
    service(api, ["127.0.0.1"], port)
    dns = harness.Dnsmasq(hosts=[("127.0.0.1", "api.test")])

    def router(host):
        return Router(BINARY, """admin: {port: 0}
dns: {servers: ["127.0.0.1:%d"], timeoutMs: 300}
namers:
- {kind: io.l5d.k8s, host: %s, port: %d}
routers:
- protocol: http
  label: out
  dtab: /svc => /#/io.l5d.k8s/default/http;
  servers: [{port: 0}]
""" % (dns.port, host, api.port))
    good = router("api.test")
    bad = router("nosuch.test")
    try:
        c.eq(answers(good, "web"), ["a"], "the API server's host name is looked up through the dns block")
        s, _, body = http("GET", "http://web/", proxy=("127.0.0.1", bad.port("out")))
        c.check(s == 502 and b"cannot resolve nosuch.test" in body,
                "a name that does not resolve fails, saying so: %d %r" % (s, body[:300]))
    finally:
        good.stop()
        bad.stop()
        dns.stop()
        api.stop()
        a.stop()


def check_config(text):
    """(exit code, stderr) of `switchyard router --check` on `text`."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        p = subprocess.run([BINARY, "router", "--check", "-c", f.name], capture_output=True, text=True,
                           timeout=30)
        return p.returncode, p.stderr
    finally:
        os.unlink(f.name)


def test_label_selector_is_a_label_key(c):
    # As in Linkerd, labelSelector names a label; names carry its value after
    # the service, and only objects with that value count.
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    fallback = Backend("fallback")
    api = K8sApiServer()
    routers = []

    def labelled(version):
        api.put_service({"namespace": "default", "name": "web", "labels": {"version": version},
                         "ports": [{"name": "http", "port": 80, "targetPort": port}],
                         "endpoints": [{"ip": "127.0.0.1", "nodeName": "node-0"}]})

    try:
        api.start()
        labelled("v1")
        for slices in (False, True):
            kind = "EndpointSlices" if slices else "Endpoints"
            mark = api.request_log()["next"]
            r = Router(BINARY, """admin: {port: 0}
namers:
- {kind: io.l5d.k8s, port: %d, labelSelector: version, useEndpointSlices: %s}
routers:
- protocol: http
  label: out
  dtab: |
    /k8s => /#/io.l5d.k8s/default/http;
    /svc => /$/inet/127.0.0.1/%d;
    /svc/one => /k8s/web/v1;
    /svc/two => /k8s/web/v2;
    /svc/bad => /k8s/web/v1:x;
  servers: [{port: 0}]
""" % (api.port, "true" if slices else "false", fallback.port))
            routers.append(r)
            c.eq(answers(r, "one") + answers(r, "two"), ["a", "fallback"],
                 "%s: web/v1 binds the service labelled version=v1; web/v2 matches nothing and falls back" % kind)
            c.eq(answers(r, "bad"), ["fallback"], "%s: a value that is no label value is negative" % kind)
            reqs = api.request_log(mark)["requests"]
            selectors = [q.get("params", {}).get("labelSelector", "") for q in reqs]
            want = ("kubernetes.io/service-name=web,version=v1" if slices else "version=v1")
            c.check(want in selectors, "%s: the selector %s is sent: %s" % (kind, want, sorted(set(selectors))))
            c.check(not any("v1:x" in sel for sel in selectors), "%s: the bad value never reaches a selector" % kind)
        labelled("v2")
        for r in routers:
            c.check(wait_until(lambda: answers(r, "one") + answers(r, "two") == ["fallback", "a"], 5),
                    "relabelled version=v2, the watches follow: v1 falls back, v2 binds")
    finally:
        for r in routers:
            r.stop()
        api.stop()
        a.stop()
        fallback.stop()
    for selector in ("version=v1", "Example.com/track", "example..com/track"):
        rc, err = check_config("""namers:
- {kind: io.l5d.k8s, labelSelector: "%s"}
routers:
- {protocol: http, dtab: "/svc => /#/io.l5d.k8s/default/http", servers: [{port: 4140}]}
""" % selector)
        c.check(rc != 0 and "labelSelector" in err and "label key" in err,
                "labelSelector %r is no label key: refused, saying so: %d %r" % (selector, rc, err[-300:]))


def test_label_selector_with_the_daemonset_transformer(c):
    # The daemonset transformer looks the routers' Service up with three
    # elements, which a labelled namer answers unfiltered.
    api = K8sApiServer()
    app = Backend("app", host="127.0.0.1")
    incoming = Backend("incoming")  # stands for the router pod's incoming port
    router = None
    try:
        api.start()
        api.put_service({"namespace": "default", "name": "web", "labels": {"version": "v1"},
                         "ports": [{"name": "http", "port": 80, "targetPort": app.port}],
                         "endpoints": [{"ip": "127.0.0.1", "nodeName": "node-a"}]})
        api.put_service({"namespace": "linkerd", "name": "l5d",
                         "ports": [{"name": "incoming", "port": 4141, "targetPort": incoming.port}],
                         "endpoints": [{"ip": "127.0.0.1", "nodeName": "node-a"}]})
        router = Router(BINARY, """admin: {port: 0}
namers:
- {kind: io.l5d.k8s, port: %d, labelSelector: version}
routers:
- protocol: http
  label: out
  interpreter:
    kind: default
    transformers:
    - {kind: io.l5d.k8s.daemonset, namespace: linkerd, service: l5d, port: incoming}
  dtab: /svc => /#/io.l5d.k8s/default/http/web/v1;
  servers: [{port: 0}]
""" % api.port)
        c.eq(answers(router, "web", 3), ["incoming"] * 3,
             "a labelled service goes to the router pod on its endpoint's node")
    finally:
        if router:
            router.stop()
        api.stop()
        app.stop()
        incoming.stop()


def lb_service(name, ports, ingress, labels=None):
    svc = {"kind": "Service", "apiVersion": "v1",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"type": "LoadBalancer", "ports": ports},
           "status": {"loadBalancer": {"ingress": ingress} if ingress else {}}}
    if labels:
        svc["metadata"]["labels"] = labels
    return svc


def test_external_namer_binds_load_balancers(c):
    port_a = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port_a)
    b = Backend("b", host="127.0.0.2")
    b3 = Backend("b3", host="127.0.0.3", port=b.port)
    fallback = Backend("fallback")
    api = K8sApiServer()
    dns = None
    r = None
    try:
        api.start()
        api.put_objects([
            lb_service("lb", [{"name": "http", "port": port_a, "targetPort": 8080}], [{"ip": "127.0.0.1"}]),
            # AWS gives host names, looked up through the dns block.
            lb_service("aws", [{"name": "http", "port": b.port}], [{"hostname": "elb.lb.test"}]),
            # An IP and a host name: one set of both.
            lb_service("both", [{"name": "http", "port": b.port}],
                       [{"ip": "127.0.0.3"}, {"hostname": "elb.lb.test"}]),
            lb_service("pending", [{"name": "http", "port": port_a}], None),
            lb_service("gone", [{"name": "http", "port": port_a}], [{"hostname": "nosuch.lb.test"}]),
        ])
        dns = harness.Dnsmasq(hosts=[("127.0.0.2", "elb.lb.test")])
        r = Router(BINARY, """admin: {port: 0}
dns: {servers: ["127.0.0.1:%d"], timeoutMs: 300}
namers:
- kind: io.l5d.k8s.external
  experimental: true
  host: localhost
  port: %d
routers:
- protocol: http
  label: out
  dtab: |
    /svc => /$/inet/127.0.0.1/%d;
    /svc => /#/io.l5d.k8s.external/default/http;
    /svc/num => /#/io.l5d.k8s.external/default/%d/lb;
    /svc/notaport => /#/io.l5d.k8s.external/default/8080/lb;
    /svc/grpc => /#/io.l5d.k8s.external/default/grpc/lb;
  servers: [{port: 0}]
""" % (dns.port, api.port, fallback.port, port_a))
        c.eq(answers(r, "lb", 2), ["a", "a"], "a Service's load balancer IP on the named port")
        c.eq(answers(r, "num"), ["a"], "a numbered port is the Service port's number")
        c.eq(answers(r, "notaport"), ["fallback"], "a number that is only a targetPort is negative")
        c.eq(answers(r, "aws"), ["b"], "an ingress host name is looked up through the dns block")
        c.eq(sorted(set(answers(r, "both", 40))), ["b", "b3"], "an ingress IP and host name serve together")
        c.eq(answers(r, "gone"), ["fallback"], "an ingress host name that does not exist is negative")
        c.eq(answers(r, "pending"), ["fallback"], "a Service with no load balancer address yet is negative")
        c.eq(answers(r, "grpc"), ["fallback"], "a port the Service lacks is negative")
        c.eq(answers(r, "nosuch"), ["fallback"], "a Service that does not exist is negative")
        reqs = api.request_log()["requests"]
        c.check(any(q.get("watch") and "/api/v1/namespaces/default/services" in q.get("path", "") for q in reqs),
                "Services are watched")
        s, _, body = http("GET", "http://localhost:%d/admin/metrics.json" % r.admin_port)
        m = json.loads(body)
        c.check(any("io.l5d.k8s.external/default/http/aws" in k for k in m if k.startswith("rt/out/client/")),
                "a host-name load balancer is the namer's own client, not /$/inet's: %s"
                % sorted({k.split("/requests")[0] for k in m if k.startswith("rt/out/client/")})[:8])
        api.put_object(lb_service("pending", [{"name": "http", "port": port_a}], [{"ip": "127.0.0.1"}]))
        c.check(wait_until(lambda: answers(r, "pending") == ["a"], 5),
                "once the load balancer has an address, the watch brings it")
        api.put_object(lb_service("lb", [{"name": "http", "port": port_a}], None))
        c.check(wait_until(lambda: answers(r, "lb") == ["fallback"], 5), "and a load balancer taken away is negative")
        s, _, body = http("GET", "http://localhost:%d/admin/metrics.json" % r.admin_port)
        m = json.loads(body)
        c.check(m.get("namer/#/io.l5d.k8s.external/watches", 0) >= 5,
                "the namer's metrics are under its own prefix: %r"
                % {k: v for k, v in m.items() if "k8s" in k})
    finally:
        if r:
            r.stop()
        if dns:
            dns.stop()
        api.stop()
        for x in (a, b, b3, fallback):
            x.stop()

def test_namespaced_namer(c):
    # io.l5d.k8s.ns: names within the pod's own namespace ($POD_NAMESPACE).
    a = Backend("a", host="127.0.0.1")
    fallback = Backend("fallback")
    api = K8sApiServer()
    routers = {}
    try:
        api.start()
        api.put_service({"namespace": "shop", "name": "web",
                         "ports": [{"name": "http", "port": 80, "targetPort": a.port}],
                         "endpoints": [{"ip": "127.0.0.1", "nodeName": "node-0"}]})
        cfg = """admin: {port: 0}
namers:
- {kind: io.l5d.k8s.ns, port: %d}
routers:
- protocol: http
  label: out
  dtab: /svc => /#/io.l5d.k8s.ns/http | /$/inet/127.0.0.1/%d;
  servers: [{port: 0}]
""" % (api.port, fallback.port)
        routers["shop"] = Router(BINARY, cfg, env={"POD_NAMESPACE": "shop"})
        routers["unset"] = Router(BINARY, cfg, env={"POD_NAMESPACE": ""})
        r = routers["shop"]
        c.eq(answers(r, "web") + answers(r, "Web"), ["a", "a"], "a service in $POD_NAMESPACE, by port name")
        c.eq(answers(r, "nosuch"), ["fallback"], "a service not in that namespace is negative")
        reqs = api.request_log()["requests"]
        c.check(any(q.get("path", "").startswith("/api/v1/namespaces/shop/endpoints") for q in reqs),
                "the namespace's endpoints are read: %s" % [q.get("path") for q in reqs][:4])
        s, _, body = http("GET", "http://web/", proxy=("127.0.0.1", routers["unset"].port("out")))
        c.check(s == 502 and b"POD_NAMESPACE is not set" in body,
                "without $POD_NAMESPACE its names fail, saying so: %d %r" % (s, body[:200]))
    finally:
        for r in routers.values():
            r.stop()
        api.stop()
        a.stop()
        fallback.stop()


TESTS = [
    test_endpoints_follow_changes_under_traffic,
    test_missing_port_and_deleted_service,
    test_localnode_and_port_transformers,
    test_two_node_daemonset_on_loopback,
    test_api_unreachable_from_the_start,
    test_endpoint_slices,
    test_numbered_port_is_the_service_port,
    test_in_cluster_https_with_the_service_account,
    test_specific_host_replace_and_const_transformers,
    test_daemonset_as_a_namer_transformer,
    test_idle_watches_are_closed,
    test_hostile_watch_stream,
    test_namer_metrics,
    test_api_server_by_host_name,
    test_label_selector_is_a_label_key,
    test_label_selector_with_the_daemonset_transformer,
    test_external_namer_binds_load_balancers,
    test_namespaced_namer,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
