#!/usr/bin/env python3
"""Self-test of test/support/backend.py and test/support/harness.py.

Usage: backend_test.py [TEST_NAME ...]

Starts backends through harness.Backend and checks every route with
harness.http, harness.Connection, harness.RawConnection and the real curl;
also drives harness.Router with a fake router binary written at run time.
Prints one line per failed check and a summary; exits 1 if anything failed.
Python 3 standard library only; needs curl on PATH.
"""

import base64
import hashlib
import io
import json
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (Backend, Checks, Connection, HarnessError, RawConnection,  # noqa: E402
                     Router, curl, header, http, peak_rss_kb)

MB = 1024 * 1024
BIG = 20 * MB
RSS_LIMIT_KB = 60 * 1024
PATTERN = b"0123456789abcdef"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()

TMP = tempfile.mkdtemp(prefix="switchyard-backend-test-")
harness._TEMP_DIRS.add(TMP)


def pattern_bytes(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def random_file(name, size):
    """A file of `size` random bytes; returns (path, sha256, bytes)."""
    data = os.urandom(size)
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path, sha(data), data


def pieces(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def doc_of(c, status, headers, body, what):
    """The JSON document of a default-route answer (None, with a failure, if
    it is not one)."""
    if not c.eq(status, 200, what + ": status"):
        return None
    c.eq(header(headers, "content-type"), "application/json", what + ": Content-Type")
    try:
        return json.loads(body)
    except ValueError:
        c.fail("%s: body is not JSON: %r" % (what, body[:200]))
        return None


# --------------------------------------------------------------------------
# Default route, bodies, targets
# --------------------------------------------------------------------------

def test_default_route(c):
    with Backend("alpha") as b:
        status, headers, body = http("GET", b.url("/hello/world?x=1&y=2"), headers=[
            ("X-Mixed-Case", "One"), ("x-dup", "1"), ("X-Dup", "2")])
        c.eq(header(headers, "x-backend"), "alpha", "X-Backend")
        doc = doc_of(c, status, headers, body, "GET /hello/world")
        if doc is None:
            return
        c.eq(doc["backend"], "alpha", "backend")
        c.eq(doc["method"], "GET", "method")
        c.eq(doc["target"], "/hello/world?x=1&y=2", "target")
        c.eq(doc["path"], "/hello/world", "path")
        c.eq(doc["version"], "HTTP/1.1", "version")
        c.eq(doc["headers"], [["Host", "127.0.0.1:%d" % b.port], ["X-Mixed-Case", "One"],
                              ["x-dup", "1"], ["X-Dup", "2"]], "headers as received, in order")
        c.eq(doc["body_bytes"], 0, "body_bytes")
        c.eq(doc["body_sha256"], EMPTY_SHA, "body_sha256")
        c.eq(int(header(headers, "content-length", "-1")), len(body), "Content-Length")

        status, headers, body = http("HEAD", b.url("/head"))
        c.eq(status, 200, "HEAD status")
        c.eq(body, b"", "HEAD has no body")
        c.check(int(header(headers, "content-length", "0")) > 0, "HEAD keeps Content-Length")


def test_post_bodies(c):
    with Backend("post") as b:
        data = b"hello, body\x00\xff"
        doc = doc_of(c, *http("POST", b.url("/p"), body=data), "POST bytes")
        if doc:
            c.eq(doc["method"], "POST", "method")
            c.eq(doc["body_bytes"], len(data), "body_bytes")
            c.eq(doc["body_sha256"], sha(data), "body_sha256")
            c.eq(header(doc["headers"], "content-length"), str(len(data)), "Content-Length seen")

        r = curl(["-d", "a=1&b=2", b.url("/form")])
        c.eq(r.returncode, 0, "curl -d exit code (%s)" % r.stderr.strip())
        if r.returncode == 0:
            doc = json.loads(r.stdout)
            c.eq(doc["body_bytes"], 7, "curl -d body_bytes")
            c.eq(doc["body_sha256"], sha(b"a=1&b=2"), "curl -d sha256")

        path, digest, _ = random_file("ten.bin", 10 * MB)
        r = curl(["--data-binary", "@" + path, b.url("/upload")])
        c.eq(r.returncode, 0, "curl 10 MB upload exit code (%s)" % r.stderr.strip())
        if r.returncode == 0:
            doc = json.loads(r.stdout)
            c.eq(doc["body_bytes"], 10 * MB, "10 MB body_bytes")
            c.eq(doc["body_sha256"], digest, "10 MB sha256")


def test_chunked_request_bodies(c):
    with Backend("chunky") as b:
        data = os.urandom(300_000)
        doc = doc_of(c, *http("PUT", b.url("/c"), body=pieces(data, 7_000)), "chunked PUT")
        if doc:
            c.eq(header(doc["headers"], "transfer-encoding"), "chunked", "sent chunked")
            c.eq(header(doc["headers"], "content-length"), None, "no Content-Length")
            c.eq(doc["body_bytes"], len(data), "chunked body_bytes")
            c.eq(doc["body_sha256"], sha(data), "chunked sha256")

        path, digest, _ = random_file("chunked.bin", 3 * MB)
        r = curl(["-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path, b.url("/cc")])
        c.eq(r.returncode, 0, "curl chunked upload exit code (%s)" % r.stderr.strip())
        if r.returncode == 0:
            doc = json.loads(r.stdout)
            c.eq(header(doc["headers"], "transfer-encoding"), "chunked", "curl sent chunked")
            c.eq(doc["body_bytes"], 3 * MB, "curl chunked body_bytes")
            c.eq(doc["body_sha256"], digest, "curl chunked sha256")

        # Chunk extensions, upper-case hex, trailers.
        with RawConnection(b.port) as r:
            r.send(b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\n"
                   b"X-Trailer: done\r\nX-Other: 2\r\n\r\n")
            doc = doc_of(c, *r.response(), "raw chunked with trailers")
            if doc:
                c.eq(doc["body_bytes"], 15, "raw chunked body_bytes")
                c.eq(doc["body_sha256"], sha(b"hello0123456789"), "raw chunked sha256")
                c.eq(doc["trailers"], [["X-Trailer", "done"], ["X-Other", "2"]], "trailers")


def test_absolute_form_target(c):
    with Backend("proxied") as b:
        status, headers, body = http("GET", "http://example.test:8080/abs/p?q=1",
                                     proxy=("127.0.0.1", b.port))
        doc = doc_of(c, status, headers, body, "absolute-form GET")
        if doc:
            c.eq(doc["target"], "http://example.test:8080/abs/p?q=1", "absolute target")
            c.eq(doc["path"], "/abs/p", "absolute path")
            c.eq(doc["headers"][0], ["Host", "example.test:8080"], "Host from the URL")
        status, _, body = http("GET", "http://svc/status/202", proxy="127.0.0.1:%d" % b.port)
        c.eq(status, 202, "absolute-form routes by path")
        status, _, _ = http("GET", "http://svc/bytes/5", proxy=b.url("/"))
        c.eq(status, 200, "proxy given as a URL")


# --------------------------------------------------------------------------
# /status, /bytes, /echo, /slow, /close, /ws, /stats
# --------------------------------------------------------------------------

def test_status_route(c):
    with Backend("st") as b:
        status, headers, body = http("GET", b.url("/status/503"))
        c.eq(status, 503, "/status/503")
        c.eq(body, b"503 Service Unavailable\n", "/status/503 body")
        c.eq(header(headers, "x-backend"), "st", "/status X-Backend")
        status, headers, body = http("POST", b.url("/status/201"), body=b"xyz")
        c.eq(status, 201, "/status/201 with a body")
        status, headers, body = http("GET", b.url("/status/204"))
        c.eq((status, body, header(headers, "content-length")), (204, b"", None), "/status/204")
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", b.url("/status/418")])
        c.eq(r.stdout, "418", "curl /status/418")
        for bad in ("/status/abc", "/status/99", "/status/600", "/status/"):
            c.eq(http("GET", b.url(bad))[0], 400, bad)


def test_bytes_route(c):
    with Backend("bytes") as b:
        status, headers, body = http("GET", b.url("/bytes/20"))
        c.eq((status, body), (200, b"0123456789abcdef0123"), "/bytes/20")
        status, headers, body = http("GET", b.url("/bytes/0"))
        c.eq((status, body, header(headers, "content-length")), (200, b"", "0"), "/bytes/0")
        c.eq(http("GET", b.url("/bytes/x"))[0], 400, "/bytes/x")

        want = sha(pattern_bytes(BIG))
        status, headers, body = http("GET", b.url("/bytes/%d" % BIG), timeout=30)
        c.eq(status, 200, "/bytes/20MB status")
        c.eq(header(headers, "content-length"), str(BIG), "/bytes/20MB Content-Length")
        c.eq(len(body), BIG, "/bytes/20MB length")
        c.eq(sha(body), want, "/bytes/20MB sha256")

        status, headers, body = http("GET", b.url("/bytes/%d?chunked=1" % BIG), timeout=30)
        c.eq(header(headers, "transfer-encoding"), "chunked", "chunked=1 Transfer-Encoding")
        c.eq(header(headers, "content-length"), None, "chunked=1 has no Content-Length")
        c.eq((len(body), sha(body)), (BIG, want), "/bytes/20MB?chunked=1 length and sha256")
        del body

        # 100 MB to /dev/null: buffering it would show in the peak RSS.
        r = curl(["-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                  b.url("/bytes/%d" % (100 * MB))])
        c.eq(r.stdout, "200 %d" % (100 * MB), "curl /bytes/100MB")
        status, headers, body = http("HEAD", b.url("/bytes/100"))
        c.eq((status, body, header(headers, "content-length")), (200, b"", "100"), "HEAD /bytes")
        peak = peak_rss_kb(b.pid)
        c.check(peak is not None and peak < RSS_LIMIT_KB,
                "backend peak RSS %s kB after streaming, want < %d" % (peak, RSS_LIMIT_KB))


def test_echo_route(c):
    with Backend("echo") as b:
        path, digest, data = random_file("echo.bin", BIG)
        status, headers, body = http("POST", b.url("/echo"), body=data,
                                     headers=[("Content-Type", "application/x-test")], timeout=30)
        c.eq(status, 200, "/echo status")
        c.eq(header(headers, "transfer-encoding"), "chunked", "/echo is chunked")
        c.eq(header(headers, "content-type"), "application/x-test", "/echo copies Content-Type")
        c.eq((len(body), sha(body)), (BIG, digest), "/echo 20 MB (Content-Length) round trip")

        status, headers, body = http("POST", b.url("/echo"), body=pieces(data, 100_000),
                                     timeout=30)
        c.eq((status, len(body), sha(body)), (200, BIG, digest), "/echo 20 MB chunked upload")
        del body

        r = curl(["--data-binary", "@" + path, "-o", os.path.join(TMP, "echoed.bin"),
                  b.url("/echo")])
        c.eq(r.returncode, 0, "curl /echo exit code (%s)" % r.stderr.strip())
        with open(os.path.join(TMP, "echoed.bin"), "rb") as f:
            c.eq(sha(f.read()), digest, "curl /echo 20 MB sha256")

        # Streaming, not buffering: the first piece comes back before the
        # request body is finished.
        with RawConnection(b.port) as r:
            r.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"6\r\nfirst!\r\n")
            status, headers, _ = r.head()
            c.eq(status, 200, "streaming echo status")
            c.eq(r.read_until(b"first!\r\n"), b"6\r\nfirst!\r\n", "first piece echoed early")
            r.send(b"4\r\nnext\r\n0\r\n\r\n")
            c.eq(r.read_until(b"0\r\n\r\n"), b"4\r\nnext\r\n0\r\n\r\n", "rest echoed")

        peak = peak_rss_kb(b.pid)
        c.check(peak is not None and peak < RSS_LIMIT_KB,
                "backend peak RSS %s kB after 3 x 20 MB echo, want < %d" % (peak, RSS_LIMIT_KB))


def test_slow_route(c):
    with Backend("slow") as b:
        t0 = time.monotonic()
        status, headers, body = http("POST", b.url("/slow?ms=300"), body=b"abc")
        elapsed = time.monotonic() - t0
        doc = doc_of(c, status, headers, body, "/slow")
        c.check(0.3 <= elapsed < 3, "/slow?ms=300 took %.3f s" % elapsed)
        if doc:
            c.eq((doc["path"], doc["body_bytes"], doc["body_sha256"]),
                 ("/slow", 3, sha(b"abc")), "/slow answers as the default route")
        c.eq(http("GET", b.url("/slow?ms=soon"))[0], 400, "/slow?ms=soon")


def test_close_route(c):
    with Backend("closer") as b:
        with RawConnection(b.port) as r:
            r.send(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = r.response()
            c.eq(status, 200, "/close status")
            c.eq(header(headers, "connection"), "close", "/close says Connection: close")
            c.eq(json.loads(body)["path"], "/close", "/close body")
            c.check(r.closed(), "/close closes the connection")
        with RawConnection(b.port) as r:
            r.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            c.eq(r.response()[0], 200, "plain GET")
            c.check(not r.closed(timeout=0.3), "plain GET keeps the connection open")


def test_keep_alive(c):
    with Backend("ka") as b:
        r = curl(["-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code}\n",
                  b.url("/one"), b.url("/two")])
        c.eq(r.stdout.split(), ["200", "200"], "curl two URLs")
        c.eq(b.stats(), {"requests": 2, "connections": 2},
             "two URLs in one curl: 2 requests on 1 connection (+1 for /stats)")

        with Connection("127.0.0.1", b.port) as conn:
            for i in range(3):
                c.eq(conn.request("GET", "/k%d" % i)[0], 200, "kept-alive request %d" % i)
            c.eq(conn.request("POST", "/echo", body=b"abc")[2], b"abc", "echo on the connection")
            c.eq(json.loads(conn.request("GET", "/stats")[2]),
                 {"requests": 6, "connections": 3}, "4 requests on one more connection")

        # Connection: close on HTTP/1.1; HTTP/1.0 with and without keep-alive.
        with RawConnection(b.port) as r:
            r.send(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, headers, _ = r.response()
            c.eq((status, header(headers, "connection")), (200, "close"), "1.1 Connection: close")
            c.check(r.closed(), "1.1 Connection: close closes")
        with RawConnection(b.port) as r:
            r.send(b"GET /a HTTP/1.0\r\n\r\n")
            status, headers, body = r.response()
            c.eq((status, header(headers, "connection")), (200, "close"), "HTTP/1.0 answer")
            c.eq(json.loads(body)["version"], "HTTP/1.0", "HTTP/1.0 version")
            c.check(r.closed(), "HTTP/1.0 closes")
        with RawConnection(b.port) as r:
            r.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = r.response()
            c.eq((status, header(headers, "connection")), (200, "keep-alive"), "1.0 keep-alive")
            r.send(b"GET /echo HTTP/1.0\r\nContent-Length: 3\r\n\r\nxyz")
            status, headers, body = r.response()
            c.eq((status, body), (200, b"xyz"), "1.0 echo, delimited by close")
            c.check(r.closed(), "1.0 echo closes")

        # Pipelining: three requests in one write, answered in order.
        with RawConnection(b.port) as r:
            r.send(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                   b"GET /status/404 HTTP/1.1\r\nHost: x\r\n\r\n")
            c.eq(json.loads(r.response()[2])["path"], "/p1", "pipelined 1")
            c.eq(json.loads(r.response()[2])["body_bytes"], 2, "pipelined 2")
            c.eq(r.response()[0], 404, "pipelined 3")


def test_expect_continue(c):
    with Backend("expect") as b:
        with RawConnection(b.port) as r:
            r.send(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   b"Content-Length: 5\r\n\r\n")
            c.eq(r.read_until(b"\r\n\r\n"), b"HTTP/1.1 100 Continue\r\n\r\n",
                 "100 Continue before the body")
            c.eq(r.read_available(0.2), b"", "nothing more before the body is sent")
            r.send(b"hello")
            doc = doc_of(c, *r.response(), "after 100-continue")
            if doc:
                c.eq(doc["body_sha256"], sha(b"hello"), "body after 100-continue")
        with RawConnection(b.port) as r:
            r.send(b"GET /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
            c.eq(r.response()[0], 200, "no 100 Continue without a body")
        # curl waits up to --expect100-timeout for the 100 before sending.
        t0 = time.monotonic()
        r = curl(["--expect100-timeout", "5", "-H", "Expect: 100-continue", "-d", "hello",
                  b.url("/curl")])
        elapsed = time.monotonic() - t0
        c.check(elapsed < 2.5, "curl with Expect took %.2f s (no 100 Continue?)" % elapsed)
        if c.eq(r.returncode, 0, "curl Expect exit code (%s)" % r.stderr.strip()):
            c.eq(json.loads(r.stdout)["body_bytes"], 5, "curl Expect body_bytes")


RFC6455_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC6455_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="   # RFC 6455 section 1.3


def test_websocket(c):
    with Backend("ws") as b:
        with RawConnection(b.port) as r:
            r.send(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n" % RFC6455_KEY).encode())
            status, headers, _ = r.head()
            c.eq(status, 101, "/ws status")
            c.eq(header(headers, "sec-websocket-accept"), RFC6455_ACCEPT, "Sec-WebSocket-Accept")
            c.eq(header(headers, "upgrade", "").lower(), "websocket", "Upgrade header")
            payload = b"\x81\x05hello" + os.urandom(200_000)
            r.send(payload)
            c.eq(r.read_exact(len(payload)) == payload, True, "raw bytes echoed unchanged")
            r.send(b"more")
            c.eq(r.read_exact(4), b"more", "second write echoed")
            r.shutdown_write()
            c.check(r.closed(), "backend closes after the client's EOF")

        key = base64.b64encode(os.urandom(16)).decode()
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        with RawConnection(b.port) as r:
            r.send(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n"
                    "Sec-WebSocket-Key: %s\r\n\r\n" % key).encode())
            status, headers, _ = r.head()
            c.eq((status, header(headers, "sec-websocket-accept")), (101, want),
                 "accept for a random key")

        status, headers, _ = http("GET", b.url("/ws"))
        c.eq((status, header(headers, "upgrade")), (426, "websocket"), "/ws without Upgrade")


def test_stats(c):
    with Backend("stats") as b:
        c.eq(b.stats(), {"requests": 0, "connections": 1}, "fresh /stats")
        for path in ("/a", "/status/500", "/bytes/10"):
            http("GET", b.url(path))
        c.eq(b.stats(), {"requests": 3, "connections": 5}, "/stats after 3 requests")


# --------------------------------------------------------------------------
# Malformed requests
# --------------------------------------------------------------------------

MALFORMED = [
    (b"GARBAGE\r\n\r\n", 400, "request line without target/version"),
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400, "request line with 4 parts"),
    (b"GET  / HTTP/1.1\r\n\r\n", 400, "double space in request line"),
    (b"GET / HTTX/1.1\r\n\r\n", 400, "bad version"),
    (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0"),
    (b"GET nohost HTTP/1.1\r\n\r\n", 400, "bad target"),
    (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "space in header name"),
    (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "header without colon"),
    (b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400, "obsolete line folding"),
    (b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400, "control character in value"),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400, "Content-Length and Transfer-Encoding"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unknown transfer coding"),
    (b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "non-numeric Content-Length"),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "negative Content-Length"),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
     "conflicting Content-Lengths"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad chunk size"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 400,
     "chunk data without CRLF"),
    (b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "70 KB header"),
    (b"GET / HTTP/1.1\r\n" + b"X-Many: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n" * 2000
     + b"\r\n", 431, "2000 headers, 90 KB"),
]


def test_malformed_requests(c):
    with Backend("strict") as b:
        for raw, want, what in MALFORMED:
            with RawConnection(b.port, timeout=5) as r:
                try:
                    r.send(raw)
                except OSError:
                    pass            # the server may have answered and closed already
                try:
                    status, headers, _ = r.response()
                except (EOFError, OSError, ValueError) as e:
                    c.fail("%s: no response (%s)" % (what, e))
                    continue
                c.eq(status, want, what)
                c.eq(header(headers, "connection"), "close", what + ": Connection: close")
                c.check(r.closed(), what + ": connection closed")
        # Just under the cap is fine; the server is still up.
        ok = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 60_000 + b"\r\n\r\n"
        with RawConnection(b.port) as r:
            r.send(ok)
            c.eq(r.response()[0], 200, "60 KB header accepted")
        with RawConnection(b.port) as r:
            r.send(b"\r\nGET / HTTP/1.1\r\n\r\n")
            c.eq(r.response()[0], 200, "leading empty line ignored")
        c.eq(http("GET", b.url("/"))[0], 200, "backend still serving")
        c.eq(b.stats()["requests"], 3 + 2,
             "counted: 3 good requests and the 2 whose head parsed before a bad chunk")


# --------------------------------------------------------------------------
# Lifecycle and the harness itself
# --------------------------------------------------------------------------

def test_lifecycle(c):
    b = Backend("life")
    c.check(b.port and b.port > 0, "port %r" % b.port)
    with open(b.port_file) as f:
        c.eq(f.read(), "%d\n" % b.port, "port file: one line")
    c.check("listening on 127.0.0.1:%d" % b.port in b.logs(), "stdout: %r" % b.logs())
    idle = RawConnection(b.port)          # an idle keep-alive connection
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    idle.response()
    t0 = time.monotonic()
    c.eq(b.stop(), 0, "SIGTERM: clean exit")
    c.check(time.monotonic() - t0 < 2, "stop took %.2f s" % (time.monotonic() - t0))
    c.check(idle.closed(), "idle connection closed at shutdown")
    idle.close()
    try:
        http("GET", b.url("/"), timeout=2)
        c.fail("connected to a stopped backend")
    except ConnectionRefusedError:
        pass

    b2 = Backend("victim")
    c.eq(b2.kill(), -9, "kill(): SIGKILL")
    c.check(not b2.alive(), "killed backend is not alive")
    with socket.socket() as s:
        c.eq(s.connect_ex(("127.0.0.1", b2.port)), 111, "killed backend refuses connections")

    with Backend("a") as x, Backend("b") as y:
        c.check(x.port != y.port, "two backends, two ports")
        c.eq(header(http("GET", y.url("/"))[1], "x-backend"), "b", "second backend's name")


FAKE_ROUTER = r'''#!%(python)s
import json, os, signal, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
assert sys.argv[1:3] == ["router", "-c"], sys.argv
cfg = open(sys.argv[3]).read()
if "exit: 3" in cfg:
    print("bad config: exit 3", file=sys.stderr)
    sys.exit(3)
if "hang" in cfg:
    time.sleep(60)
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"pong" if self.path == "/admin/ping" else cfg.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
admin = ThreadingHTTPServer(("127.0.0.1", 0), H)
router = ThreadingHTTPServer(("127.0.0.1", 0), H)
for s in (admin, router):
    threading.Thread(target=s.serve_forever, daemon=True).start()
pf = os.environ["SWITCHYARD_PORTS_FILE"]
with open(pf + ".tmp", "w") as f:
    json.dump({"admin": admin.server_address[1],
               "routers": {"http": [router.server_address[1]]}}, f)
os.replace(pf + ".tmp", pf)
print("fake router up", flush=True)
print("fake router stderr", file=sys.stderr, flush=True)
signal.sigwait({signal.SIGTERM})
sys.exit(7)
'''


def test_router_harness_with_fake_binary(c):
    binary = os.path.join(TMP, "fake-switchyard")
    with open(binary, "w") as f:
        f.write(FAKE_ROUTER % {"python": sys.executable})
    os.chmod(binary, 0o755)

    config = "routers:\n- protocol: http\n  servers:\n  - port: 0\n"
    with Router(binary, config) as r:
        c.check(r.admin_port > 0, "admin port %r" % r.admin_port)
        c.check(r.port("http") > 0 and r.port("http") != r.admin_port, "router port")
        status, _, body = http("GET", r.url("http", "/cfg"))
        c.eq((status, body.decode()), (200, config), "router port serves; config file written")
        c.eq(http("GET", r.admin_url("/admin/ping"))[2], b"pong", "admin ping")
        c.check(r.pid > 0 and r.alive(), "pid and alive")
        try:
            r.port("http", 1)
            c.fail("port('http', 1) should raise")
        except HarnessError:
            pass
        c.eq(r.stop(), 7, "stop() returns the exit code")
        logs = r.logs()
        c.check("fake router up" in logs and "fake router stderr" in logs,
                "logs() has stdout and stderr: %r" % logs)

    try:
        Router(binary, "exit: 3\n")
        c.fail("a router that exits should raise HarnessError")
    except HarnessError as e:
        c.check("exited with 3" in str(e) and "bad config: exit 3" in str(e),
                "HarnessError carries the exit code and output: %r" % str(e)[:300])

    t0 = time.monotonic()
    try:
        Router(binary, "hang\n", ready_timeout=1)
        c.fail("a router that never gets ready should raise HarnessError")
    except HarnessError as e:
        c.check("not ready within" in str(e), "timeout message: %r" % str(e)[:200])
    c.check(time.monotonic() - t0 < 3, "ready_timeout honoured")

    r = Router(binary, "exit: 3\n", wait_ready=False)
    c.eq(r.wait_exit(5), 3, "wait_ready=False then wait_exit()")


def test_checks_can_fail(c):
    out = io.StringIO()
    inner = Checks(out=out)

    def passing(k):
        k.eq(1, 1, "one")

    def failing(k):
        k.eq({"a": 1}, {"a": 2}, "dicts differ")

    def raising():
        raise RuntimeError("boom")

    c.eq(inner.run([passing, failing, raising]), 1, "a failing run returns 1")
    text = out.getvalue()
    c.check("FAIL failing: dicts differ: got {'a': 1}, want {'a': 2}" in text, text)
    c.check("FAIL raising: raised RuntimeError: 'boom'" in text, text)
    c.check("Traceback" in text, "traceback printed")
    c.check("3 tests, 2 checks, 2 failures (2 tests failed)" in text, text)
    c.eq(Checks(out=io.StringIO()).run([passing]), 0, "a passing run returns 0")

    c.check(harness.wait_until(lambda: True, 0.1), "wait_until true")
    t0 = time.monotonic()
    c.check(not harness.wait_until(lambda: 1 / 0, 0.1), "wait_until: exception = not yet")
    c.check(0.1 <= time.monotonic() - t0 < 1, "wait_until honours its timeout")
    c.check(harness.rss_kb(os.getpid()) > 0, "rss_kb of self")
    c.eq(harness.rss_kb(2 ** 22 + 12345), None, "rss_kb of no process")


TESTS = [
    test_default_route,
    test_post_bodies,
    test_chunked_request_bodies,
    test_absolute_form_target,
    test_status_route,
    test_bytes_route,
    test_echo_route,
    test_slow_route,
    test_close_route,
    test_keep_alive,
    test_expect_continue,
    test_websocket,
    test_stats,
    test_malformed_requests,
    test_lifecycle,
    test_router_harness_with_fake_binary,
    test_checks_can_fail,
]


def main(argv):
    tests = [t for t in TESTS if not argv or t.__name__ in argv]
    if argv and len(tests) != len(argv):
        print("unknown test names: %s" % sorted(set(argv) - {t.__name__ for t in TESTS}))
        return 2
    return Checks().run(tests)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
