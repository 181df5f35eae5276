#!/usr/bin/env python3
"""Traffic shifting through `switchyard router`: weighted dtab unions split
requests per request, weights change while traffic flows, blue-green flips,
canaries reached by a per-request dtab, and a branch whose backend dies drops
out. The real binary, real backends on loopback, every port ephemeral; every
load is bounded in count and time.

Usage: traffic_test.py SWITCHYARD_BINARY [TEST_NAME ...]
"""

import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Connection, Router, http, wait_until  # noqa: E402

BINARY = None


def write_file(path, text):
    """Atomically, as an operator's tool (or a ConfigMap update) does."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def config(disco, dtab):
    return """admin: {port: 0}
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: http
  label: out
  dtab: |
    %s
  servers:
  - port: 0
""" % (disco, dtab.replace("\n", "\n    "))


class Env:
    """Backends world-v1 and world-v2 behind a router with `dtab`."""

    def __init__(self, dtab, names=("world-v1", "world-v2")):
        self.disco = tempfile.mkdtemp(prefix="switchyard-disco-")
        self.backends = {}
        for name in names:
            b = Backend(name)
            self.backends[name] = b
            write_file(os.path.join(self.disco, name), "127.0.0.1 %d\n" % b.port)
        self.router = Router(BINARY, config(self.disco, dtab), args=["--workers", "2"])
        self.port = self.router.port("out")

    def set_dtab(self, dtab):
        """Rewrites the router's config file: the router applies the new dtab."""
        write_file(self.router.config_path, config(self.disco, dtab))

    def count(self, n, host="world", headers=None):
        """n requests over two keep-alive connections: {backend: count}, plus
        'status <code>' entries for anything but 200."""
        counts = {}
        with Connection("127.0.0.1", self.port) as c1, Connection("127.0.0.1", self.port) as c2:
            for i in range(n):
                status, _, body = (c1 if i % 2 else c2).request("GET", "http://%s/" % host, headers=headers)
                key = json.loads(body)["backend"] if status == 200 else "status %d" % status
                counts[key] = counts.get(key, 0) + 1
        return counts

    def close(self):
        self.router.stop()
        for b in self.backends.values():
            b.stop()


class Load:
    """Requests from `threads` keep-alive clients until stop() (or `max_s`,
    or `max_requests` in all): each recorded as (time, status, backend)."""

    def __init__(self, port, host="world", threads=4, max_s=30.0, max_requests=200000):
        self.port, self.host = port, host
        self.records = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + max_s
        self.max_requests = max_requests
        self.errors = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self):
        try:
            conn = Connection("127.0.0.1", self.port)
            while not self.stopping.is_set() and time.monotonic() < self.deadline:
                if len(self.records) >= self.max_requests:
                    break
                status, _, body = conn.request("GET", "http://%s/" % self.host)
                backend = json.loads(body)["backend"] if status == 200 else None
                with self.lock:
                    self.records.append((time.monotonic(), status, backend))
            conn.close()
        except Exception as e:  # a broken connection is a failure the test reports
            with self.lock:
                self.errors.append(repr(e))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=10)
        return self.records

    def window(self, start, end):
        return [r for r in self.records if start <= r[0] < end]


def share(records, backend):
    ok = [r for r in records if r[1] == 200]
    return sum(1 for r in ok if r[2] == backend) / max(1, len(ok))


def failures(load):
    bad = [r for r in load.records if r[1] != 200]
    return len(bad) + len(load.errors)


