#!/usr/bin/env python3
"""Integration tests of `switchyard router`: the real binary, real backends
(test/support/backend.py) and real clients (curl, raw sockets) on loopback,
every port ephemeral.

Usage: router_test.py SWITCHYARD_BINARY
"""

import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Router, http, header, curl, RawConnection, wait_until  # noqa: E402

BINARY = None


def write_disco(directory, name, *backends):
    """An io.l5d.fs service file (written atomically, as an operator's tool would)."""
    tmp = os.path.join(directory, "." + name + ".tmp")
    with open(tmp, "w") as f:
        for b in backends:
            f.write("127.0.0.1 %d\n" % b.port)
    os.rename(tmp, os.path.join(directory, name))


def config(disco, dtab="/svc => /#/io.l5d.fs", identifier=None, extra="", server_extra=""):
    ident = ("  identifier: %s\n" % identifier) if identifier else ""
    return """admin: {port: 0}
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: http
  label: out
  dtab: |
    %s
%s  servers:
  - port: 0
%s%s""" % (disco, dtab.replace("\n", "\n    "), ident, server_extra, extra)


def body_json(body):
    return json.loads(body.decode())


class Env:
    """A disco directory with backends a, b and a router over them."""

    def __init__(self, **cfg):
        self.disco = tempfile.mkdtemp(prefix="switchyard-disco-")
        self.a = Backend("a")
        self.b = Backend("b")
        write_disco(self.disco, "hello", self.a)
        write_disco(self.disco, "world", self.b)
        self.router = Router(BINARY, config(self.disco, **cfg), args=["--workers", "2"])
        self.proxy = ("127.0.0.1", self.router.port("out"))

    def get(self, host, path="/", headers=None, **kw):
        return http("GET", "http://%s%s" % (host, path), headers=headers, proxy=self.proxy, **kw)

    def close(self):
        self.router.stop()
        self.a.stop()
        self.b.stop()


def test_routes_by_host_with_linkerd_headers(c):
    env = Env()
    try:
        status, hdrs, body = env.get("hello", "/x?y=1")
        c.eq(status, 200, "GET hello")
        j = body_json(body)
        c.eq(j["backend"], "a", "hello goes to backend a")
        c.eq(j["target"], "/x?y=1", "the target is sent in origin-form")
        sent = {k.lower(): v for k, v in j["headers"]}
        c.eq(sent.get("l5d-dst-service"), "/svc/hello", "l5d-dst-service")
        c.eq(sent.get("l5d-dst-client"), "/#/io.l5d.fs/hello", "l5d-dst-client")
        c.check(len(sent.get("l5d-reqid", "")) == 16, "l5d-reqid is set: %r" % sent.get("l5d-reqid"))
        c.check("switchyard" in sent.get("via", ""), "Via names the router: %r" % sent.get("via"))
        status, _, body = env.get("world")
        c.eq(body_json(body)["backend"], "b", "world goes to backend b")
        # Origin-form (not proxy mode) routes by Host just the same.
        status, _, body = http("GET", "http://127.0.0.1:%d/" % env.proxy[1], headers={"Host": "world"})
        c.eq(body_json(body)["backend"], "b", "origin-form request routed by Host")
    finally:
        env.close()


def test_unknown_name_and_missing_host_fail_clearly(c):
    env = Env()
    try:
        status, hdrs, body = env.get("nope")
        c.eq(status, 502, "unknown name")
        err = header(hdrs, "l5d-err") or ""
        c.check("/svc/nope" in err and "~" in err, "l5d-err names the name and the result: %r" % err)
        r = RawConnection(env.proxy[1])
        r.send(b"GET / HTTP/1.1\r\n\r\n")
        status, hdrs, _ = r.response()
        c.eq(status, 400, "no Host header")
        c.check("Host" in (header(hdrs, "l5d-err") or ""), "l5d-err says Host is missing")
    finally:
        env.close()


