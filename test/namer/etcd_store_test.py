#!/usr/bin/env python3
"""The namer service on etcd storage (io.l5d.etcd), against a real etcd v3
(Debian's etcd-server) on loopback: two namer replicas share one etcd;
versions are etcd revisions; If-Match writes through both replicas lose no
update; a change made in etcd directly (etcdctl) reaches the API and a
router; with etcd down reads go on and writes are 503; after etcd comes back
the replicas follow it again.

Usage: etcd_store_test.py SWITCHYARD_BINARY [TEST_NAME ...]
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Connection, Etcd, Namer, Router, header, http, wait_until  # noqa: E402

BINARY = None


def namer_config(etcd, prefix="/namerd/dtabs"):
    return """admin: {port: 0}
storage: {kind: io.l5d.etcd, host: 127.0.0.1, port: %d, pathPrefix: %s}
interfaces:
- {kind: io.l5d.httpController, port: 0}
""" % (etcd.port, prefix)


def dtab_of(n, ns):
    s, h, body = http("GET", n.api_url("/api/1/dtabs/" + ns), headers={"Accept": "application/dtab"})
    return (body.decode(), header(h, "ETag")) if s == 200 else (s, None)


def test_replicas_share_etcd(c):
    etcd = Etcd()
    a = Namer(BINARY, namer_config(etcd))
    b = Namer(BINARY, namer_config(etcd))
    try:
        s, h, _ = http("POST", a.api_url("/api/1/dtabs/default"), body=b"/svc => /#/io.l5d.fs")
        c.eq(s, 204, "create through replica A")
        version = header(h, "ETag")
        p = etcd.ctl("get", "/namerd/dtabs/default", "-w", "json")
        kv = json.loads(p.stdout)["kvs"][0]
        c.eq('"%s"' % kv["mod_revision"], version, "the version is the key's etcd mod_revision")
        c.check(wait_until(lambda: dtab_of(b, "default")[0] == "/svc=>/#/io.l5d.fs", 5),
                "replica B sees it through etcd's watch")
        c.eq(dtab_of(b, "default")[1], version, "with the same version")
        s, _, _ = http("POST", b.api_url("/api/1/dtabs/default"), body=b"/x => /y")
        c.eq(s, 409, "creating it again through B is 409")
        s, _, _ = http("PUT", b.api_url("/api/1/dtabs/default"), body=b"/x => /y", headers={"If-Match": '"1"'})
        c.eq(s, 412, "a stale If-Match through B is 412")

        etcd.ctl("put", "/namerd/dtabs/direct", "/svc => /$/inet/127.0.0.1/1")
        c.check(wait_until(lambda: dtab_of(a, "direct")[0] == "/svc=>/$/inet/127.0.0.1/1", 5),
                "a dtab written with etcdctl (as Namerd stores it: plain text) appears")
        s, _, _ = http("POST", a.api_url("/api/1/dtabs/tenant?base=default"), body=b"/svc/t => /#/t")
        c.eq(s, 204, "a tenant with a base")
        c.check(wait_until(lambda: http("GET", b.api_url("/api/1/dtabs/tenant"))[1] and
                           header(http("GET", b.api_url("/api/1/dtabs/tenant"))[1], "X-Switchyard-Base") == "default", 5),
                "its base is stored and seen by the other replica")
        etcd.ctl("del", "/namerd/dtabs/direct")
        c.check(wait_until(lambda: dtab_of(b, "direct")[0] == 404, 5), "a delete in etcd removes the namespace")

        # 16 writers, half through each replica, each adding one with If-Match.
        http("POST", a.api_url("/api/1/dtabs/counter"), body=b"/count => /#/0")
        per_writer = 5
        errors = harness.increment_concurrently([b, a], "counter", 16, per_writer)
        c.eq(errors, [], "no writer failed")
        p = etcd.ctl("get", "/namerd/dtabs/counter", "--print-value-only")
        c.eq(p.stdout.strip(), "/count=>/#/%d" % (16 * per_writer), "16 writers over two replicas lost no update")
    finally:
        a.stop()
        b.stop()
        etcd.stop()


def test_change_through_one_replica_reaches_routers_on_another(c):
    etcd = Etcd()
    a = Namer(BINARY, namer_config(etcd))
    b = Namer(BINARY, namer_config(etcd))
    x, y = Backend("x"), Backend("y")
    routers = []
    try:
        http("POST", a.api_url("/api/1/dtabs/default"), body=("/svc => /$/inet/127.0.0.1/%d" % x.port).encode())
        wait_until(lambda: dtab_of(b, "default")[0] != 404, 5)
        for _ in range(2):
            routers.append(Router(BINARY, """admin: {port: 0}
