#!/usr/bin/env python3
"""Zipkin tracing through `switchyard router`: two real routers in a chain
and a real backend on loopback, their spans sent to a strict Zipkin v2
collector (test/support/zipkin_collector.py) that refuses any malformed span;
B3 and l5d-ctx-trace propagation; sampling (rate, l5d-sample, debug); a dead
or hung collector never disturbing traffic.

Usage: tracing_test.py SWITCHYARD_BINARY [TEST_NAME ...]
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Connection, Router, http, wait_until  # noqa: E402
from zipkin_collector import Collector, check_tree  # noqa: E402

BINARY = None


def config(label, dtab, collector_port, rate=1.0):
    return """admin: {port: 0}
telemetry:
- kind: io.l5d.zipkin
  host: 127.0.0.1
  port: %d
  sampleRate: %s
routers:
- protocol: http
  label: %s
  dtab: |
    %s
  servers:
  - port: 0
""" % (collector_port, rate, label, dtab)


class Chain:
    """Router `a` forwards /svc/hello to router `b`, which forwards it to
    the backend."""

    def __init__(self, collector_port, rate=1.0):
        self.backend = Backend("hello")
        self.b = Router(BINARY, config("b", "/svc/hello => /$/inet/127.0.0.1/%d" % self.backend.port,
                                       collector_port, rate))
        self.a = Router(BINARY, config("a", "/svc/hello => /$/inet/127.0.0.1/%d" % self.b.port("b"),
                                       collector_port, rate))

    def get(self, headers=None):
        return http("GET", "http://hello/x?y=1", headers=headers, proxy=("127.0.0.1", self.a.port("a")))

    def close(self):
        self.a.stop()
        self.b.stop()
        self.backend.stop()


def received(body, name):
    return [v for k, v in json.loads(body)["headers"] if k.lower() == name]


def test_spans_of_a_request_through_two_routers(c):
    with Collector() as z:
        chain = Chain(z.port)
        try:
            s, _, body = chain.get()
            c.eq(s, 200, "the request crosses both routers")
            tid = received(body, "x-b3-traceid")
            c.eq(len(tid), 1, "the backend gets one x-b3-traceid")
            c.eq(len(received(body, "l5d-ctx-trace")), 1, "and Linkerd's l5d-ctx-trace")
            spans = z.wait_for_spans(4, timeout=10, trace_id=tid[0])
            c.eq(len(spans), 4, "a server and a client span from each router")
            c.eq(z.rejected(), [], "the collector refused nothing the routers sent")
            c.eq(check_tree(spans), [], "one trace, correct parent links and nesting")
            kinds = sorted((sp["localEndpoint"]["serviceName"], sp["kind"]) for sp in spans)
            c.eq(kinds, [("a", "CLIENT"), ("a", "SERVER"), ("b", "CLIENT"), ("b", "SERVER")],
                 "local service names are the router labels")
            by = {(sp["localEndpoint"]["serviceName"], sp["kind"]): sp for sp in spans}
            c.eq(by[("b", "SERVER")]["id"], by[("a", "CLIENT")]["id"], "b's server span shares a's client span id")
            c.check(by[("b", "SERVER")].get("shared") is True, "and says so (shared)")
            c.eq(by[("b", "CLIENT")]["parentId"], by[("b", "SERVER")]["id"], "b's client span is a child of its server span")
            c.eq(received(body, "x-b3-spanid"), [by[("b", "CLIENT")]["id"]], "the backend's span id is b's client span")
            tags = by[("a", "SERVER")].get("tags", {})
            c.eq((tags.get("http.method"), tags.get("http.path"), tags.get("http.status_code"), tags.get("l5d.name")),
                 ("GET", "/x", "200", "/svc/hello"), "server tags: method, path, status, logical name")
            ctags = by[("b", "CLIENT")].get("tags", {})
            c.eq(ctags.get("l5d.endpoint"), "127.0.0.1:%d" % chain.backend.port, "client span tags the endpoint")
            c.eq(by[("b", "CLIENT")].get("remoteEndpoint", {}).get("port"), chain.backend.port, "and its remote endpoint")
            m = json.loads(http("GET", chain.a.admin_url("/admin/metrics.json"))[2])
            c.check(wait_until(lambda: json.loads(http("GET", chain.a.admin_url("/admin/metrics.json"))[2])
                               .get("zipkin/spans_sent", 0) >= 2, 5), "spans sent are counted: %r" % m.get("zipkin/spans_sent"))
        finally:
            chain.close()


def test_incoming_trace_is_continued(c):
    with Collector() as z:
        chain = Chain(z.port)
        try:
            trace = "463ac35c9f6413ad48485a3953bb6124"
            s, _, body = chain.get(headers={"x-b3-traceid": trace, "x-b3-spanid": "a2fb4a1d1a96d312",
                                            "x-b3-sampled": "1"})
            c.eq(s, 200, "a request carrying a 128-bit B3 trace")
            c.eq(received(body, "x-b3-traceid"), [trace], "the trace id travels on unchanged")
            spans = z.wait_for_spans(4, timeout=10, trace_id=trace)
            c.eq(check_tree(spans), [], "one tree, rooted at the caller's span (which a shares)")
            server_a = [sp for sp in spans if sp["kind"] == "SERVER" and sp["localEndpoint"]["serviceName"] == "a"][0]
            c.eq(server_a["id"], "a2fb4a1d1a96d312", "a's server span is the caller's span, shared")
            s, _, body = chain.get(headers={"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"})
            c.eq(received(body, "x-b3-traceid"), ["80f198ee56343ba864fe8b2a57d3eff7"], "the single b3 header is read")
            # Only Linkerd's l5d-ctx-trace: span 0x11, parent 0x22, trace 0x33,
            # flags sampled + known, as a Linkerd 1 router sends it.
            import base64
            ctx = base64.b64encode(bytes.fromhex("0000000000000011" "0000000000000022" "0000000000000033"
                                                 "0000000000000006")).decode()
            s, _, body = chain.get(headers={"l5d-ctx-trace": ctx})
            c.eq(received(body, "x-b3-traceid"), ["0000000000000033"], "l5d-ctx-trace from Linkerd is continued")
            spans = z.wait_for_spans(4, timeout=10, trace_id="0000000000000033")
            server_a = [sp for sp in spans if sp["kind"] == "SERVER" and sp["localEndpoint"]["serviceName"] == "a"][0]
            c.eq((server_a["id"], server_a.get("parentId")), ("0000000000000011", "0000000000000022"),
                 "with its span and parent ids")
            s, _, body = chain.get(headers={"x-b3-traceid": "0000000000000001", "x-b3-spanid": "0000000000000002",
                                            "x-b3-sampled": "0"})
            c.eq(received(body, "x-b3-sampled"), ["0"], "a caller's decision not to sample is kept")
        finally:
            chain.close()


def test_sampling_rate_header_and_debug(c):
    with Collector() as z:
        chain = Chain(z.port, rate=0.0)
        try:
            for _ in range(20):
                chain.get()
            s, _, body = chain.get(headers={"l5d-sample": "1.0"})
            sampled = received(body, "x-b3-traceid")[0]
            c.eq(received(body, "l5d-sample"), [], "l5d-sample is not sent on")
            s, _, body = chain.get(headers={"x-b3-traceid": "00000000000000aa", "x-b3-spanid": "00000000000000bb",
                                            "x-b3-flags": "1"})
            z.wait_for_spans(4, timeout=10, trace_id=sampled)
            debug = z.wait_for_spans(4, timeout=10, trace_id="00000000000000aa")
            c.check(all(sp.get("debug") is True for sp in debug), "a debug trace is recorded, marked debug")
            time.sleep(1.5)  # every router flushes once a second
            c.eq(z.stats()["spans"], 8, "with sampleRate 0 only the l5d-sample and debug requests were traced")
            c.eq(z.rejected(), [], "nothing refused")
        finally:
            chain.close()


def test_collector_found_by_host_name(c):
    with Collector() as z:
        dns = harness.Dnsmasq(hosts=[("127.0.0.1", "zipkin.test")])
        backend = Backend("hello")
        cfg = config("a", "/svc/hello => /$/inet/127.0.0.1/%d" % backend.port, z.port)
        cfg = cfg.replace("host: 127.0.0.1", "host: zipkin.test") + 'dns: {servers: ["%s"]}\n' % dns.address
        router = Router(BINARY, cfg)
        try:
            s, _, body = http("GET", "http://hello/", proxy=("127.0.0.1", router.port("a")))
            tid = received(body, "x-b3-traceid")[0]
            spans = z.wait_for_spans(2, timeout=10, trace_id=tid)
            c.eq(len(spans), 2, "spans reach a collector named by DNS (zipkin.test)")
        finally:
            router.stop()
            backend.stop()
            dns.stop()


def test_dead_or_hung_collector_never_disturbs_traffic(c):
    z = Collector()
    chain = Chain(z.port)
    try:
        z.behave("hang")
        failed = 0
        with Connection("127.0.0.1", chain.a.port("a")) as conn:
            start = time.monotonic()
            for _ in range(150):
                s, _, _ = conn.request("GET", "http://hello/")
                failed += s != 200
            hung = time.monotonic() - start
        c.eq(failed, 0, "no failed request while the collector hangs (%.1f s for 150)" % hung)
        z.stop()
        failed = 0
        with Connection("127.0.0.1", chain.a.port("a")) as conn:
            for _ in range(150):
                s, _, _ = conn.request("GET", "http://hello/")
                failed += s != 200
        c.eq(failed, 0, "no failed request with the collector gone")

        def dropped():
            m = json.loads(http("GET", chain.a.admin_url("/admin/metrics.json"))[2])
            return m.get("zipkin/spans_dropped", 0)
        c.check(wait_until(lambda: dropped() > 0, 15), "spans that could not be sent are counted as dropped")
    finally:
        chain.close()
        z.stop()


def test_recent_requests(c):
    backend = Backend("hello")
    cfg = """admin: {port: 0}