def test_routes_by_path_and_header(c):
    env = Env(identifier="[{kind: io.l5d.path, segments: 1, consume: true}, {kind: io.l5d.header, header: my-name}]")
    try:
        status, _, body = env.get("ignored", "/world/rest?q=2")
        c.eq(status, 200, "path identifier")
        j = body_json(body)
        c.eq(j["backend"], "b", "/world/... goes to world")
        c.eq(j["target"], "/rest?q=2", "consume strips the segment")
        status, _, body = http("GET", "http://127.0.0.1:%d/" % env.proxy[1], headers={"my-name": "/hello"})
        c.eq(status, 200, "header identifier after the path one fails")
        c.eq(body_json(body)["backend"], "a", "my-name: /hello goes to hello")
    finally:
        env.close()


def test_dtab_precedence_fallback_and_request_override(c):
    env = Env(dtab="/svc => /#/io.l5d.fs;\n/svc/hello => /#/io.l5d.fs/missing | /#/io.l5d.fs/world;")
    try:
        _, _, body = env.get("hello")
        c.eq(body_json(body)["backend"], "b", "later entry wins, its Alt falls back past a missing name")
        # A per-request override reaches a different backend, for this request only.
        status, _, body = env.get("world", headers={"l5d-dtab": "/svc/world => /#/io.l5d.fs/hello"})
        c.eq(status, 200, "l5d-dtab override")
        j = body_json(body)
        c.eq(j["backend"], "a", "l5d-dtab sends world to hello")
        sent = {k.lower(): v for k, v in j["headers"]}
        c.check("l5d-dtab" not in sent, "l5d-dtab is not forwarded as is")
        c.eq(sent.get("l5d-ctx-dtab"), "/svc/world=>/#/io.l5d.fs/hello", "the override travels as l5d-ctx-dtab")
        _, _, body = env.get("world")
        c.eq(body_json(body)["backend"], "b", "the next request is unaffected")
        status, hdrs, _ = env.get("world", headers={"l5d-dtab": "/svc/world => "})
        c.eq(status, 400, "malformed l5d-dtab")
        c.check("l5d-dtab" in (header(hdrs, "l5d-err") or ""), "l5d-err names the header: %r" % header(hdrs, "l5d-err"))
        status, _, _ = env.get("world", headers={"l5d-dtab": "/a=>/b;" * 2000})
        c.eq(status, 431, "a 14 KB l5d-dtab is over the 8 KB header section")
    finally:
        env.close()
    # With room for larger headers, the per-request dtab has its own limit.
    env = Env(extra="  maxHeadersKB: 64\n")
    try:
        status, hdrs, _ = env.get("world", headers={"l5d-dtab": "/a=>/b;" * 1500})
        c.eq(status, 431, "a 10 KB l5d-dtab over maxLocalDtabKB (8)")
        c.check("per-request dtab" in (header(hdrs, "l5d-err") or ""), "l5d-err: %r" % header(hdrs, "l5d-err"))
        status, _, body = env.get("world", headers={"l5d-dtab": "/a=>/b;" * 1000})
        c.eq(status, 200, "a 7 KB l5d-dtab is accepted")
    finally:
        env.close()


def test_clear_context_strips_l5d_headers(c):
    env = Env(server_extra="    clearContext: true\n")
    try:
        status, _, body = env.get("world", headers={"l5d-dtab": "/svc/world => /#/io.l5d.fs/hello",
                                                    "l5d-ctx-foo": "x"})
        c.eq(status, 200, "request with l5d headers")
        j = body_json(body)
        c.eq(j["backend"], "b", "the untrusted l5d-dtab is ignored")
        names = [k.lower() for k, _ in j["headers"]]
        c.check("l5d-ctx-foo" not in names, "l5d-ctx-* stripped: %r" % names)
    finally:
        env.close()


