#!/usr/bin/env python3
"""Self-test of test/support/zipkin_collector.py.

Usage: zipkin_collector_test.py [TEST_NAME ...]

Starts the collector as a process (through zipkin_collector.Collector, and
directly for the command line and signals) and checks every route and
behaviour with real clients: harness.http / Connection / RawConnection
(http.client and plain sockets) and the curl binary. check_tree is checked on
hand-made traces. Prints one line per failed check and a summary; exits 1 if
anything failed. Python 3 standard library only; needs curl on PATH.
"""

import contextlib
import gzip
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Checks, Connection, RawConnection, curl, header, http, wait_until  # noqa: E402
import zipkin_collector  # noqa: E402
from zipkin_collector import Collector, CollectorError, check_tree, validate_batch  # noqa: E402

COLLECTOR_PY = os.path.abspath(zipkin_collector.__file__)
TMP = tempfile.mkdtemp(prefix="switchyard-zipkin-test-")
harness._TEMP_DIRS.add(TMP)

JSON = [("Content-Type", "application/json")]
DROP = object()          # span(...) leaves a field out when given this
TRACE = "5af7183fb1d4cf5f"
TRACE128 = "4e441824ec2b6a44ffdc9bb9a6453df3"


def now_us():
    return int(time.time() * 1_000_000)


def span(span_id="0000000000000a01", trace_id=TRACE, **fields):
    """A valid Zipkin v2 span, with `fields` replacing (or, with DROP,
    removing) the defaults."""
    s = {
        "traceId": trace_id,
        "id": span_id,
        "name": "get /hello",
        "kind": "SERVER",
        "timestamp": now_us() - 5000,
        "duration": 1200,
        "localEndpoint": {"serviceName": "switchyard", "ipv4": "127.0.0.1", "port": 4140},
        "remoteEndpoint": {"ipv4": "127.0.0.1", "port": 51234},
        "tags": {"http.method": "GET", "http.status_code": "200"},
    }
    for k, v in fields.items():
        if v is DROP:
            s.pop(k, None)
        else:
            s[k] = v
    return s


def post(z, batch, headers=JSON, **kw):
    """POST a batch (a list, or bytes) with http.client: (status, headers, text)."""
    body = batch if isinstance(batch, (bytes, bytearray)) else json.dumps(batch).encode()
    status, hdrs, data = http("POST", z.url("/api/v2/spans"), headers=list(headers), body=body,
                              **kw)
    return status, hdrs, data.decode("utf-8", "replace")


def get_json(c, z, path, what=None):
    status, headers, body = http("GET", z.url(path))
    if not c.eq(status, 200, "%s: status (%r)" % (what or "GET " + path, body[:200])):
        return None
    c.eq(header(headers, "content-type"), "application/json", (what or path) + ": Content-Type")
    return json.loads(body)


@contextlib.contextmanager
def collector(c):
    """A Collector; when the test is done, checks that it stops cleanly
    (exit 0) and wrote nothing to stderr (no tracebacks)."""
    z = Collector()
    try:
        yield z
    finally:
        rc = z.stop()
        c.eq(rc, 0, "collector exit code after SIGTERM")
        c.eq(z.stderr(), "", "collector stderr (tracebacks?)")


# --------------------------------------------------------------------------
# Accepting spans
# --------------------------------------------------------------------------

def test_valid_batch(c):
    with collector(c) as z:
        root = span("0000000000000a01", kind="SERVER", debug=False)
        child = span("0000000000000a02", parentId="0000000000000a01", kind="CLIENT",
                     timestamp=root["timestamp"] + 100, duration=800, name="get /backend",
                     remoteEndpoint={"serviceName": "hello", "ipv6": "2001:db8::c001",
                                     "port": 8080},
                     annotations=[{"timestamp": root["timestamp"] + 150, "value": "ws"},
                                  {"timestamp": root["timestamp"] + 850, "value": "wr"}])
        status, headers, body = post(z, [root, child])
        c.eq(status, 202, "valid batch: 202 Accepted")
        c.eq(body, "", "202 has an empty body")
        c.eq(header(headers, "content-length"), "0", "202 Content-Length: 0")

        c.eq(get_json(c, z, "/_fixture/spans"), [root, child], "stored as sent, in order")
        c.eq(get_json(c, z, "/_fixture/stats"),
             {"batches": 1, "spans": 2, "rejected_batches": 0, "failed_batches": 0,
              "warnings": 0, "post_connections": 1, "open_connections": 1, "hung": 0},
             "stats after one batch")
        c.eq(get_json(c, z, "/_fixture/rejected"), [], "nothing rejected")
        c.eq(get_json(c, z, "/_fixture/warnings"), [], "no warnings for a clean batch")

        # Every optional field at a legal edge.
        t = now_us()
        edge = [
            span("00000000000000b1", trace_id=TRACE128, kind="PRODUCER", duration=1,
                 shared=False, debug=True, tags={}, annotations=[]),
            span("00000000000000b2", trace_id=TRACE128, kind="CONSUMER", duration=DROP,
                 localEndpoint={"serviceName": "q", "ipv6": "::1", "port": 65535},
                 remoteEndpoint={}),
            span("00000000000000b3", trace_id=TRACE128, kind=DROP, parentId="00000000000000b1",
                 timestamp=t + 30 * 60 * 1_000_000, remoteEndpoint=DROP, tags=DROP),
            span("00000000000000b4", trace_id="0000000000000000" + "00000000000000c4",
                 kind="SERVER", shared=True,
                 localEndpoint={"serviceName": "switchyard", "ipv4": "10.0.0.255", "port": 1}),
        ]
        status, _, body = post(z, edge)
        c.eq((status, body), (202, ""), "legal edge cases accepted (128-bit trace, kinds, "
             "shared, debug, ipv6, port 65535, no duration, 30 min ahead)")
        c.eq(len(z.spans()), 6, "6 spans stored")
        c.eq(z.rejected(), [], "still nothing rejected")

        status, _, body = post(z, [])
        c.eq((status, body), (202, ""), "an empty list is accepted, as by Zipkin")
        c.check(any("empty list" in w for w in z.warnings()), "an empty list is warned about: %r"
                % z.warnings())


