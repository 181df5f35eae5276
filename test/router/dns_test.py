#!/usr/bin/env python3
"""DNS through `switchyard router`: /$/inet host names resolved by a real DNS
server (Debian's dnsmasq on a loopback port) whose records the test rewrites,
re-resolved on their TTL; NXDOMAIN as a negative binding; a DNS server that
goes away; a name that never resolves (bindingTimeoutMs); the resolver's
metrics.

Usage: dns_test.py SWITCHYARD_BINARY [TEST_NAME ...]
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Connection, Dnsmasq, Router, free_port, header, http, wait_until  # noqa: E402

BINARY = None


def config(dns, dtab, extra="", namers=""):
    return """admin: {port: 0}
dns:
  servers: ["%s"]
  minTtlSecs: 1
  maxTtlSecs: 2
  timeoutMs: 300
%srouters:
- protocol: http
  label: out
  bindingTimeoutMs: 1500
  dtab: |
    %s
  servers:
  - port: 0
%s""" % (dns.address, namers, dtab.replace("\n", "\n    "), extra)


def get(router, host, **kw):
    return http("GET", "http://%s/" % host, proxy=("127.0.0.1", router.port("out")), **kw)


def backend_of(router, host):
    s, _, body = get(router, host)
    return json.loads(body)["backend"] if s == 200 else "status %d" % s


def test_host_names_resolve_and_follow_changes(c):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    b = Backend("b", host="127.0.0.2", port=port)
    dns = Dnsmasq(hosts=[("127.0.0.1", "web.test")])
    router = Router(BINARY, config(dns, "/svc/web => /$/inet/web.test/%d" % port))
    try:
        c.eq(backend_of(router, "web"), "a", "web.test resolves to backend a (the first request waits for DNS)")
        dns.set_hosts([("127.0.0.2", "web.test")])
        # While traffic flows the answer changes: the new address is used
        # within a few TTLs, and no request fails meanwhile.
        seen, failed = set(), 0
        deadline = time.monotonic() + 8
        with Connection("127.0.0.1", router.port("out")) as conn:
            while time.monotonic() < deadline and "b" not in seen:
                s, _, body = conn.request("GET", "http://web/")
                if s == 200:
                    seen.add(json.loads(body)["backend"])
                else:
                    failed += 1
                time.sleep(0.02)
        c.check("b" in seen, "the changed A record reached the router: %r" % seen)
        c.eq(failed, 0, "no failed request while the address changed")
        c.eq(backend_of(router, "web"), "b", "and it stays on the new address")
        m = json.loads(http("GET", router.admin_url("/admin/metrics.json"))[2])
        c.check(m.get("inet/dns/lookups", 0) >= 2, "lookups are counted: %r" % m.get("inet/dns/lookups"))
        c.eq(m.get("inet/dns/host/web.test/resolved"), 1, "web.test is resolved")
        c.check("inet/dns/host/web.test/age_secs" in m, "the age of its answer is exported")
        text = http("GET", router.admin_url("/admin/metrics/prometheus"))[2].decode()
        c.check('inet:dns:age_secs{host="web.test"}' in text, "and in Prometheus")
        p = harness.subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        allowed = ('should have "_total" suffix', "should not contain ':'", "abbreviated units")
        other = [l for l in (p.stdout + p.stderr).splitlines() if l.strip() and not any(a in l for a in allowed)]
        c.check(p.returncode != 1 and other == [], "promtool finds nothing beyond Linkerd's naming: %r" % other)
    finally:
        router.stop()
        dns.stop()
        a.stop()
        b.stop()


def test_aaaa_records_and_namer_dns_hosts(c):
    v6 = Backend("v6", host="::1")
    a = Backend("a")
    dns = Dnsmasq(hosts=[("::1", "six.test"), ("127.0.0.1", "a.test")],
                  srv=[("_http._tcp.web.test", "a.test", a.port, 0, 1)])
    # The dns block of the second router points at a server that never
    # answers; its dnssrv namer's dnsHosts names the working one.
    silent = harness.socket.socket(harness.socket.AF_INET, harness.socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))

    class Silent:
        address = "127.0.0.1:%d" % silent.getsockname()[1]

    namers = "namers:\n- kind: io.l5d.dnssrv\n  dnsHosts: [\"%s\"]\n" % dns.address
    router = Router(BINARY, config(dns, "/svc/six => /$/inet/six.test/%d" % v6.port))
    router2 = Router(BINARY, config(Silent, "/svc/web => /#/io.l5d.dnssrv/_http._tcp.web.test", namers=namers))
    try:
        c.eq(backend_of(router, "six"), "v6", "an AAAA record (::1) is used")
        c.eq(backend_of(router2, "web"), "a", "the dnssrv namer asks its dnsHosts, not the dns block's servers")
    finally:
        router.stop()
        router2.stop()
        dns.stop()
        v6.stop()
        a.stop()
        silent.close()


def test_nxdomain_is_negative_and_falls_back(c):
    fallback = Backend("fallback")
    dns = Dnsmasq(hosts=[])
    router = Router(BINARY, config(dns, "/svc/gone => /$/inet/missing.test/80 | /$/inet/127.0.0.1/%d" % fallback.port))
    try:
        c.eq(backend_of(router, "gone"), "fallback", "NXDOMAIN binds negatively: the alternative serves")
        s, hdrs, _ = http("POST", router.admin_url("/delegator.json"),
                          body=json.dumps({"namespace": "out", "dtab": "", "path": "/svc/gone"}).encode(),
                          headers={"Content-Type": "application/json"})
        c.eq(s, 200, "delegator.json for a name with a DNS name in it")
    finally:
        router.stop()
        dns.stop()
        fallback.stop()


def test_dns_outage_keeps_the_last_good_addresses(c):
    a = Backend("a")
    dns = Dnsmasq(hosts=[("127.0.0.1", "web.test")])
    router = Router(BINARY, config(dns, "/svc/web => /$/inet/web.test/%d;\n/svc/new => /$/inet/new.test/%d"
                                   % (a.port, a.port)))
    try:
        c.eq(backend_of(router, "web"), "a", "resolved while the DNS server runs")
        dns.stop()
        failed = 0
        deadline = time.monotonic() + 4  # several TTLs and refresh failures
        while time.monotonic() < deadline:
            if backend_of(router, "web") != "a":
                failed += 1
            time.sleep(0.05)
        c.eq(failed, 0, "with the DNS server gone, the last good address keeps serving")
        s, hdrs, _ = get(router, "new")
        err = header(hdrs, "l5d-err") or ""
        c.check(s in (502, 503) and "new.test" in err, "a name never resolved fails, naming it: %d %r" % (s, err))
        m = json.loads(http("GET", router.admin_url("/admin/metrics.json"))[2])
        c.check(m.get("inet/dns/failures", 0) >= 1, "failed lookups are counted: %r" % m.get("inet/dns/failures"))
        dns.restart(hosts=[("127.0.0.1", "web.test"), ("127.0.0.1", "new.test")])
        c.check(wait_until(lambda: backend_of(router, "new") == "a", 10), "the name resolves once DNS is back")
    finally:
        router.stop()
        dns.stop()
        a.stop()


def test_binding_timeout_while_dns_hangs(c):
    # A DNS "server" that never answers: a bound UDP socket nobody reads.
    silent = harness.socket.socket(harness.socket.AF_INET, harness.socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))

    class Silent:
        address = "127.0.0.1:%d" % silent.getsockname()[1]

    a = Backend("a")
    router = Router(BINARY, config(Silent, "/svc/web => /$/inet/slow.test/%d" % a.port)
                    .replace("timeoutMs: 300", "timeoutMs: 5000"))
    try:
        start = time.monotonic()
        s, hdrs, _ = get(router, "web")
        waited = time.monotonic() - start
        err = header(hdrs, "l5d-err") or ""
        c.eq(s, 503, "a binding that does not complete within bindingTimeoutMs")
        c.check("bindingTimeoutMs" in err and "/$/inet/slow.test" in err, "l5d-err says what it waited for: %r" % err)
        c.check(1.0 <= waited < 5.0, "answered after bindingTimeoutMs (%.1f s)" % waited)
        c.eq(http("GET", router.admin_url("/admin/ping"))[2], b"pong", "the router serves on")
    finally:
        router.stop()
        a.stop()
        silent.close()


def test_dnssrv_namer_weights_priorities_and_changes(c):
    a, b, c_backup = Backend("a"), Backend("b"), Backend("backup")
    hosts = [("127.0.0.1", "a.test"), ("127.0.0.1", "b.test"), ("127.0.0.1", "c.test")]
    srv = [("_http._tcp.web.test", "a.test", a.port, 0, 30),
           ("_http._tcp.web.test", "b.test", b.port, 0, 10),
           ("_http._tcp.web.test", "c.test", c_backup.port, 1, 100)]
    dns = Dnsmasq(hosts=hosts, srv=srv)
    namers = "namers:\n- kind: io.l5d.dnssrv\n  refreshIntervalSeconds: 1\n"
    dtab = ("/svc/web => /#/io.l5d.dnssrv/_http._tcp.web.test;\n"
            "/svc/none => /#/io.l5d.dnssrv/_http._tcp.none.test | /$/inet/127.0.0.1/%d" % a.port)
    router = Router(BINARY, config(dns, dtab, namers=namers))
    try:
        counts = {}
        with Connection("127.0.0.1", router.port("out")) as conn:
            for _ in range(400):
                s, _, body = conn.request("GET", "http://web/")
                key = json.loads(body)["backend"] if s == 200 else "status %d" % s
                counts[key] = counts.get(key, 0) + 1
        c.check(set(counts) == {"a", "b"}, "only the lowest priority value serves: %r" % counts)
        share = counts.get("a", 0) / 400
        c.check(0.65 <= share <= 0.85, "weights 30:10 are honoured: %.2f to a" % share)
        c.eq(backend_of(router, "none"), "a", "an SRV name that does not exist falls back")
        dns.restart(srv=[("_http._tcp.web.test", "b.test", b.port, 0, 10)])
        c.check(wait_until(lambda: all(backend_of(router, "web") == "b" for _ in range(10)), 10),
                "a changed SRV record reaches the router")
        dns.stop()
        time.sleep(2.5)  # refreshes fail now
        c.check(all(backend_of(router, "web") == "b" for _ in range(10)), "with DNS gone the last good targets serve")
    finally:
        router.stop()
        dns.stop()
        for x in (a, b, c_backup):
            x.stop()


def test_bad_dns_config_is_refused(c):
    d = tempfile.mkdtemp(prefix="switchyard-dnscfg-")
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write("""dns:
  servers: ["dns.example:53", "127.0.0.1:70000"]
  minTtlSecs: 10
  maxTtlSecs: 5
routers:
- protocol: http
  servers: [{port: 0}]
""")
    p = harness.subprocess.run([BINARY, "router", "--check", "-c", bad], capture_output=True, text=True)
    c.eq(p.returncode, 2, "an invalid dns block is a config error")
    c.check("dns.servers[0]" in p.stderr and "dns.servers[1]" in p.stderr and "dns.maxTtlSecs" in p.stderr,
            "each problem is named by its path: %r" % p.stderr)


TESTS = [
    test_host_names_resolve_and_follow_changes,
    test_aaaa_records_and_namer_dns_hosts,
    test_nxdomain_is_negative_and_falls_back,
    test_dns_outage_keeps_the_last_good_addresses,
    test_binding_timeout_while_dns_hangs,
    test_dnssrv_namer_weights_priorities_and_changes,
    test_bad_dns_config_is_refused,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