def test_streams_large_bodies_both_ways(c):
    # Content-Length bodies are bounded by maxRequestKB/maxResponseKB (5 MB
    # by default, as Linkerd's): raised here, and checked at 5 MB below.
    env = Env(extra="  maxRequestKB: 1048576\n  maxResponseKB: 1048576\n")
    try:
        size = 20 * 1024 * 1024
        p = curl(["-x", "%s:%d" % env.proxy, "http://hello/bytes/%d" % size, "-o", "/dev/null",
                  "-w", "%{http_code} %{size_download}"])
        c.eq(p.stdout, "200 %d" % size, "20 MB download through the router")
        data = os.urandom(size)
        import hashlib
        want = hashlib.sha256(data).hexdigest()
        status, _, body = http("POST", "http://hello/echo", body=data, proxy=env.proxy, timeout=30)
        c.eq(status, 200, "20 MB echo")
        c.eq(hashlib.sha256(body).hexdigest(), want, "echoed body matches")
        chunks = [data[i:i + 100000] for i in range(0, 2 * 1024 * 1024, 100000)]
        status, _, body = http("POST", "http://hello/", body=iter(chunks), proxy=env.proxy)
        c.eq(body_json(body)["body_bytes"], sum(len(x) for x in chunks), "chunked upload arrives whole")
        # A client that gives up in the middle of a large response must cost
        # the router nothing (no SIGPIPE, no stuck connection).
        curl(["-x", "%s:%d" % env.proxy, "http://hello/bytes/%d" % (200 * 1024 * 1024), "--limit-rate", "5M",
              "-o", "/dev/null", "-m", "1"])
        status, _, _ = env.get("hello")
        c.eq(status, 200, "the router serves on after a client aborted mid-response")
    finally:
        env.close()


