#!/usr/bin/env python3
"""Routers that bind through the namer service (interpreter
io.l5d.namerd.http): a dtab change reaches every router's routing; a namer
outage fails no request that was routable; a router started before the namer
answers 503 after bindingTimeoutMs and routes once the namer is up; tenants
route by their own overlay (l5d-tenant header, or one namespace per server).

Usage: namerd_interpreter_test.py SWITCHYARD_BINARY [TEST_NAME ...]
Prints the measured propagation delays (PUT acknowledged -> both routers route
by the new dtab); the test itself only requires that they arrive.
"""

import json
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Connection, Namer, Router, free_port, header, http, wait_until  # noqa: E402

BINARY = None


def namer_config(store_dir, port=0, extra=""):
    return """admin: {port: 0}
storage: {kind: file, dir: %s}
interfaces:
- {kind: io.l5d.httpController, port: %d}
%s""" % (store_dir, port, extra)


def router_config(namer_port, namespace="default", servers="  - port: 0\n", binding_timeout=2000):
    return """admin: {port: 0}
routers:
- protocol: http
  label: out
  bindingTimeoutMs: %d
  interpreter:
    kind: io.l5d.namerd.http
    dst: /$/inet/127.0.0.1/%d
    namespace: %s
  servers:
%s""" % (binding_timeout, namer_port, namespace, servers)


def put(namer_url, ns, dtab, method="PUT"):
    s, _, body = http(method, namer_url + "/api/1/dtabs/" + ns, body=dtab.encode(),
                      headers={"Content-Type": "application/dtab"})
    if s != 204:
        raise harness.HarnessError("%s %s: %d %r" % (method, ns, s, body))


def backend_of(conn, host="web", headers=None):
    try:
        s, _, body = conn.request("GET", "http://%s/" % host, headers=headers)
    except OSError as e:
        return "error %s" % e
    return json.loads(body)["backend"] if s == 200 else "status %d" % s


def inet(b):
    return "/$/inet/127.0.0.1/%d" % b.port


def test_dtab_changes_reach_every_router(c):
    a, b = Backend("a"), Backend("b")
    n = Namer(BINARY, namer_config(tempfile.mkdtemp(prefix="switchyard-nstore-")))
    url = n.api_url("").rstrip("/")
    put(url, "default", "/svc => %s" % inet(a), method="POST")
    routers = [Router(BINARY, router_config(n.api_port())) for _ in range(2)]
    conns = [Connection("127.0.0.1", r.port("out")) for r in routers]
    try:
        for i, conn in enumerate(conns):
            c.eq(backend_of(conn), "a", "router %d routes by the namer's dtab" % i)
        delays = []
        target = {"a": b, "b": a}
        current = "a"
        for _ in range(20):
            nxt = "b" if current == "a" else "a"
            put(url, "default", "/svc => %s" % inet(target[current]))
            t0 = time.monotonic()
            arrived = [None, None]
            deadline = t0 + 5
            while None in arrived and time.monotonic() < deadline:
                for i, conn in enumerate(conns):
                    if arrived[i] is None and backend_of(conn) == nxt:
                        arrived[i] = time.monotonic() - t0
            if None in arrived:
                c.check(False, "a PUT reached both routers within 5 s: %s" % arrived)
                break
            delays.append(max(arrived))
            current = nxt
        if delays:
            delays.sort()
            p50 = statistics.median(delays) * 1000
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000
            print("propagation PUT -> both routers routing (%d changes): p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                  % (len(delays), p50, p99, delays[-1] * 1000))
            c.eq(len(delays), 20, "all 20 changes reached both routers")
        s, _, body = http("GET", routers[0].admin_url("/delegator.json?path=/svc/web"))
        c.check(s == 200 and json.loads(body)["delegate"]["dentry"]["prefix"] == "/svc",
                "the router's /delegator.json shows the namer service's delegation: %r" % body[:300])
        s, _, body = http("GET", routers[0].admin_url("/admin/metrics.json"))
        m = json.loads(body)
        c.eq(m.get("rt/out/interpreter/namerd/streams_connected"), 1.0, "one stream per name: %s" % body[:300])
    finally:
        for conn in conns:
            conn.close()
        for r in routers:
            r.stop()
        n.stop()
        a.stop()
        b.stop()


def test_namer_outage_fails_no_request(c):
    a = Backend("a")
    store = tempfile.mkdtemp(prefix="switchyard-nstore-")
    port = free_port(harness.socket.SOCK_STREAM)
    n = Namer(BINARY, namer_config(store, port))
    put(n.api_url("").rstrip("/"), "default", "/svc => %s" % inet(a), method="POST")
    routers = [Router(BINARY, router_config(port)) for _ in range(2)]
    stop = threading.Event()
    results = {"ok": 0, "failed": []}
    lock = threading.Lock()

    def client(r):
        conn = Connection("127.0.0.1", r.port("out"))
        try:
            while not stop.is_set():
                got = backend_of(conn)
                with lock:
                    if got == "a":
                        results["ok"] += 1
                    else:
                        results["failed"].append(got)
                time.sleep(0.01)
        finally:
            conn.close()
    threads = [threading.Thread(target=client, args=(r,)) for r in routers]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: results["ok"] > 20, 5)
        n.stop()
        stopped_at = results["ok"]
        time.sleep(30)
        during = results["ok"] - stopped_at
        c.check(any("unreachable" in r.stderr() for r in routers), "the routers log the outage")
        s, _, body = http("GET", routers[0].admin_url("/admin/metrics.json"))
        c.eq(json.loads(body).get("rt/out/interpreter/namerd/streams_connected"), 0.0,
             "metrics show no stream connected during the outage")
        n2 = Namer(BINARY, namer_config(store, port))
        try:
            c.check(wait_until(lambda: all("answers again" in r.stderr() for r in routers), 10),
                    "both routers reconnect when the namer is back")
            b = Backend("b")
            try:
                put(n2.api_url("").rstrip("/"), "default", "/svc => %s" % inet(b))
                conn = Connection("127.0.0.1", routers[1].port("out"))
                c.check(wait_until(lambda: backend_of(conn) == "b", 5), "and follow changes again")
                conn.close()
            finally:
                stop.set()
                for t in threads:
                    t.join()
                b.stop()
        finally:
            n2.stop()
        failures = [f for f in results["failed"] if f != "b"]
        c.eq(failures, [], "no request failed while the namer was down for 30 s (%d served during it)" % during)
        c.check(during > 100, "traffic flowed during the outage: %d requests" % during)
    finally:
        stop.set()
        for r in routers:
            r.stop()
        a.stop()


