#!/usr/bin/env python3
"""Memory footprint of the router (run against the release build: sanitizers
inflate memory). Streams 100 MB through the router in each direction, once
with a client that reads slowly, and checks the router's peak RSS stays under
50 MB: bodies are streamed with backpressure, never buffered whole.

Usage: footprint_test.py SWITCHYARD_BINARY
"""

import hashlib
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Backend, Router, curl, peak_rss_kb, rss_kb  # noqa: E402

BINARY = None
SIZE = 100 * 1024 * 1024
LIMIT_KB = 50 * 1024


def test_streaming_100mb_keeps_rss_small(c):
    disco = tempfile.mkdtemp(prefix="switchyard-disco-")
    backend = Backend("big")
    with open(os.path.join(disco, "big"), "w") as f:
        f.write("127.0.0.1 %d\n" % backend.port)
    cfg = """admin: {port: 0}
namers: [{kind: io.l5d.fs, rootDir: %s}]
routers:
- protocol: http
  label: out
  dtab: /svc => /#/io.l5d.fs
  servers: [{port: 0}]
  maxRequestKB: 1048576
  maxResponseKB: 1048576
""" % disco
    router = Router(BINARY, cfg, args=["--workers", "1"])
    proxy = "127.0.0.1:%d" % router.port("out")
    try:
        idle = rss_kb(router.pid)
        p = curl(["-x", proxy, "http://big/bytes/%d" % SIZE, "-o", "/dev/null", "-w", "%{http_code} %{size_download}"],
                 timeout=120)
        c.eq(p.stdout, "200 %d" % SIZE, "100 MB download")
        with tempfile.NamedTemporaryFile() as f:
            h = hashlib.sha256()
            for _ in range(SIZE // (1 << 20)):
                block = os.urandom(1 << 20)
                h.update(block)
                f.write(block)
            f.flush()
            p = curl(["-x", proxy, "http://big/echo", "--data-binary", "@" + f.name, "-o", "-"], timeout=120, text=False)
            c.eq(hashlib.sha256(p.stdout).hexdigest(), h.hexdigest(), "100 MB echoed intact")
            # A slow reader: the router must stop reading from the backend,
            # not buffer what the client has not taken.
            p = curl(["-x", proxy, "http://big/bytes/%d" % SIZE, "--limit-rate", "20M", "-o", "/dev/null",
                      "-m", "3"], timeout=30)
        peak = peak_rss_kb(router.pid)
        print("router RSS: %d kB idle, %d kB peak" % (idle, peak))
        c.check(peak < LIMIT_KB, "peak RSS %d kB over %d kB" % (peak, LIMIT_KB))
    finally:
        router.stop()
        backend.stop()


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    sys.exit(harness.Checks().run([test_streaming_100mb_keeps_rss_small]))