routers:
- protocol: http
  label: out
  interpreter: {kind: io.l5d.namerd.http, dst: /$/inet/127.0.0.1/%d, namespace: default}
  servers: [{port: 0}]
""" % b.api_port()))
        conns = [Connection("127.0.0.1", r.port("out")) for r in routers]

        def backend(conn):
            s, _, body = conn.request("GET", "http://web/")
            return json.loads(body)["backend"] if s == 200 else s
        c.check(all(wait_until(lambda conn=conn: backend(conn) == "x", 5) for conn in conns), "routers on B route")
        delays = []
        current = "x"
        for _ in range(10):
            nxt, port = ("y", y.port) if current == "x" else ("x", x.port)
            s, _, _ = http("PUT", a.api_url("/api/1/dtabs/default"), body=("/svc => /$/inet/127.0.0.1/%d" % port).encode())
            t0 = time.monotonic()
            ok = all(wait_until(lambda conn=conn: backend(conn) == nxt, 5, interval=0.002) for conn in conns)
            delays.append(time.monotonic() - t0)
            c.check(ok and s == 204, "a PUT on replica A reaches both routers on replica B")
            current = nxt
        delays.sort()
        print("propagation through etcd (PUT on replica A -> both routers on replica B routing, %d changes): "
              "p50 %.1f ms, max %.1f ms" % (len(delays), delays[len(delays) // 2] * 1000, delays[-1] * 1000))
        for conn in conns:
            conn.close()
    finally:
        for r in routers:
            r.stop()
        a.stop()
        b.stop()
        etcd.stop()
        x.stop()
        y.stop()


def test_etcd_outage(c):
    etcd = Etcd()
    backend = Backend("a")
    n = Namer(BINARY, namer_config(etcd))
    r = None
    try:
        http("POST", n.api_url("/api/1/dtabs/default"), body=("/svc => /$/inet/127.0.0.1/%d" % backend.port).encode())
        r = Router(BINARY, """admin: {port: 0}
routers:
- protocol: http
  label: out
  interpreter: {kind: io.l5d.namerd.http, dst: /$/inet/127.0.0.1/%d, namespace: default}
  servers: [{port: 0}]
""" % n.api_port())
        conn = Connection("127.0.0.1", r.port("out"))
        s, _, body = conn.request("GET", "http://web/")
        c.eq((s, json.loads(body)["backend"]), (200, "a"), "routing through namer and etcd")
        etcd.stop()
        c.eq(dtab_of(n, "default")[0], "/svc=>/$/inet/127.0.0.1/%d" % backend.port, "with etcd down, reads go on")
        s, _, body = http("PUT", n.api_url("/api/1/dtabs/default"), body=b"/svc => /x")
        c.eq(s, 503, "and a write is 503: %r" % body)
        c.check(b"etcd" in body, "saying etcd is the problem: %r" % body)
        s, _, _ = conn.request("GET", "http://web/")
        c.eq(s, 200, "the router still routes")
        c.check(wait_until(lambda: "watch lost" in n.stderr(), 5), "the namer logs the lost watch")
        etcd.start()
        c.check(wait_until(lambda: "watching again" in n.stderr(), 10), "and watches again when etcd is back")
        etcd.ctl("put", "/namerd/dtabs/default", "/svc => /$/inet/127.0.0.2/%d" % backend.port)
        c.check(wait_until(lambda: "127.0.0.2" in str(dtab_of(n, "default")[0]), 5), "changes in etcd are followed again")
        conn.close()
    finally:
        if r:
            r.stop()
        n.stop()
        etcd.stop()
        backend.stop()


def test_unreachable_etcd_at_start(c):
    etcd = Etcd()
    etcd.stop()
    n = Namer(BINARY, namer_config(etcd), wait_ready=False)
    code = n.wait_exit(10)
    c.eq(code, 1, "a namer whose etcd is unreachable at start exits 1")
    c.check("etcd at 127.0.0.1:%d" % etcd.port in n.stderr(), "naming etcd and why: %r" % n.stderr())


TESTS = [
    test_replicas_share_etcd,
    test_change_through_one_replica_reaches_routers_on_another,
    test_etcd_outage,
    test_unreachable_etcd_at_start,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