def test_weighted_split_within_tolerance(c):
    env = Env("/svc => /#/io.l5d.fs;\n/svc/world => 0.9 * /#/io.l5d.fs/world-v1 & 0.1 * /#/io.l5d.fs/world-v2")
    try:
        n = 10000
        counts = env.count(n)
        v2 = counts.get("world-v2", 0) / n * 100
        c.eq(counts.get("world-v1", 0) + counts.get("world-v2", 0), n, "all %d requests answered: %r" % (n, counts))
        c.check(abs(v2 - 10) <= 1.5, "0.9 & 0.1 sends %.2f%% to v2 (10 +- 1.5)" % v2)
        env.set_dtab("/svc => /#/io.l5d.fs;\n/svc/world => 99 * /#/io.l5d.fs/world-v1 & 1 * /#/io.l5d.fs/world-v2")
        wait_until(lambda: "99 * /#" in http("GET", env.router.admin_url("/config.json"))[2].decode(), 5)
        counts = env.count(n)
        v2 = counts.get("world-v2", 0) / n * 100
        c.check(abs(v2 - 1) <= 0.5, "99 & 1 (relative weights) sends %.2f%% to v2 (1 +- 0.5)" % v2)
        m = json.loads(http("GET", env.router.admin_url("/admin/metrics.json"))[2])
        v1req = m.get("rt/out/client/#/io.l5d.fs/world-v1/requests", 0)
        v2req = m.get("rt/out/client/#/io.l5d.fs/world-v2/requests", 0)
        c.eq(v1req + v2req, 2 * n, "per-branch client metrics count every request (v1 %d, v2 %d)" % (v1req, v2req))
        c.check("rt/out/client/#/io.l5d.fs/world-v2/success" in m, "the canary branch has its own success count")
        s, _, body = http("POST", env.router.admin_url("/delegator.json"),
                          body=json.dumps({"namespace": "out", "dtab": "", "path": "/svc/world"}).encode(),
                          headers={"Content-Type": "application/json"})
        tree = json.loads(body)
        text = json.dumps(tree)
        c.check(s == 200 and '"weight": 99' in text.replace("99.0", "99"),
                "delegator.json shows the union's weights: %s" % text[:300])
    finally:
        env.close()


def test_weight_change_under_load_moves_traffic_within_a_second(c):
    env = Env("/svc => /#/io.l5d.fs;\n/svc/world => 0.9 * /#/io.l5d.fs/world-v1 & 0.1 * /#/io.l5d.fs/world-v2")
    try:
        load = Load(env.port)
        time.sleep(2.0)
        changed = time.monotonic()
        env.set_dtab("/svc => /#/io.l5d.fs;\n/svc/world => 0.1 * /#/io.l5d.fs/world-v1 & 0.9 * /#/io.l5d.fs/world-v2")
        time.sleep(3.0)
        load.stop()
        before = load.window(changed - 1.5, changed)
        after = load.window(changed + 1.0, changed + 3.0)
        rate = len(load.records) / 5.0
        # When the new split shows: the first request after the change from
        # which on the next 100 have at least 80% on v2.
        later = sorted(r for r in load.records if r[0] >= changed)
        shifted = next((r[0] for i, r in enumerate(later) if share(later[i:i + 100], "world-v2") >= 0.8), None)
        print("  weight change under %.0f req/s: %.3f to v2 before, %.3f from 1 s after; new split from %s ms"
              % (rate, share(before, "world-v2"), share(after, "world-v2"),
                 "%.0f" % ((shifted - changed) * 1000) if shifted else "never"))
        c.check(shifted is not None and shifted - changed < 1.0, "the split moved within 1 s")
        c.eq(failures(load), 0, "no failed request while the weights change (%.0f req/s, %d requests; %r)"
             % (rate, len(load.records), load.errors[:3]))
        c.check(len(before) > 200 and len(after) > 200, "enough traffic on both sides: %d, %d"
                % (len(before), len(after)))
        # Within four standard deviations of the weights' split (at least
        # 0.06), so chance alone fails it about once in 15,000 runs.
        def tolerance(p, n):
            return max(0.06, 4 * (p * (1 - p) / max(n, 1)) ** 0.5)
        c.check(abs(share(before, "world-v2") - 0.1) < tolerance(0.1, len(before)),
                "before: %.3f to v2 (%d requests)" % (share(before, "world-v2"), len(before)))
        c.check(abs(share(after, "world-v2") - 0.9) < tolerance(0.9, len(after)),
                "from 1 s after the change: %.3f to v2 (%d requests)" % (share(after, "world-v2"), len(after)))
    finally:
        env.close()