telemetry:
- {kind: io.l5d.recentRequests, sampleRate: 1.0, capacity: 5}
routers:
- protocol: http
  label: out
  dtab: |
    /svc/hello => /$/inet/127.0.0.1/%d;
  servers:
  - port: 0
""" % backend.port
    r = Router(BINARY, cfg)
    try:
        trace = "463ac35c9f6413ad48485a3953bb6124"
        for i in range(7):
            headers = {"x-b3-traceid": trace, "x-b3-spanid": "a2fb4a1d1a96d312"} if i == 6 else None
            http("GET", "http://hello/n%d" % i, headers=headers, proxy=("127.0.0.1", r.port("out")))
        s, _, _ = http("GET", "http://nowhere/z", proxy=("127.0.0.1", r.port("out")))
        c.eq(s, 502, "a name with no route fails")
        s, h, body = http("GET", r.admin_url("/requests.json"))
        entries = json.loads(body)
        c.eq((s, len(entries)), (200, 5), "the newest `capacity` requests are kept")
        c.eq([e["path"] for e in entries], ["/z", "/n6", "/n5", "/n4", "/n3"], "newest first")
        c.eq((entries[0]["status"], entries[0]["service"]), (502, "svc/nowhere"), "a failed request is there with its status")
        e = entries[1]
        c.eq((e["method"], e["host"], e["service"], e["client"], e["status"]),
             ("GET", "hello", "svc/hello", "$/inet/127.0.0.1/%d" % backend.port, 200), "each with what it was and where it went")
        c.eq(e["endpoint"], "127.0.0.1:%d" % backend.port, "the endpoint")
        c.eq(e["traceId"], trace, "and its trace id, to look it up in Zipkin")
        c.check(len(entries[2]["traceId"]) in (16, 32), "a request without a trace gets the one the router started")
        s, h, body = http("GET", r.admin_url("/requests"))
        c.check(s == 200 and b"<table" in body and trace.encode() in body, "/requests shows the same as a table")
    finally:
        r.stop()
        backend.stop()
    plain = Router(BINARY, config("x", "/svc => /$/inet/127.0.0.1/1", 1, rate=0.0).replace(
        "telemetry:\n- kind: io.l5d.zipkin\n  host: 127.0.0.1\n  port: 1\n  sampleRate: 0.0\n", ""))
    try:
        s, _, body = http("GET", plain.admin_url("/requests.json"))
        c.check(s == 404 and b"io.l5d.recentRequests" in body, "without the telemeter /requests says how to enable it")
    finally:
        plain.stop()


TESTS = [
    test_recent_requests,
    test_spans_of_a_request_through_two_routers,
    test_incoming_trace_is_continued,
    test_sampling_rate_header_and_debug,
    test_collector_found_by_host_name,
    test_dead_or_hung_collector_never_disturbs_traffic,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