def test_body_framings(c):
    with collector(c) as z:
        batch = [span("00000000000000f1")]
        raw = json.dumps(batch).encode()

        def pieces(data, n):
            return (data[i:i + n] for i in range(0, len(data), n))

        status, _, body = http("POST", z.url("/api/v2/spans"), headers=JSON,
                               body=pieces(raw, 17))
        c.eq((status, body), (202, b""), "chunked upload (http.client)")

        gz = gzip.compress(raw)
        status, _, body = http("POST", z.url("/api/v2/spans"),
                               headers=JSON + [("Content-Encoding", "gzip")], body=gz)
        c.eq((status, body), (202, b""), "gzip, Content-Length")
        status, _, body = http("POST", z.url("/api/v2/spans"),
                               headers=JSON + [("Content-Encoding", "gzip")],
                               body=pieces(gz, 10))
        c.eq((status, body), (202, b""), "gzip, chunked")

        status, _, _ = http("POST", z.url("/api/v2/spans"),
                            headers=[("Content-Type", "application/json; charset=UTF-8")],
                            body=raw)
        c.eq(status, 202, "Content-Type with charset=UTF-8")

        path = os.path.join(TMP, "batch.json")
        with open(path, "wb") as f:
            f.write(raw)
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
                  "--data-binary", "@" + path, z.url("/api/v2/spans")])
        c.eq((r.returncode, r.stdout), (0, "202"), "curl --data-binary (%s)" % r.stderr.strip())
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
                  "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path,
                  z.url("/api/v2/spans")])
        c.eq((r.returncode, r.stdout), (0, "202"), "curl chunked (%s)" % r.stderr.strip())
        gz_path = os.path.join(TMP, "batch.json.gz")
        with open(gz_path, "wb") as f:
            f.write(gz)
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
                  "-H", "Content-Encoding: gzip", "--data-binary", "@" + gz_path,
                  z.url("/api/v2/spans")])
        c.eq((r.returncode, r.stdout), (0, "202"), "curl gzip (%s)" % r.stderr.strip())

        # A big batch: 2000 spans, about 600 KB (curl sends Expect: 100-continue).
        t = now_us() - 10_000
        big = [span("%016x" % (0x1000 + i), trace_id="%016x" % (0xabc000 + i // 10),
                    timestamp=t + i, tags={"i": str(i), "pad": "x" * 200}) for i in range(2000)]
        big_path = os.path.join(TMP, "big.json")
        with open(big_path, "w") as f:
            json.dump(big, f)
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
                  "-H", "Expect: 100-continue", "--expect100-timeout", "5",
                  "--data-binary", "@" + big_path, z.url("/api/v2/spans")], timeout=20)
        c.eq((r.returncode, r.stdout), (0, "202"), "curl 2000 spans (%s)" % r.stderr.strip())

        # Expect: 100-continue by hand.
        with RawConnection(z.port) as r:
            r.send(b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(raw))
            c.eq(r.read_until(b"\r\n\r\n"), b"HTTP/1.1 100 Continue\r\n\r\n", "100 Continue")
            r.send(raw)
            c.eq(r.response()[0], 202, "202 after 100 Continue")

        # Chunk extensions and trailers.
        with RawConnection(z.port) as r:
            half = len(raw) // 2
            r.send(b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n"
                   + b"%x;ext=1\r\n" % half + raw[:half] + b"\r\n"
                   + b"%X\r\n" % (len(raw) - half) + raw[half:] + b"\r\n"
                   + b"0\r\nX-Trailer: 1\r\n\r\n")
            c.eq(r.response()[0], 202, "chunk extension, upper-case hex size, trailer")

        stats = z.stats()
        c.eq((stats["batches"], stats["spans"], stats["rejected_batches"]), (10, 2009, 0),
             "10 batches, 2009 spans, none rejected")


# --------------------------------------------------------------------------
# Refusing invalid spans
# --------------------------------------------------------------------------