def test_blue_green_flip_and_back_loses_nothing(c):
    env = Env("/svc => /#/io.l5d.fs;\n/svc/world => /#/io.l5d.fs/world-v1")
    try:
        load = Load(env.port)
        time.sleep(1.0)
        t1 = time.monotonic()
        env.set_dtab("/svc => /#/io.l5d.fs;\n/svc/world => /#/io.l5d.fs/world-v2")
        time.sleep(2.0)
        t2 = time.monotonic()
        env.set_dtab("/svc => /#/io.l5d.fs;\n/svc/world => /#/io.l5d.fs/world-v1")
        time.sleep(2.0)
        t3 = time.monotonic()
        load.stop()
        c.eq(failures(load), 0, "no failed request across two flips (%d requests; %r)"
             % (len(load.records), load.errors[:3]))
        c.eq(share(load.window(t1 - 1.0, t1), "world-v1"), 1.0, "blue before the flip")
        c.eq(share(load.window(t1 + 1.0, t2), "world-v2"), 1.0, "green from 1 s after the flip")
        c.eq(share(load.window(t2 + 1.0, t3), "world-v1"), 1.0, "blue again from 1 s after the flip back")
    finally:
        env.close()


def test_canary_reached_by_request_dtab_only(c):
    env = Env("/srv => /#/io.l5d.fs;\n/svc/world => /srv/world-v1")
    try:
        counts = env.count(50)
        c.eq(counts, {"world-v1": 50}, "everyone stays on v1")
        counts = env.count(50, headers={"l5d-dtab": "/srv/world-v1 => /srv/world-v2"})
        c.eq(counts, {"world-v2": 50}, "a request carrying l5d-dtab reaches the canary")
        counts = env.count(20)
        c.eq(counts, {"world-v1": 20}, "the override did not stick")
    finally:
        env.close()


def test_branch_whose_backend_dies_drops_out(c):
    env = Env("/svc => /#/io.l5d.fs;\n/svc/world => 0.5 * /#/io.l5d.fs/world-v1 & 0.5 * /#/io.l5d.fs/world-v2")
    try:
        counts = env.count(200)
        c.check(counts.get("world-v1", 0) > 50 and counts.get("world-v2", 0) > 50, "both branches serve: %r" % counts)
        env.backends["world-v2"].kill()
        counts = env.count(400)
        c.eq(counts, {"world-v1": 400}, "with v2's backend dead, v1 carries every request (connects to v2 requeued)")
        m = json.loads(http("GET", env.router.admin_url("/admin/metrics.json"))[2])
        c.eq(m.get("rt/out/service/svc/world/failures", 0), 0, "no request of the service failed")
    finally:
        env.close()


def test_nested_unions_alternatives_and_empty_branches(c):
    names = ("x", "y", "z")
    env = Env("/svc => /#/io.l5d.fs;\n/svc/world => (0.5 * /#/io.l5d.fs/x & 0.5 * /#/io.l5d.fs/y) | /#/io.l5d.fs/z",
              names=names)
    try:
        counts = env.count(400)
        c.check(set(counts) == {"x", "y"} and min(counts.values()) > 120, "the union's two branches share: %r" % counts)
        write_file(os.path.join(env.disco, "y"), "")  # y has no endpoints now
        wait_until(lambda: env.count(20) == {"x": 20}, 5)
        counts = env.count(200)
        c.eq(counts, {"x": 200}, "a branch with no endpoints drops out of the union")
        write_file(os.path.join(env.disco, "x"), "")
        wait_until(lambda: "status 502" in env.count(1), 5)
        s, hdrs, _ = http("GET", "http://world/", proxy=("127.0.0.1", env.port))
        err = harness.header(hdrs, "l5d-err") or ""
        c.check(s == 502 and "/#/io.l5d.fs/x (no endpoints)" in err and "/#/io.l5d.fs/y (no endpoints)" in err,
                "a union whose branches all lack endpoints is no hosts, each branch named: %d %r" % (s, err))
        # As in Finagle, only a negative binding (~) falls through an
        # alternative: with x and y gone, the union is ~ and z takes over.
        os.unlink(os.path.join(env.disco, "x"))
        os.unlink(os.path.join(env.disco, "y"))
        wait_until(lambda: env.count(20) == {"z": 20}, 5)
        counts = env.count(100)
        c.eq(counts, {"z": 100}, "with the union negative, the alternative takes everything")
        os.unlink(os.path.join(env.disco, "z"))
        wait_until(lambda: "status 502" in env.count(1), 5)
        s, hdrs, _ = http("GET", "http://world/", proxy=("127.0.0.1", env.port))
        err = harness.header(hdrs, "l5d-err") or ""
        c.eq(s, 502, "nothing left: no hosts")
        c.check("binds to ~" in err and "/svc/world" in err, "l5d-err says why: %r" % err)
    finally:
        env.close()