def test_router_started_before_the_namer(c):
    a = Backend("a")
    store = tempfile.mkdtemp(prefix="switchyard-nstore-")
    port = free_port(harness.socket.SOCK_STREAM)
    r = Router(BINARY, router_config(port, binding_timeout=1000))
    n = None
    try:
        t0 = time.monotonic()
        s, h, body = http("GET", "http://web/", proxy=("127.0.0.1", r.port("out")))
        took = time.monotonic() - t0
        c.eq(s, 503, "with the namer down a request gets 503")
        c.check(0.9 <= took < 5, "after bindingTimeoutMs (1 s): %.2f s" % took)
        c.check("timed out" in (header(h, "l5d-err") or ""), "l5d-err says the binding timed out: %r" % header(h, "l5d-err"))
        n = Namer(BINARY, namer_config(store, port))
        put(n.api_url("").rstrip("/"), "default", "/svc => %s" % inet(a), method="POST")
        conn = Connection("127.0.0.1", r.port("out"))
        t0 = time.monotonic()
        # A retry may land between the namer listening and the POST: the
        # 404 (no such namespace) is then retried after 10 s, as a refusal.
        c.check(wait_until(lambda: backend_of(conn) == "a", 25), "the router routes once the namer is up")
        print("router started first: routing %.2f s after the namespace was created" % (time.monotonic() - t0))
        conn.close()
    finally:
        r.stop()
        if n:
            n.stop()
        a.stop()


def test_tenants_route_by_their_overlay(c):
    a, b, t = Backend("a"), Backend("b"), Backend("t")
    n = Namer(BINARY, namer_config(tempfile.mkdtemp(prefix="switchyard-nstore-")))
    url = n.api_url("").rstrip("/")
    put(url, "default", "/svc => %s" % inet(a), method="POST")
    s, _, body = http("POST", url + "/api/1/dtabs/acme?base=default", body=("/svc/web => %s" % inet(b)).encode())
    c.eq(s, 204, "acme is created on top of default: %r" % body)
    put(url, "solo", "/svc => %s" % inet(t), method="POST")
    servers = "  - port: 0\n  - {port: 0, namespace: solo}\n"
    r = Router(BINARY, router_config(n.api_port(), namespace="{header: l5d-tenant, default: default, allowed: [default, acme]}",
                                     servers=servers))
    try:
        conn = Connection("127.0.0.1", r.port("out"))
        c.eq(backend_of(conn), "a", "without l5d-tenant: the default namespace")
        c.eq(backend_of(conn, headers={"l5d-tenant": "acme"}), "b", "l5d-tenant: acme routes by acme's overlay")
        c.eq(backend_of(conn, host="other", headers={"l5d-tenant": "acme"}), "a", "names acme does not override use the base")
        s, h, _ = conn.request("GET", "http://web/", headers={"l5d-tenant": "beta"})
        c.eq(s, 400, "a tenant not in `allowed` is refused: %s" % header(h, "l5d-err"))
        put(url, "default", "/svc => %s" % inet(t))
        c.check(wait_until(lambda: backend_of(conn, host="other", headers={"l5d-tenant": "acme"}) == "t", 5),
                "a base change reaches the tenant's routing")
        c.eq(backend_of(conn, headers={"l5d-tenant": "acme"}), "b", "while its own entry still wins")
        conn.close()
        conn2 = Connection("127.0.0.1", r.port("out", 1))
        c.eq(backend_of(conn2), "t", "a server with its own namespace routes by it")
        conn2.close()
    finally:
        r.stop()
        n.stop()
        for x in (a, b, t):
            x.stop()


TESTS = [
    test_dtab_changes_reach_every_router,
    test_namer_outage_fails_no_request,
    test_router_started_before_the_namer,
    test_tenants_route_by_their_overlay,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