# (what, span[1] of a batch [valid, this], substrings the 400 body must have)
INVALID = [
    ("traceId missing", lambda: span(traceId=DROP), ["span[1].traceId: missing"]),
    ("traceId upper-case", lambda: span(traceId="5AF7183FB1D4CF5F"),
     ["span[1].traceId:", "upper-case"]),
    ("traceId 20 chars", lambda: span(traceId="5af7183fb1d4cf5f1234"),
     ["span[1].traceId:", "16 or 32 lower-case hex", "20 characters"]),
    ("traceId all zeros", lambda: span(traceId="0" * 32), ["span[1].traceId:", "all zeros"]),
    ("traceId a number", lambda: span(traceId=1234567890123456),
     ["span[1].traceId:", "must be a string"]),
    ("id 32 chars", lambda: span(span_id=TRACE128), ["span[1].id:", "16 lower-case hex"]),
    ("id missing", lambda: span(id=DROP), ["span[1].id: missing"]),
    ("id not hex", lambda: span(span_id="zzzzzzzzzzzzzzzz"), ["span[1].id:", "not hex"]),
    ("id all zeros", lambda: span(span_id="0000000000000000"), ["span[1].id:", "all zeros"]),
    ("parentId == id", lambda: span(parentId="0000000000000a01"),
     ["span[1].parentId:", "equals the span's own id"]),
    ("parentId zeros", lambda: span(parentId="0000000000000000"),
     ["span[1].parentId:", "all zeros"]),
    ("parentId short", lambda: span(parentId="abc"), ["span[1].parentId:", "3 characters"]),
    ("name a number", lambda: span(name=5), ["span[1].name:", "must be a string"]),
    ("kind lower-case", lambda: span(kind="server"), ["span[1].kind:", 'use "SERVER"']),
    ("kind unknown", lambda: span(kind="INTERNAL"),
     ["span[1].kind:", "CLIENT, SERVER, PRODUCER, CONSUMER"]),
    ("timestamp missing", lambda: span(timestamp=DROP), ["span[1].timestamp: missing"]),
    ("timestamp in ms", lambda: span(timestamp=now_us() // 1000),
     ["span[1].timestamp:", "looks like epoch milliseconds", "microseconds"]),
    ("timestamp in s", lambda: span(timestamp=now_us() // 1_000_000),
     ["span[1].timestamp:", "looks like epoch seconds"]),
    ("timestamp in ns", lambda: span(timestamp=now_us() * 1000),
     ["span[1].timestamp:", "looks like epoch nanoseconds"]),
    ("timestamp 2 h ahead", lambda: span(timestamp=now_us() + 7200 * 1_000_000),
     ["span[1].timestamp:", "in the future"]),
    ("timestamp tiny", lambda: span(timestamp=12345), ["span[1].timestamp:", "too small"]),
    ("timestamp negative", lambda: span(timestamp=-1), ["span[1].timestamp:", "positive"]),
    ("timestamp a float", lambda: span(timestamp=now_us() + 0.5),
     ["span[1].timestamp:", "must be an integer"]),
    ("timestamp a string", lambda: span(timestamp=str(now_us())),
     ["span[1].timestamp:", "a JSON number, not a string"]),
    ("duration 0", lambda: span(duration=0), ["span[1].duration:", ">= 1"]),
    ("duration negative", lambda: span(duration=-5), ["span[1].duration:", ">= 1"]),
    ("duration a float", lambda: span(duration=1.5), ["span[1].duration:", "integer"]),
    ("duration a boolean", lambda: span(duration=True), ["span[1].duration:", "integer"]),
    ("localEndpoint a string", lambda: span(localEndpoint="switchyard"),
     ["span[1].localEndpoint:", "must be an object"]),
    ("ipv4 out of range", lambda: span(localEndpoint={"ipv4": "256.1.1.1"}),
     ["span[1].localEndpoint.ipv4:", "dotted-quad"]),
    ("ipv4 holding ipv6", lambda: span(remoteEndpoint={"ipv4": "::1"}),
     ["span[1].remoteEndpoint.ipv4:", "dotted-quad"]),
    ("ipv6 in brackets", lambda: span(remoteEndpoint={"ipv6": "[::1]"}),
     ["span[1].remoteEndpoint.ipv6:", "IPv6"]),
    ("ipv6 garbage", lambda: span(remoteEndpoint={"ipv6": "not-an-ip"}),
     ["span[1].remoteEndpoint.ipv6:"]),
    ("port 0", lambda: span(localEndpoint={"port": 0}), ["span[1].localEndpoint.port:", "65535"]),
    ("port 70000", lambda: span(localEndpoint={"port": 70000}), ["span[1].localEndpoint.port:"]),
    ("port a string", lambda: span(remoteEndpoint={"port": "80"}),
     ["span[1].remoteEndpoint.port:", "integer"]),
    ("endpoint unknown field", lambda: span(localEndpoint={"address": "1.2.3.4"}),
     ["span[1].localEndpoint.address:", "unknown endpoint field"]),
    ("serviceName a number", lambda: span(localEndpoint={"serviceName": 7}),
     ["span[1].localEndpoint.serviceName:", "must be a string"]),
    ("tags a list", lambda: span(tags=[["a", "b"]]), ["span[1].tags:", "must be an object"]),
    ("tag an integer", lambda: span(tags={"http.status_code": 200}),
     ['span[1].tags["http.status_code"]:', "must be strings", '"200"']),
    ("tag null", lambda: span(tags={"error": None}), ['span[1].tags["error"]:', "strings"]),
    ("tag empty key", lambda: span(tags={"": "x"}), ['span[1].tags[""]:', "empty tag key"]),
    ("annotations an object", lambda: span(annotations={"value": "x"}),
     ["span[1].annotations:", "must be a list"]),
    ("annotation without value", lambda: span(annotations=[{"timestamp": now_us()}]),
     ["span[1].annotations[0].value: missing"]),
    ("annotation in ms", lambda: span(annotations=[{"timestamp": now_us() // 1000,
                                                    "value": "x"}]),
     ["span[1].annotations[0].timestamp:", "milliseconds"]),
    ("annotation value a number", lambda: span(annotations=[{"timestamp": now_us(),
                                                             "value": 3}]),
     ["span[1].annotations[0].value:", "must be a string"]),
    ("annotation with endpoint (v1)", lambda: span(annotations=[
        {"timestamp": now_us(), "value": "sr", "endpoint": {"serviceName": "x"}}]),
     ["span[1].annotations[0].endpoint:", "unknown annotation field", "v1"]),
    ("debug a string", lambda: span(debug="true"), ["span[1].debug:", "true or false"]),
    ("shared a number", lambda: span(shared=1), ["span[1].shared:", "true or false"]),
    ("unknown field (v1)", lambda: span(binaryAnnotations=[]),
     ["span[1].binaryAnnotations:", "unknown span field", "v1"]),
    ("unknown field", lambda: span(service="x"), ["span[1].service:", "unknown span field"]),
    ("null parentId", lambda: span(parentId=None), ["span[1].parentId:", "null"]),
    ("span a list", lambda: [span()], ["span[1]:", "must be a span object"]),
]


def test_invalid_spans(c):
    with collector(c) as z:
        good = span("0000000000000b01")
        with Connection("127.0.0.1", z.port) as conn:
            for i, (what, make, wants) in enumerate(INVALID):
                batch = [good, make()]
                status, headers, body = conn.request("POST", "/api/v2/spans", headers=JSON,
                                                     body=json.dumps(batch).encode())
                text = body.decode("utf-8", "replace")
                c.eq(status, 400, "%s: status (%s)" % (what, text.strip()))
                c.eq(header(headers, "content-type"), "text/plain; charset=utf-8",
                     what + ": text answer")
                c.check(text.startswith("invalid Zipkin v2 span batch: ") and
                        "in 2 spans; nothing from this batch was stored" in text,
                        "%s: header line: %r" % (what, text[:200]))
                for want in wants:
                    c.check(want in text, "%s: answer lacks %r: %r" % (what, want, text))
                c.check("span[0]" not in text, "%s: the valid span[0] is blamed: %r"
                        % (what, text))
                rejected = z.rejected()
                if c.eq(len(rejected), i + 1, what + ": recorded as rejected"):
                    c.eq(rejected[-1]["batch"], batch, what + ": the batch is recorded as sent")
                    c.eq(rejected[-1]["error"], text.rstrip("\n"),
                         what + ": the recorded error is the answer")
        stats = z.stats()
        c.eq((stats["batches"], stats["spans"], stats["rejected_batches"]),
             (0, 0, len(INVALID)), "no span of an invalid batch is stored")
        c.eq(get_json(c, z, "/api/v2/traces"), [], "no traces")

        # Every problem of every span is listed, by index.
        batch = [span("0000000000000c01", kind="client"), span("0000000000000c02"),
                 span("0000000000000c03", timestamp=1, duration=0)]
        status, _, text = post(z, batch)
        c.eq(status, 400, "three spans, two bad")
        c.check("3 problems in 3 spans" in text, "problem count: %r" % text)
        for want in ("span[0].kind:", "span[2].timestamp:", "span[2].duration:"):
            c.check(want in text, "lists %s: %r" % (want, text))
        c.check("span[1]" not in text, "span[1] is fine: %r" % text)

        # Many problems: the answer is capped, with a count of the rest.
        batch = [span("%016x" % (0xd00 + i), kind="x") for i in range(80)]
        status, _, text = post(z, batch)
        c.eq(status, 400, "80 bad spans")
        c.check("80 problems in 80 spans" in text and "... and 30 more" in text,
                "capped list: %r" % text[-200:])
        c.eq(len(text.strip().split("\n")), 1 + 50 + 1, "header + 50 problems + 'and more'")
        c.eq(len(z.spans()), 0, "still nothing stored")

        # validate_batch, as a function.
        problems, warnings = validate_batch([span(kind="server", name="GET /")])
        c.eq(len(problems), 1, "validate_batch: one problem")
        c.check(problems and problems[0].startswith("span[0].kind:"), repr(problems))
        c.check(any(w.startswith("span[0].name:") for w in warnings), repr(warnings))
        problems, _ = validate_batch({"traceId": TRACE})
        c.check(problems and "wrap a single span in a list" in problems[0], repr(problems))


def test_warnings(c):
    with collector(c) as z:
        s1 = span("0000000000000e01", name="GET /Hello",
                  localEndpoint={"serviceName": "Switchyard"})
        s2 = span("0000000000000e02", name=DROP, localEndpoint=DROP, kind="CLIENT", shared=True,
                  duration=2 * 3600 * 1_000_000)
        status, _, _ = post(z, [s1, s2])
        c.eq(status, 202, "warnings do not refuse a batch")
        status, _, _ = post(z, [s1])
        c.eq(status, 202, "a duplicate is accepted")
        w = z.warnings()
        for want in ('batch 1 span[0].name: "GET /Hello" is not lower-case',
                     'batch 1 span[0].localEndpoint.serviceName: "Switchyard" is not lower-case',
                     "batch 1 span[1].name: absent",
                     "batch 1 span[1].localEndpoint: absent",
                     "batch 1 span[1].shared: true on a CLIENT span",
                     "batch 1 span[1].duration:",
                     "batch 2 span[0]: duplicate of a span already stored",
                     "batch 2 span[0].name:"):
            c.check(any(x.startswith(want) for x in w), "warning %r missing from %r" % (want, w))
        c.eq(z.stats()["warnings"], len(w), "stats count the warnings")


def test_refused_requests(c):
    with collector(c) as z:
        good = json.dumps([span()]).encode()
        cases = [
            ("text/plain", [("Content-Type", "text/plain")], good, 415, "application/json"),
            ("no Content-Type", [], good, 415, "no Content-Type"),
            ("protobuf", [("Content-Type", "application/x-protobuf")], good, 415,
             "application/x-protobuf"),
            ("latin-1 charset", [("Content-Type", "application/json; charset=latin-1")], good,
             415, "charset"),
            ("brotli", JSON + [("Content-Encoding", "br")], good, 415, "Content-Encoding"),
            ("not JSON", JSON, b"traceId=1", 400, "not JSON"),
            ("truncated JSON", JSON, good[:-5], 400, "not JSON"),
            ("an object", JSON, json.dumps(span()).encode(), 400, "wrap a single span in a list"),
            ("NaN", JSON, b'[{"duration": NaN}]', 400, "NaN is not valid JSON"),
            ("duplicate keys", JSON, b'[{"id": "0000000000000001", "id": "0000000000000002"}]',
             400, 'duplicate key "id"'),
            ("not UTF-8", JSON, b'[{"name": "\xff"}]', 400, "not UTF-8"),
            ("broken gzip", JSON + [("Content-Encoding", "gzip")], b"\x1f\x8bnot gzip", 400,
             "not valid gzip"),
            ("truncated gzip", JSON + [("Content-Encoding", "gzip")], gzip.compress(good)[:-6],
             400, "truncated"),
            ("gzip bomb", JSON + [("Content-Encoding", "gzip")],
             gzip.compress(b" " * (17 * 1024 * 1024)), 413, "inflates"),
        ]
        for what, headers, body, want_status, want_text in cases:
            status, hdrs, text = post(z, body, headers=headers)
            c.eq(status, want_status, "%s: status (%s)" % (what, text.strip()))
            c.check(want_text in text, "%s: %r lacks %r" % (what, text, want_text))
            c.eq(header(hdrs, "content-type"), "text/plain; charset=utf-8", what + ": text")
        rejected = z.rejected()
        c.eq(len(rejected), len(cases), "every refused POST is recorded")
        if len(rejected) == len(cases):
            c.eq(rejected[0]["batch"], good.decode(), "unparsed body kept as text")
            c.check("application/json" in rejected[0]["error"], rejected[0]["error"])
            c.eq(rejected[5]["batch"], "traceId=1", "non-JSON body kept as text")
            c.check(isinstance(rejected[7]["batch"], dict)
                    and rejected[7]["batch"].get("traceId") == TRACE,
                    "a parsed (non-list) document is kept as parsed")
            c.eq(rejected[11]["batch"], None, "no batch for a broken gzip body")
        c.eq(len(z.spans()), 0, "nothing stored")

        # Too large by Content-Length: refused before the body is read.
        with RawConnection(z.port) as r:
            r.send(b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 20000000\r\n\r\n")
            status, headers, body = r.response()
            c.eq(status, 413, "20 MB Content-Length: 413")
            c.eq(header(headers, "connection"), "close", "413 closes")
            c.check(r.closed(), "413: connection closed")
        # A broken chunked body on the span route is recorded too.
        with RawConnection(z.port) as r:
            r.send(b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
            c.eq(r.response()[0], 400, "bad chunk size: 400")
            c.check(r.closed(), "bad chunk size: connection closed")
        rejected = z.rejected()
        c.eq(len(rejected), len(cases) + 2, "413 and broken chunking recorded")
        c.check("413" in rejected[-2]["error"] and "chunk size" in rejected[-1]["error"],
                repr(rejected[-2:]))
        c.eq(z.stats()["rejected_batches"], len(cases) + 2, "stats.rejected_batches")


def test_routes_and_methods(c):
    with collector(c) as z:
        cases = [
            ("GET", "/nope", 404, "no route /nope"),
            ("POST", "/api/v1/spans", 404, "v1 API is not served"),
            ("PUT", "/api/v2/spans", 405, "POST, GET, HEAD"),
            ("DELETE", "/_fixture/stats", 405, "GET, HEAD"),
            ("POST", "/_fixture/rejected", 405, "GET"),
            ("GET", "/api/v2/spans", 400, "serviceName"),
            ("GET", "/api/v2/trace/xyz", 400, "16 or 32 hex"),
            ("GET", "/api/v2/trace/" + TRACE, 404, "trace %s not found" % TRACE),
            ("GET", "/api/v2/traces?limit=x", 400, "limit"),
        ]
        for method, path, want, text in cases:
            status, headers, body = http(method, z.url(path), body=b"{}" if method != "GET"
                                         else None)
            c.eq(status, want, "%s %s" % (method, path))
            c.check(text in body.decode(), "%s %s: %r lacks %r" % (method, path, body, text))
            if want == 405:
                c.check(header(headers, "allow"), "%s %s: Allow header" % (method, path))
        c.eq(z.rejected(), [], "route errors are not span rejections")
        c.eq(get_json(c, z, "/health"), {"status": "UP"}, "/health")
        status, headers, body = http("HEAD", z.url("/_fixture/stats"))
        c.eq((status, body), (200, b""), "HEAD: no body")
        c.check(int(header(headers, "content-length", "0")) > 0, "HEAD keeps Content-Length")

        malformed = [
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET /health HTTP/2.0\r\n\r\n", 505),
            (b"GET health HTTP/1.1\r\n\r\n", 400),
            (b"GET /health HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
            (b"POST /api/v2/spans HTTP/1.1\r\nContent-Length: 2\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            (b"POST /api/v2/spans HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"GET /health HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        ]
        for raw, want in malformed:
            with RawConnection(z.port, timeout=5) as r:
                try:
                    r.send(raw)
                except OSError:
                    pass
                status, headers, body = r.response()
                c.eq(status, want, "malformed %r" % raw[:40])
                c.check(body.strip(), "malformed %r: a message" % raw[:40])
                c.check(r.closed(), "malformed %r: closed" % raw[:40])
        c.eq(http("GET", z.url("/health"))[0], 200, "still serving")


# --------------------------------------------------------------------------
# Read API
# --------------------------------------------------------------------------

def test_read_api(c):
    with collector(c) as z:
        t = now_us() - 100_000
        a_root = span("000000000000a001", trace_id="00000000000000a1", timestamp=t,
                      duration=5000, name="get /a")
        b_root = span("000000000000b001", trace_id=TRACE128, timestamp=t + 10, name="post /b",
                      localEndpoint={"serviceName": "other"})
        a_child = span("000000000000a002", trace_id="00000000000000a1", kind="CLIENT",
                       parentId="000000000000a001", timestamp=t + 100, duration=1000,
                       name="get /backend")
        c.eq(post(z, [a_root, b_root])[0], 202, "first batch")
        c.eq(post(z, [a_child])[0], 202, "second batch")

        c.eq(get_json(c, z, "/api/v2/traces"), [[a_root, a_child], [b_root]],
             "traces: grouped, in order of first arrival")
        c.eq(get_json(c, z, "/api/v2/trace/00000000000000a1"), [a_root, a_child], "trace a")
        c.eq(get_json(c, z, "/api/v2/trace/" + TRACE128.upper()), [b_root],
             "trace b by an upper-case id")
        c.eq(get_json(c, z, "/api/v2/traces?serviceName=other"), [[b_root]], "by serviceName")
        c.eq(get_json(c, z, "/api/v2/traces?spanName=get%20/backend"), [[a_root, a_child]],
             "by spanName")
        c.eq(get_json(c, z, "/api/v2/traces?limit=1&endTs=1&lookback=5"), [[a_root, a_child]],
             "limit (endTs and lookback ignored)")
        c.eq(get_json(c, z, "/api/v2/services"), ["other", "switchyard"], "services")
        c.eq(get_json(c, z, "/api/v2/spans?serviceName=switchyard"),
             ["get /a", "get /backend"], "span names of a service")

        c.eq(z.trace("00000000000000a1"), [a_root, a_child], "Collector.trace")
        c.eq(z.trace("00000000000000ff"), None, "Collector.trace of an unknown trace: None")
        c.eq(z.traces(serviceName="other"), [[b_root]], "Collector.traces(serviceName=)")
        c.eq(check_tree(z.trace("00000000000000a1")), [], "check_tree on the stored trace")

        status, _, body = http("DELETE", z.url("/_fixture/spans"))
        c.eq((status, json.loads(body)), (200, {"cleared": True}), "DELETE /_fixture/spans")
        post(z, b"nope")
        z.behave("slow", delay_ms=1)
        z.clear()
        c.eq((z.spans(), z.rejected(), z.warnings(), get_json(c, z, "/api/v2/traces")),
             ([], [], [], []), "cleared: spans, rejected, warnings, traces")
        st = z.stats()
        c.eq((st["batches"], st["spans"], st["rejected_batches"], st["post_connections"]),
             (0, 0, 0, 0), "cleared: counters")
        c.eq(get_json(c, z, "/_fixture/behaviour")["mode"], "slow", "clear keeps the behaviour")


# --------------------------------------------------------------------------
# Behaviours
# --------------------------------------------------------------------------

class Background:
    """Runs fn() in a thread; .result / .error / .elapsed after join()."""

    def __init__(self, fn):
        self.result = self.error = None
        self.elapsed = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        t0 = time.monotonic()
        try:
            self.result = fn()
        except Exception as e:
            self.error = e
        self.elapsed = time.monotonic() - t0

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()


def test_behaviour_control(c):
    with collector(c) as z:
        c.eq(get_json(c, z, "/_fixture/behaviour"),
             {"mode": "ok", "delayMs": 0, "status": 500, "times": None}, "default behaviour")
        bad = [
            (b'{"mode": "fast"}', "mode must be one of ok, slow, error, hang"),
            (b'{"mode": "slow", "delayMs": -1}', "delayMs must be an integer"),
            (b'{"mode": "slow", "delayMs": "5"}', "delayMs must be an integer"),
            (b'{"mode": "ok", "delayMs": 10}', "slow and error modes only"),
            (b'{"mode": "hang", "status": 503}', "error mode only"),
            (b'{"mode": "error", "status": 200}', "status must be an integer from 400 to 599"),
            (b'{"mode": "ok", "times": 2}', "times applies"),
            (b'{"mode": "error", "retries": 1}', "unknown field(s) retries"),
            (b'["ok"]', "want a JSON object"),
            (b'mode=ok', "not JSON"),
        ]
        for body, want in bad:
            status, _, text = http("POST", z.url("/_fixture/behaviour"), headers=JSON, body=body)
            c.eq(status, 400, "behaviour %s" % body.decode())
            c.check(want in text.decode(), "behaviour %s: %r lacks %r" % (body, text, want))
        c.eq(z.behave("slow")["delayMs"], 1000, "slow defaults to 1000 ms")
        c.eq(z.behave("error", status=503, times=2),
             {"mode": "error", "delayMs": 0, "status": 503, "times": 2}, "error 503 twice")
        c.eq(z.behave(), {"mode": "ok", "delayMs": 0, "status": 500, "times": None}, "ok again")


def test_slow(c):
    with collector(c) as z:
        z.behave("slow", delay_ms=1000)
        bg = Background(lambda: post(z, [span()]))
        # Meanwhile, the collector serves others at once, and has not stored
        # the spans yet.
        c.check(wait_until(lambda: z.stats()["post_connections"] == 1, 0.8),
                "the slow POST arrived")
        t0 = time.monotonic()
        stats = z.stats()
        c.check(time.monotonic() - t0 < 0.3, "inspection is not slowed down")
        c.eq(stats["spans"], 0, "spans are not stored before the slow answer")
        c.check(bg.join(5), "slow POST finished")
        c.eq(bg.error, None, "slow POST raised")
        c.eq(bg.result and bg.result[0], 202, "slow POST answered 202")
        c.check(bg.elapsed is not None and 1.0 <= bg.elapsed < 4,
                "slow POST took %s s, want 1 s" % bg.elapsed)
        c.eq(z.stats()["spans"], 1, "stored when answered")

        # Several slow POSTs at once are delayed in parallel, not in turn.
        z.behave("slow", delay_ms=500)
        t0 = time.monotonic()
        bgs = [Background(lambda i=i: post(z, [span("%016x" % (0x100 + i))])) for i in range(5)]
        c.check(all(b.join(5) for b in bgs), "5 slow POSTs finished")
        elapsed = time.monotonic() - t0
        c.eq([b.result and b.result[0] for b in bgs], [202] * 5, "5 slow POSTs answered 202")
        c.check(elapsed < 2.0, "5 parallel slow POSTs took %.2f s, want about 0.5" % elapsed)

        # An invalid batch is recorded at once, and answered 400 after the delay.
        z.behave("slow", delay_ms=300, times=1)
        t0 = time.monotonic()
        status, _, text = post(z, [span(timestamp=1)])
        c.eq(status, 400, "slow + invalid: 400")
        c.check(time.monotonic() - t0 >= 0.3, "slow + invalid: delayed too")
        c.eq(len(z.rejected()), 1, "slow + invalid: recorded")
        c.eq(get_json(c, z, "/_fixture/behaviour")["mode"], "ok", "times=1: back to ok")


def test_error(c):
    with collector(c) as z:
        z.behave("error")
        status, headers, text = post(z, [span()])
        c.eq(status, 500, "error mode: 500")
        c.check("simulated collector failure" in text, "error message: %r" % text)
        c.eq(header(headers, "connection"), None, "error mode keeps the connection")
        status, _, _ = post(z, [span(timestamp=1)])
        c.eq(status, 500, "error mode answers 500 to an invalid batch too")
        stats = z.stats()
        c.eq((stats["spans"], stats["failed_batches"], stats["rejected_batches"]), (0, 2, 1),
             "nothing stored; 2 failed; the invalid one still recorded")

        z.behave("error", status=503, times=2)
        got = [post(z, [span("%016x" % (0x200 + i))])[0] for i in range(3)]
        c.eq(got, [503, 503, 202], "error 503 for 2 POSTs, then ok")
        c.eq(len(z.spans()), 1, "only the third batch stored")

        z.behave("error", delay_ms=300)
        t0 = time.monotonic()
        c.eq(post(z, [span()])[0], 500, "delayed error")
        c.check(time.monotonic() - t0 >= 0.3, "error after delayMs")
        c.eq(http("GET", z.url("/_fixture/stats"))[0], 200, "inspection unaffected by error mode")
        z.behave("ok")


def test_hang(c):
    with collector(c) as z:
        z.behave("hang")
        t0 = time.monotonic()
        try:
            post(z, [span()], timeout=0.5)
            c.fail("hang mode answered")
        except (TimeoutError, OSError):
            pass
        c.check(time.monotonic() - t0 < 2, "client timeout honoured")
        c.check(wait_until(lambda: z.stats()["hung"] == 0, 3),
                "the hung request ends when the client closes (stats %r)" % z.stats())

        # A hung request holds its connection, not the collector.
        r = RawConnection(z.port)
        body = json.dumps([span()]).encode()
        r.send(b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
        c.check(wait_until(lambda: z.stats()["hung"] == 1, 3), "one request hangs")
        c.eq(r.read_available(0.3), b"", "no answer at all")
        z.behave("ok")
        c.eq(post(z, [span("00000000000000aa")])[0], 202, "others are served; ok again")
        c.eq(r.read_available(0.2), b"", "the hung request stays unanswered after ok")
        stats = z.stats()
        c.eq((stats["spans"], stats["failed_batches"], stats["hung"]), (1, 2, 1),
             "hung batches are not stored, counted as failed")
        r.close()
        c.check(wait_until(lambda: z.stats()["hung"] == 0, 3), "hung count drops on close")
        c.check(wait_until(lambda: z.stats()["open_connections"] == 1, 3),
                "no connection left but the asking one")


# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------

def test_keep_alive_and_concurrency(c):
    with collector(c) as z:
        clients, per_client = 12, 15
        results = [[] for _ in range(clients)]

        def client(n):
            with Connection("127.0.0.1", z.port) as conn:
                for i in range(per_client):
                    t = now_us()
                    batch = [span("%04x%04x00000001" % (n, i), trace_id="%08x%08x" % (n + 1, i),
                                  timestamp=t),
                             span("%04x%04x00000002" % (n, i), trace_id="%08x%08x" % (n + 1, i),
                                  parentId="%04x%04x00000001" % (n, i), kind="CLIENT",
                                  timestamp=t + 10, duration=100)]
                    results[n].append(conn.request("POST", "/api/v2/spans", headers=JSON,
                                                   body=json.dumps(batch).encode())[0])

        bgs = [Background(lambda n=n: client(n)) for n in range(clients)]
        c.check(all(b.join(20) for b in bgs), "all clients finished")
        c.eq([b.error for b in bgs], [None] * clients, "no client errors")
        c.eq(results, [[202] * per_client] * clients, "every POST answered 202")
        stats = z.stats()
        c.eq((stats["batches"], stats["spans"], stats["post_connections"]),
             (clients * per_client, 2 * clients * per_client, clients),
             "batches, spans; one connection per client (keep-alive)")
        traces = z.traces()
        c.eq(len(traces), clients * per_client, "one trace per batch")
        c.eq([p for t in traces for p in check_tree(t)], [], "every trace is a good tree")

        # Pipelining: two POSTs and a GET in one write, answered in order.
        body = json.dumps([span("00000000000000f1")]).encode()
        post_req = (b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body)
        with RawConnection(z.port) as r:
            r.send(post_req + post_req + b"GET /_fixture/stats HTTP/1.1\r\nHost: x\r\n\r\n")
            c.eq(r.response()[0], 202, "pipelined 1")
            c.eq(r.response()[0], 202, "pipelined 2")
            status, _, body = r.response()
            c.eq((status, json.loads(body)["batches"]), (200, clients * per_client + 2),
                 "pipelined 3 sees both")
            c.check(not r.closed(timeout=0.3), "kept open")

        # HTTP/1.0: closes unless asked to keep alive.
        with RawConnection(z.port) as r:
            r.send(b"GET /health HTTP/1.0\r\n\r\n")
            status, headers, _ = r.response()
            c.eq((status, header(headers, "connection")), (200, "close"), "HTTP/1.0")
            c.check(r.closed(), "HTTP/1.0 closed")
        with RawConnection(z.port) as r:
            r.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = r.response()
            c.eq((status, header(headers, "connection")), (200, "keep-alive"), "1.0 keep-alive")
            c.check(not r.closed(timeout=0.3), "1.0 keep-alive kept open")
        with RawConnection(z.port) as r:
            r.send(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
            c.eq(header(r.response()[1], "connection"), "close", "1.1 Connection: close")
            c.check(r.closed(), "1.1 Connection: close closed")


def test_client_disconnects(c):
    with collector(c) as z:
        body = json.dumps([span()]).encode()
        head = (b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        partials = [
            b"",
            b"POST /api/v2/sp",
            b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\n",
            head + body[:10],
            b"POST /api/v2/spans HTTP/1.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n40\r\n[{\"trace",
            b"POST /api/v2/spans HTTP/1.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n",
        ]
        for data in partials:
            for reset in (False, True):
                s = socket.create_connection(("127.0.0.1", z.port), timeout=5)
                if data:
                    s.sendall(data)
                if reset:          # RST instead of FIN
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()

        # Gone while the answer is delayed, and while hung.
        z.behave("slow", delay_ms=200, times=2)
        for reset in (False, True):
            s = socket.create_connection(("127.0.0.1", z.port), timeout=5)
            s.sendall(head + body)
            if reset:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        z.behave("hang", times=1)
        s = socket.create_connection(("127.0.0.1", z.port), timeout=5)
        s.sendall(head + body)
        c.check(wait_until(lambda: z.stats()["hung"] == 1, 3), "hung")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        # Gone while a large answer is being written.
        for i in range(30):
            post(z, [span("%016x" % (0x300 + i), tags={"pad": "y" * 2000})])
        s = socket.create_connection(("127.0.0.1", z.port), timeout=5)
        s.sendall(b"GET /_fixture/spans HTTP/1.1\r\nHost: x\r\n\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

        c.check(wait_until(lambda: z.stats()["open_connections"] == 1, 3),
                "every abandoned connection is closed (stats %r)" % z.stats())
        time.sleep(0.45)      # let the slow answers to departed clients be attempted
        c.eq(http("GET", z.url("/health"))[0], 200, "still serving")
        c.eq(z.stderr(), "", "no tracebacks on disconnects")


# --------------------------------------------------------------------------
# Process lifecycle and the Collector class
# --------------------------------------------------------------------------

def start_raw(port="0", extra=()):
    d = tempfile.mkdtemp(dir=TMP)
    port_file = os.path.join(d, "port")
    out = open(os.path.join(d, "out"), "wb")
    err = open(os.path.join(d, "err"), "wb")
    proc = subprocess.Popen([sys.executable, COLLECTOR_PY, "--port", port, "--port-file",
                             port_file] + list(extra), stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL)
    harness._PROCESSES.append(proc)
    out.close()
    err.close()
    return proc, d, port_file


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_lifecycle(c):
    proc, d, port_file = start_raw()
    if not c.check(wait_until(lambda: os.path.exists(port_file), 10), "port file written"):
        proc.kill()
        return
    text = read(port_file)
    c.check(text.endswith("\n") and text.strip().isdigit(), "port file: one line: %r" % text)
    port = int(text)
    c.check(not os.path.exists(port_file + ".tmp"), "no .tmp left")
    c.check(wait_until(lambda: "listening on 127.0.0.1:%d" % port in read(d + "/out"), 3),
            "stdout: %r" % read(d + "/out"))
    c.eq(http("GET", "http://127.0.0.1:%d/health" % port)[0], 200, "serving")

    # A port in use: exit 1 with a message.
    proc2, d2, _ = start_raw(str(port))
    try:
        rc = proc2.wait(10)
    except subprocess.TimeoutExpired:
        proc2.kill()
        rc = "still running"
    c.eq(rc, 1, "second collector on the same port exits 1")
    c.check("cannot listen on 127.0.0.1:%d" % port in read(d2 + "/err"),
            "message: %r" % read(d2 + "/err"))

    # SIGTERM with an idle keep-alive connection and a hung request.
    idle = RawConnection(port)
    idle.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    idle.response()
    http("POST", "http://127.0.0.1:%d/_fixture/behaviour" % port, headers=JSON,
         body=b'{"mode": "hang"}')
    hung = RawConnection(port)
    hung.send(b"POST /api/v2/spans HTTP/1.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2\r\n\r\n[]")
    c.check(wait_until(lambda: json.loads(http(
        "GET", "http://127.0.0.1:%d/_fixture/stats" % port)[2])["hung"] == 1, 3), "hung")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "still running"
    c.eq(rc, 0, "SIGTERM: exit 0")
    c.check(time.monotonic() - t0 < 2, "stopped in %.2f s" % (time.monotonic() - t0))
    c.check(idle.closed(), "idle connection closed at shutdown")
    c.check(hung.closed(), "hung connection closed at shutdown")
    idle.close()
    hung.close()
    c.eq(read(d + "/err"), "", "stderr empty")

    proc, d, port_file = start_raw()
    c.check(wait_until(lambda: os.path.exists(port_file), 10), "second start")
    proc.send_signal(signal.SIGINT)
    try:
        c.eq(proc.wait(5), 0, "SIGINT: exit 0")
    except subprocess.TimeoutExpired:
        proc.kill()
        c.fail("SIGINT ignored")
    c.eq(read(d + "/err"), "", "SIGINT: stderr empty")


def test_collector_class(c):
    with collector(c) as z:
        c.check(z.port > 0 and z.endpoint == "127.0.0.1:%d" % z.port, "endpoint %s" % z.endpoint)
        c.eq(z.url(), "http://127.0.0.1:%d/api/v2/spans" % z.port, "url()")
        c.eq(z.post_spans([span()]), (202, ""), "post_spans")
        c.eq(z.post_spans([span("0000000000000a02")], gzip_body=True), (202, ""),
             "post_spans gzip")
        status, text = z.post_spans([span(kind="x")])
        c.check(status == 400 and "span[0].kind" in text, "post_spans invalid: %r" % text)
        c.eq(len(z.wait_for_spans(2, timeout=1)), 2, "wait_for_spans(2)")
        c.eq(len(z.wait_for_spans(2, timeout=1, trace_id=TRACE)), 2, "wait_for_spans(trace)")
        t0 = time.monotonic()
        try:
            z.wait_for_spans(3, timeout=0.3)
            c.fail("wait_for_spans(3) should time out")
        except CollectorError as e:
            c.check("3 span(s) not met within 0.3 s" in str(e) and "kind" in str(e),
                    "timeout message has stats and rejections: %r" % str(e)[:300])
        c.check(time.monotonic() - t0 < 1.5, "wait_for_spans honours its timeout")
        try:
            z._json("GET", "/nope")
            c.fail("a 404 from a fixture call should raise")
        except CollectorError as e:
            c.check("answered 404" in str(e), str(e))
        c.check("POST /api/v2/spans: 202 1 span" in z.logs(), "log lines: %r" % z.logs())

    t0 = time.monotonic()
    try:
        Collector(python="/bin/false", ready_timeout=5)
        c.fail("a collector that exits should raise")
    except CollectorError as e:
        c.check("exited with 1" in str(e), str(e))
    c.check(time.monotonic() - t0 < 3, "start failure noticed at once")


# --------------------------------------------------------------------------
# check_tree
# --------------------------------------------------------------------------

T0 = 1_700_000_000_000_000


def mk(span_id, parent=None, start=0, dur=100, kind=None, shared=None, trace_id=TRACE):
    s = {"traceId": trace_id, "id": span_id, "timestamp": T0 + start, "name": "n"}
    if dur is not None:
        s["duration"] = dur
    if parent:
        s["parentId"] = parent
    if kind:
        s["kind"] = kind
    if shared is not None:
        s["shared"] = shared
    return s


A, B, C, D = ("000000000000000a", "000000000000000b", "000000000000000c", "000000000000000d")


def has(problems, *words):
    return any(all(w in p for w in words) for p in problems)


def test_check_tree(c):
    good = [mk(A, None, 0, 1000, "SERVER"), mk(B, A, 100, 500, "CLIENT"), mk(C, B, 150, 100)]
    c.eq(check_tree(good), [], "a clean three-level tree")
    c.eq(check_tree(list(reversed(good))), [], "order does not matter")

    shared = [mk(A, None, 0, 1000, "CLIENT"), mk(A, None, 50, 900, "SERVER", shared=True),
              mk(B, A, 100, 500, "CLIENT")]
    c.eq(check_tree(shared), [], "a shared CLIENT/SERVER pair as the root")
    half_parent = [mk(D, None, 0, 2000, "SERVER"), mk(A, D, 10, 1000, "CLIENT"),
                   mk(A, None, 50, 900, "SERVER", shared=True)]
    c.eq(check_tree(half_parent), [], "a shared SERVER half without parentId")

    p = check_tree([mk(A, None, 0, 1000, "CLIENT"), mk(A, None, 50, 900, "SERVER")])
    c.check(has(p, "used by 2 spans", "shared=true"), "unshared id reuse: %r" % p)
    p = check_tree([mk(A), mk(A)])
    c.check(has(p, "used by 2 spans"), "duplicate ids: %r" % p)
    p = check_tree([mk(A, None, 0, 1000, "CLIENT"), mk(A, None, 5000, 100, "SERVER", True)])
    c.check(has(p, "shared SERVER span", "not within its CLIENT half"), "pair timing: %r" % p)
    p = check_tree([mk(D), mk(A, D, 10, 10, "CLIENT"), mk(A, B, 20, 5, "SERVER", True), mk(B)])
    c.check(has(p, "disagree about their parent"), "pair parents differ: %r" % p)

    p = check_tree([mk(A, None, 0, 1000), mk(B, C, 10, 10)])
    c.check(has(p, "parentId %s" % C, "not a span of this trace"), "missing parent: %r" % p)
    c.eq(check_tree([mk(B, C, 10, 10), mk(D, B, 11, 5)], external_parents=[C]), [],
         "an external parent is allowed and makes a root")
    p = check_tree([mk(A, None, 0, 1000), mk(B, None, 10, 10)])
    c.check(has(p, "2 root spans, want exactly 1"), "two roots: %r" % p)
    p = check_tree([mk(A, None, 0, 1000), mk(B, C, 10, 10), mk(C, B, 5, 100)])
    c.check(has(p, "cycle"), "cycle: %r" % p)
    p = check_tree([mk(B, C, 10, 10), mk(C, B, 5, 100)])
    c.check(has(p, "0 root spans"), "no root at all: %r" % p)
    p = check_tree([mk(A, A)])
    c.check(has(p, "its own parent"), "own parent: %r" % p)

    p = check_tree([mk(A, None, 0, 1000), mk(B, A, -5000, 100)])
    c.check(has(p, "span %s" % B, "+0..+100 us", "not within its parent", "+5000..+6000 us",
                "tolerance 1000 us"), "child starts too early: %r" % p)
    p = check_tree([mk(A, None, 0, 1000), mk(B, A, 500, 1000)])
    c.eq(p, [], "child ends 500 us late: within the default tolerance")
    p = check_tree([mk(A, None, 0, 1000), mk(B, A, 500, 1000)], tolerance_us=0)
    c.check(has(p, B, "not within"), "tolerance 0: %r" % p)
    c.eq(check_tree([mk(A, None, 0, None), mk(B, A, 10, 99999)]), [],
         "parent without duration: only the start is checked")
    p = check_tree([mk(A, None, 0, 1000, "CLIENT"), mk(A, None, 50, 900, "SERVER", True),
                    mk(B, A, 5000, 200)])
    c.check(has(p, "not within its parent"), "child outside both halves: %r" % p)
    p = check_tree([mk(A, None, 0, 1000), {"traceId": TRACE, "id": B, "parentId": A}])
    c.check(has(p, "has no timestamp"), "no timestamp: %r" % p)

    p = check_tree([mk(A, None, 0, 1000), mk(B, A, 10, 10, trace_id=TRACE128)])
    c.check(has(p, "spans of 2 traces"), "mixed trace ids: %r" % p)
    c.eq(check_tree([]), ["no spans"], "empty")


TESTS = [
    test_valid_batch,
    test_body_framings,
    test_invalid_spans,
    test_warnings,
    test_refused_requests,
    test_routes_and_methods,
    test_read_api,
    test_behaviour_control,
    test_slow,
    test_error,
    test_hang,
    test_keep_alive_and_concurrency,
    test_client_disconnects,
    test_lifecycle,
    test_collector_class,
    test_check_tree,
]


def main(argv):
    tests = [t for t in TESTS if not argv or t.__name__ in argv]
    if argv and len(tests) != len(argv):
        print("unknown test names: %s" % sorted(set(argv) - {t.__name__ for t in TESTS}))
        return 2
    return Checks().run(tests)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