def test_invalid_dtab_reload_keeps_the_running_one(c):
    env = Env("/svc => /#/io.l5d.fs;\n/svc/world => /#/io.l5d.fs/world-v1")
    try:
        write_file(env.router.config_path, config(env.disco, "/svc => => broken"))
        wait_until(lambda: "keeping the running config" in env.router.stderr(), 5)
        c.eq(env.count(20), {"world-v1": 20}, "a broken config file changes nothing")
        c.check("dtab" in env.router.stderr(), "the log names the problem: %r" % env.router.stderr()[-300:])
        env.set_dtab("/svc => /#/io.l5d.fs;\n/svc/world => /#/io.l5d.fs/world-v2")
        wait_until(lambda: env.count(5) == {"world-v2": 5}, 5)
        c.eq(env.count(20), {"world-v2": 20}, "the next valid file applies")
    finally:
        env.close()


def test_canary_example_and_shift_script(c):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    example = os.path.join(root, "examples", "canary", "linkerd.yaml")
    shift = os.path.join(root, "examples", "canary", "shift")
    copy = os.path.join(tempfile.mkdtemp(prefix="switchyard-canary-"), "canary.yaml")
    with open(example) as f, open(copy, "w") as out:
        out.write(f.read())
    for percent, want in (("10", "90.00*/#/io.l5d.fs/world-v1 & 10.00*/#/io.l5d.fs/world-v2"),
                          ("0", "/svc/world=>/#/io.l5d.fs/world-v1"),
                          ("100", "/svc/world=>/#/io.l5d.fs/world-v2")):
        p = harness.subprocess.run([shift, percent, copy], capture_output=True, text=True)
        c.eq(p.returncode, 0, "shift %s: %s" % (percent, p.stderr))
        p = harness.subprocess.run([BINARY, "router", "--check", "-c", copy], capture_output=True, text=True)
        c.eq(p.returncode, 0, "the shifted config is valid (%s%%): %s" % (percent, p.stderr))
        dtab_line = [line for line in open(copy) if "/svc/world =>" in line][0]
        p = harness.subprocess.run([BINARY, "dtab", "check", dtab_line.strip()], capture_output=True, text=True)
        c.check(want in p.stdout, "shift %s%% writes %s: %r" % (percent, want, p.stdout))
    p = harness.subprocess.run([shift, "150", copy], capture_output=True, text=True)
    c.eq(p.returncode, 2, "shift refuses a percentage over 100")


TESTS = [
    test_weighted_split_within_tolerance,
    test_weight_change_under_load_moves_traffic_within_a_second,
    test_blue_green_flip_and_back_loses_nothing,
    test_canary_reached_by_request_dtab_only,
    test_branch_whose_backend_dies_drops_out,
    test_nested_unions_alternatives_and_empty_branches,
    test_invalid_dtab_reload_keeps_the_running_one,
    test_canary_example_and_shift_script,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