def test_keepalive_pipelining_and_100_continue(c):
    env = Env()
    try:
        p = curl(["-x", "%s:%d" % env.proxy, "http://hello/a", "http://world/b", "-o", "/dev/null",
                  "-o", "/dev/null", "-w", "%{num_connects} "])
        c.eq(p.stdout.split(), ["1", "0"], "two requests, one connection")
        r = RawConnection(env.proxy[1])
        r.send(b"GET /1 HTTP/1.1\r\nHost: hello\r\n\r\nGET /2 HTTP/1.1\r\nHost: world\r\n\r\n")
        s1, _, b1 = r.response()
        s2, _, b2 = r.response()
        c.eq((s1, body_json(b1)["backend"], body_json(b1)["target"]), (200, "a", "/1"), "first pipelined response")
        c.eq((s2, body_json(b2)["backend"], body_json(b2)["target"]), (200, "b", "/2"), "second pipelined response")
        r = RawConnection(env.proxy[1])
        r.send(b"POST / HTTP/1.1\r\nHost: hello\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        s, _, _ = r.response()
        c.eq(s, 100, "100 Continue relayed before the body is sent")
        r.send(b"hello")
        s, _, b = r.response()
        c.eq((s, body_json(b)["body_bytes"]), (200, 5), "then the final response")
    finally:
        env.close()


def test_websocket_upgrade_passthrough(c):
    env = Env()
    try:
        r = RawConnection(env.proxy[1])
        r.send(b"GET /ws HTTP/1.1\r\nHost: hello\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        s, hdrs, _ = r.head()
        c.eq(s, 101, "upgrade answered")
        c.eq(header(hdrs, "sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "accept key passes through")
        r.send(b"raw bytes after the upgrade")
        c.eq(r.read_exact(27), b"raw bytes after the upgrade", "bytes tunnel both ways")
        # An upgrade the endpoint refuses ends with its answer; nothing hangs.
        r = RawConnection(env.proxy[1])
        r.send(b"GET /plain HTTP/1.1\r\nHost: hello\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        s, _, _ = r.response()
        c.eq(s, 200, "a refused upgrade gets the endpoint's answer")
        c.check(r.closed(), "and the connection closes")
    finally:
        env.close()


def test_dead_backend_then_recovery(c):
    env = Env()
    try:
        env.a.kill()
        status, hdrs, _ = env.get("hello")
        c.eq(status, 502, "dead backend")
        err = header(hdrs, "l5d-err") or ""
        c.check("127.0.0.1:%d" % env.a.port in err and "/svc/hello" in err, "l5d-err names the endpoint and name: %r" % err)
        status, _, body = env.get("world")
        c.eq(status, 200, "other services keep working")
        fresh = Backend("a2")
        write_disco(env.disco, "hello", fresh)
        ok = wait_until(lambda: env.get("hello")[0] == 200, 5)
        c.check(ok, "hello recovers once its file names a live backend")
        fresh.stop()
    finally:
        env.close()


def test_endpoint_file_edit_under_traffic(c):
    env = Env()
    results = []
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                s, _, b = env.get("hello")
                results.append((time.monotonic(), s, body_json(b)["backend"] if s == 200 else None))
            except Exception as e:  # noqa: BLE001
                results.append((time.monotonic(), None, repr(e)))

    t = threading.Thread(target=traffic)
    t.start()
    try:
        time.sleep(0.3)
        changed = time.monotonic()
        write_disco(env.disco, "hello", env.b)
        time.sleep(1.5)
    finally:
        stop.set()
        t.join()
        env.close()
    failed = [r for r in results if r[1] != 200]
    c.eq(failed, [], "no failed request while the file changes")
    late = [r for r in results if r[0] > changed + 1.0]
    c.check(late and all(r[2] == "b" for r in late), "1 s after the edit every request goes to the new endpoint")


def test_disco_directory_created_after_start(c):
    parent = tempfile.mkdtemp(prefix="switchyard-disco-")
    disco = os.path.join(parent, "later")
    backend = Backend("late")
    router = Router(BINARY, config(disco))
    proxy = ("127.0.0.1", router.port("out"))
    try:
        c.eq(http("GET", "http://late/", proxy=proxy)[0], 502, "no directory yet: no such service")
        os.mkdir(disco)
        write_disco(disco, "late", backend)
        ok = wait_until(lambda: http("GET", "http://late/", proxy=proxy)[0] == 200, 5)
        c.check(ok, "the directory, created after start, is found and watched")
        backend2 = Backend("late2")
        write_disco(disco, "late", backend2)
        ok = wait_until(lambda: body_json(http("GET", "http://late/", proxy=proxy)[2]).get("backend") == "late2", 3)
        c.check(ok, "and edits in it are seen")
        backend2.stop()
    finally:
        router.stop()
        backend.stop()


def test_malformed_requests_get_4xx_and_others_are_unaffected(c):
    env = Env()
    try:
        slow = socket.create_connection(env.proxy)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: hel")  # slowloris: never finishes
        cases = [
            (b"GARBAGE\r\n\r\n", 400, "bad request line"),
            (b"GET / HTTP/1.1\r\nHost: hello\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431, "header too large"),
            (b"GET / HTTP/1.1\r\nHost: hello\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(10000)) + b"\r\n",
             431, "10k headers"),
            (b"POST / HTTP/1.1\r\nHost: hello\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "invalid chunk size"),
            (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: hello\r\n\r\n", 414, "request line too long"),
            (b"POST / HTTP/1.1\r\nHost: hello\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
             "Content-Length with Transfer-Encoding"),
            (b"GET / HTTP/1.1\r\nHost: hello\r\nBad Header: x\r\n\r\n", 400, "a space in a header name"),
        ]
        for data, want, what in cases:
            r = RawConnection(env.proxy[1])
            try:
                r.send(data)
            except OSError:
                pass  # the router may close before reading it all
            s, hdrs, _ = r.response()
            c.eq(s, want, what)
            c.check(r.closed(), "%s: connection closed after the error" % what)
        status, _, _ = env.get("hello")
        c.eq(status, 200, "a normal request meanwhile")
        slow.close()
        m = json.loads(http("GET", env.router.admin_url("/admin/metrics.json"))[2])
        server = "rt/out/server/127.0.0.1/%d/" % env.proxy[1]
        refused = sum(m.get(server + "status/%d" % code, 0) for code in (400, 414, 431))
        c.check(refused >= len(cases), "malformed requests are counted by status: %d" % refused)
    finally:
        env.close()


def test_admin_endpoints(c):
    env = Env()
    try:
        env.get("hello")
        s, _, b = http("GET", env.router.admin_url("/admin/ping"))
        c.eq((s, b), (200, b"pong"), "ping")
        env.get("nope")
        m = json.loads(http("GET", env.router.admin_url("/admin/metrics.json"))[2])
        server = "rt/out/server/127.0.0.1/%d/" % env.proxy[1]
        c.eq(m.get(server + "requests"), 2, "server requests (summed over both workers)")
        c.eq((m.get(server + "success"), m.get(server + "failures")), (1, 1), "server success and failures")
        c.eq(m.get("rt/out/service/svc/hello/requests"), 1, "per-service requests")
        c.eq(m.get("rt/out/service/svc/nope/status/502"), 1, "per-service status")
        c.eq(m.get("rt/out/client/#/io.l5d.fs/hello/success"), 1, "per-client success")
        lat = m.get("rt/out/client/#/io.l5d.fs/hello/request_latency_ms.p99", -1)
        c.check(0 < lat < 5000, "per-client p99 latency in ms: %r" % lat)
        c.check(server + "connections" in m, "open connections gauge")
        s, hdrs, prom = http("GET", env.router.admin_url("/admin/metrics/prometheus"))
        c.eq(s, 200, "prometheus exposition")
        text = prom.decode()
        c.check('rt:service:requests{rt="out",service="svc/hello"} 1' in text, "prometheus names: %s" % text[:300])
        p = harness.subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        c.check(p.returncode != 1, "promtool parses the exposition: " + p.stdout + p.stderr)
        # Linkerd's names (rt:client:requests, ..._ms) break three naming
        # conventions promtool lints for; any other complaint is a bug.
        allowed = ('should have "_total" suffix', "should not contain ':'", "abbreviated units")
        other = [l for l in (p.stdout + p.stderr).splitlines() if l.strip() and not any(a in l for a in allowed)]
        c.eq(other, [], "promtool reports nothing beyond Linkerd's naming")
        s, _, b = http("POST", env.router.admin_url("/delegator.json"),
                       body=json.dumps({"namespace": "out", "path": "/svc/hello", "dtab": ""}).encode(),
                       headers={"Content-Type": "application/json"})
        c.eq(s, 200, "delegator.json")
        tree = json.loads(b)
        c.eq(tree.get("type"), "delegate", "delegate tree root")
        c.eq(tree.get("delegate", {}).get("bound", {}).get("id"), "/#/io.l5d.fs/hello", "bound leaf")
        s, _, b = http("POST", env.router.admin_url("/delegator.json"), body=b'{"path": 1}')
        c.eq(s, 400, "a non-string path in delegator.json is refused, not a crash")
        s, _, b = http("GET", env.router.admin_url("/delegator.json?namespace=out&path=/svc/x&dtab=/a%3D%3E"))
        c.eq(s, 400, "a bad dtab in delegator.json")
        c.check(b.startswith(b"Invalid dtab"), "message: %r" % b)
        s, _, b = http("GET", env.router.admin_url("/config.json"))
        doc = json.loads(b)
        c.eq(doc["routers"][0]["label"], "out", "config.json")
        c.eq(doc["routers"][0]["servers"][0]["port"], 0, "config.json shows numbers as numbers")
        c.eq(list(doc.keys()), ["admin", "namers", "routers"], "config.json keeps the file's key order")
        s, _, _ = http("POST", env.router.admin_url("/admin/shutdown"))
        c.eq(s, 200, "shutdown accepted")
        c.eq(env.router.wait_exit(15), 0, "exit 0 after POST /admin/shutdown")
    finally:
        env.close()


def test_prometheus_telemeter_path_and_prefix(c):
    disco = tempfile.mkdtemp(prefix="switchyard-disco-")
    cfg = config(disco) + "telemetry:\n- kind: io.l5d.prometheus\n  path: /metrics\n  prefix: l5d_\n"
    router = Router(BINARY, cfg)
    try:
        http("GET", "http://nope/", proxy=("127.0.0.1", router.port("out")))
        s, _, body = http("GET", router.admin_url("/metrics"))
        c.eq(s, 200, "the telemeter's path")
        c.check('l5d_rt:service:requests{rt="out",service="svc/nope"} 1' in body.decode(), body.decode()[:300])
        s, _, body = http("GET", router.admin_url("/admin/metrics/prometheus"))
        c.check(b"\nrt:service:requests" in body or body.startswith(b"# HELP rt:"), "the default path, unprefixed")
    finally:
        router.stop()


def test_client_timeouts(c):
    env = Env(server_extra="    headerTimeoutMs: 1000\n    idleTimeoutMs: 1500\n")
    try:
        slow = RawConnection(env.proxy[1])
        slow.send(b"GET / HTTP/1.1\r\nHost: hel")  # slowloris: never finishes
        status, _, _ = env.get("hello")
        c.eq(status, 200, "a normal request while a head dribbles in")
        slow.send(b"l")
        s, hdrs, _ = slow.response()
        c.eq(s, 408, "an unfinished request head gets 408 after headerTimeoutMs")
        c.check("headerTimeoutMs" in (header(hdrs, "l5d-err") or ""), "l5d-err names the limit: %r"
                % header(hdrs, "l5d-err"))
        c.check(slow.closed(), "the slow connection is closed")
        idle = RawConnection(env.proxy[1])
        idle.send(b"GET / HTTP/1.1\r\nHost: hello\r\n\r\n")
        c.eq(idle.response()[0], 200, "first request on a keep-alive connection")
        idle.send(b"GET / HTTP/1.1\r\nHost: hello\r\n\r\n")
        c.eq(idle.response()[0], 200, "the connection is reused at once")
        c.check(idle.closed(timeout=5), "an idle keep-alive connection is closed after idleTimeoutMs")
    finally:
        env.close()


def test_size_limits_and_attempt_timeout(c):
    env = Env(extra="""  maxRequestKB: 64
  maxResponseKB: 64
  client: {requestAttemptTimeoutMs: 1000}
""")
    try:
        s, hdrs, _ = http("POST", "http://hello/", body=b"x" * 70000, proxy=env.proxy)
        c.eq(s, 413, "a Content-Length body over maxRequestKB")
        c.check("maxRequestKB" in (header(hdrs, "l5d-err") or ""), "l5d-err names maxRequestKB")
        s, _, body = http("POST", "http://hello/echo", body=iter([b"y" * 50000, b"y" * 50000]), proxy=env.proxy)
        c.check(s == 200 and len(body) == 100000, "a chunked body over the limit streams (streamingEnabled): %d %d"
                % (s, len(body)))
        s, _, body = http("GET", "http://hello/bytes/60000", proxy=env.proxy)
        c.check(s == 200 and len(body) == 60000, "a response under maxResponseKB")
        s, hdrs, _ = http("GET", "http://hello/bytes/70000", proxy=env.proxy)
        c.eq(s, 502, "a Content-Length response over maxResponseKB")
        c.check("maxResponseKB" in (header(hdrs, "l5d-err") or ""), "l5d-err names maxResponseKB: %r"
                % header(hdrs, "l5d-err"))
        s, hdrs, _ = http("GET", "http://hello/slow?ms=5000", proxy=env.proxy)
        c.eq(s, 503, "no response within client.requestAttemptTimeoutMs")
        c.check("requestAttemptTimeoutMs" in (header(hdrs, "l5d-err") or ""), "l5d-err names the attempt timeout")
        c.eq(env.get("hello")[0], 200, "the router serves on")
    finally:
        env.close()
    env = Env(extra="  maxRequestKB: 64\n  maxResponseKB: 64\n  streamingEnabled: false\n")
    try:
        r = RawConnection(env.proxy[1])
        r.send(b"POST /echo HTTP/1.1\r\nHost: hello\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(20):
                r.send(b"2000\r\n" + b"z" * 0x2000 + b"\r\n")
        except OSError:
            pass  # the router may stop reading once it has answered
        s, hdrs, _ = r.head()
        c.check(s == 413 or s == 200, "an over-limit chunked upload ends: %d" % s)
        if s == 200:
            # The echo's head went out before the limit was reached: the
            # body is cut off and the connection closed, never completed.
            try:
                rest = r.read_to_eof()
            except ConnectionError:
                rest = b""
            c.check(not rest.endswith(b"0\r\n\r\n"), "the cut echo does not end its chunked body")
        else:
            c.check("maxRequestKB" in (header(hdrs, "l5d-err") or ""), "l5d-err names maxRequestKB")
        r = RawConnection(env.proxy[1])
        r.send(b"GET /bytes/100000?chunked=1 HTTP/1.1\r\nHost: hello\r\n\r\n")
        try:
            _, _, body = r.response()
            c.fail("a chunked response over maxResponseKB came whole (%d bytes)" % len(body))
        except (EOFError, ConnectionError):
            c.check(True, "a chunked response over maxResponseKB is cut off without streaming")
        c.eq(env.get("hello")[0], 200, "the router serves on")
    finally:
        env.close()


def test_endpoint_answers_before_upload_ends(c):
    env = Env()
    try:
        r = RawConnection(env.proxy[1])
        r.send(b"POST /refuse HTTP/1.1\r\nHost: hello\r\nContent-Length: 4000000\r\n\r\n")
        sent = 0
        try:
            for _ in range(8):
                r.send(b"u" * 65536)
                sent += 65536
        except OSError:
            pass
        s, hdrs, body = r.response()
        c.eq(s, 413, "the endpoint's early answer reaches the client (after %d body bytes)" % sent)
        c.check(b"refused before reading" in body, "with the endpoint's body")
        c.check(r.closed(), "the connection closes after the early answer")
        c.eq(env.get("hello")[0], 200, "the router serves on")
    finally:
        env.close()


def test_call_depth_timeout_and_balancers(c):
    disco = tempfile.mkdtemp(prefix="switchyard-disco-")
    a, b = Backend("a"), Backend("b")
    write_disco(disco, "hello", a, b)
    cfg = config(disco) + """  maxCallDepth: 3
  service: {totalTimeoutMs: 1000}
  client:
    loadBalancer: {kind: roundRobin}
"""
    router = Router(BINARY, cfg, args=["--workers", "1"])
    proxy = ("127.0.0.1", router.port("out"))
    try:
        s, hdrs, _ = http("GET", "http://hello/", headers=[("Via", "1.1 a, 1.1 b"), ("Via", "1.1 c, 1.1 d")], proxy=proxy)
        c.eq(s, 400, "four Via hops over maxCallDepth 3")
        c.check("maxCallDepth" in (header(hdrs, "l5d-err") or ""), "l5d-err explains: %r" % header(hdrs, "l5d-err"))
        s, _, _ = http("GET", "http://hello/", headers={"Via": "1.1 a, 1.1 b"}, proxy=proxy)
        c.eq(s, 200, "two hops pass")
        s, hdrs, _ = http("GET", "http://hello/slow?ms=4000", proxy=proxy)
        c.eq(s, 503, "no response within service.totalTimeoutMs")
        c.check("totalTimeoutMs" in (header(hdrs, "l5d-err") or ""), "l5d-err names the timeout")
        seen = [body_json(http("GET", "http://hello/", proxy=proxy)[2])["backend"] for _ in range(6)]
        c.check(all(seen[i] != seen[i + 1] for i in range(5)), "roundRobin alternates: %r" % seen)
    finally:
        router.stop()
        a.stop()
        b.stop()


def test_sigterm_drains_in_flight_requests(c):
    env = Env()
    try:
        out = {}

        def slow():
            out["r"] = env.get("hello", "/slow?ms=1500", timeout=10)

        t = threading.Thread(target=slow)
        t.start()
        # The request must be in flight at the backend before the signal.
        wait_until(lambda: env.a.stats()["requests"] >= 1, 5)
        env.router.proc.send_signal(signal.SIGTERM)
        t.join()
        c.eq(out["r"][0], 200, "the request in flight completes")
        c.eq(env.router.wait_exit(15), 0, "exit 0 after the drain")
    finally:
        env.close()


def test_a_second_router_cannot_take_a_port_in_use(c):
    disco = tempfile.mkdtemp(prefix="switchyard-disco-")
    first = Router(BINARY, config(disco))
    try:
        port = first.port("out")
        second = Router(BINARY, config(disco).replace("  - port: 0", "  - port: %d" % port), wait_ready=False)
        c.eq(second.wait_exit(10), 1, "the second router exits 1")
        c.check("Address already in use" in second.logs(), "and says why: " + second.logs()[-300:])
    finally:
        first.stop()


def test_config_check(c):
    with tempfile.TemporaryDirectory() as d:
        good = os.path.join(d, "good.yaml")
        with open(good, "w") as f:
            f.write(config(d))
        p = harness.subprocess.run([BINARY, "router", "--check", "-c", good], capture_output=True, text=True)
        c.eq(p.returncode, 0, "--check on a valid config: " + p.stderr)
        bad = os.path.join(d, "bad.yaml")
        with open(bad, "w") as f:
            f.write("routers:\n- protocol: http\n  identifier: {kind: io.l5d.foo}\n  servers: [{port: 4140}]\n")
        p = harness.subprocess.run([BINARY, "router", "-c", bad], capture_output=True, text=True)
        c.eq(p.returncode, 2, "an invalid config exits 2 before binding")
        c.check('routers[0].identifier.kind: unknown identifier kind "io.l5d.foo"' in p.stderr, p.stderr)
    # The examples a user starts from must stay valid.
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    example = os.path.join(root, "examples", "hello-world", "linkerd.yaml")
    p = harness.subprocess.run([BINARY, "router", "--check", "-c", example], capture_output=True, text=True)
    c.eq(p.returncode, 0, "examples/hello-world/linkerd.yaml passes --check: " + p.stderr)


TESTS = [
    test_routes_by_host_with_linkerd_headers,
    test_unknown_name_and_missing_host_fail_clearly,
    test_routes_by_path_and_header,
    test_dtab_precedence_fallback_and_request_override,
    test_clear_context_strips_l5d_headers,
    test_streams_large_bodies_both_ways,
    test_keepalive_pipelining_and_100_continue,
    test_websocket_upgrade_passthrough,
    test_dead_backend_then_recovery,
    test_endpoint_file_edit_under_traffic,
    test_disco_directory_created_after_start,
    test_malformed_requests_get_4xx_and_others_are_unaffected,
    test_client_timeouts,
    test_size_limits_and_attempt_timeout,
    test_endpoint_answers_before_upload_ends,
    test_admin_endpoints,
    test_prometheus_telemeter_path_and_prefix,
    test_call_depth_timeout_and_balancers,
    test_sigterm_drains_in_flight_requests,
    test_a_second_router_cannot_take_a_port_in_use,
    test_config_check,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
