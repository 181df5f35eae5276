#!/usr/bin/env python3
"""What following Kubernetes services costs the router: its RSS with N
services watched (over plain HTTP and over in-cluster HTTPS with a token),
and how long an endpoint change takes to reach routing.

    python3 bench/k8s_watch_cost.py build/release/app/switchyard [N] [CHANGES]

Starts the Kubernetes API fixture (test/support/k8s_api.py) on loopback,
N services (default 1000) of 3 endpoints each, a router whose dtab binds
/svc/<name> to them through io.l5d.k8s with useEndpointSlices, asks for
each service once (one list and one watch each), then reads the router's
RSS. Then it changes one service's endpoints CHANGES times (default 50),
timing each from the fixture's write to the first answer from the new
backend. Prints one line per figure. Loopback only; bounded in count and
time. Not a test: it never runs in CI.
"""

import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "support"))
import certs  # noqa: E402
import harness  # noqa: E402
from harness import Backend, Connection, Router, free_port, rss_kb, wait_until  # noqa: E402
from k8s_api import K8sApiServer  # noqa: E402


def services(api, n, port):
    objs = []
    for i in range(n):
        api.put_service({"namespace": "default", "name": "svc-%d" % i,
                         "ports": [{"name": "http", "port": 80, "targetPort": port}],
                         "endpoints": [{"ip": "127.0.%d.%d" % (1 + (i * 3 + k) // 250, 1 + (i * 3 + k) % 250)}
                                       for k in range(3)]})
    return objs


def router_config(namer):
    return """admin: {port: 0}
namers:
- %s
routers:
- protocol: http
  label: out
  bindingTimeoutMs: 20000
  dtab: /svc => /#/io.l5d.k8s/default/http;
  servers: [{port: 0}]
""" % namer


def follow_all(router, n):
    """Asks for every service once; a 502 (no backend listens there) still
    means the service was bound, which is all that is wanted here."""
    conn = Connection("127.0.0.1", router.port("out"))
    t0 = time.monotonic()
    for i in range(n):
        s, _, _ = conn.request("GET", "http://svc-%d/" % i)
        if s not in (200, 502):
            raise RuntimeError("svc-%d: status %d" % (i, s))
    conn.close()
    return time.monotonic() - t0


def measure(binary, n, tls):
    port = free_port(harness.socket.SOCK_STREAM)
    tmp = tempfile.mkdtemp(prefix="k8s-bench-")
    env = {}
    if tls:
        pki = certs.make_ca_and_server_cert(tmp)
        sa = os.path.join(tmp, "sa")
        os.makedirs(sa)
        with open(pki["ca"]) as f, open(os.path.join(sa, "ca.crt"), "w") as out:
            out.write(f.read())
        with open(os.path.join(sa, "token"), "w") as out:
            out.write("bench-token\n")
        api = K8sApiServer(token="bench-token", tls_cert=pki["cert"], tls_key=pki["key"], history=max(1000, 4 * n))
    else:
        api = K8sApiServer(history=max(1000, 4 * n))
    api.start()
    services(api, n, port)
    if tls:
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(api.port),
               "SWITCHYARD_K8S_SERVICEACCOUNT_DIR": sa}
        namer = "{kind: io.l5d.k8s, useEndpointSlices: true}"
    else:
        namer = "{kind: io.l5d.k8s, host: 127.0.0.1, port: %d, useEndpointSlices: true}" % api.port
    r = Router(binary, router_config(namer), env=env)
    try:
        base = rss_kb(r.pid)
        took = follow_all(r, n)
        wait_until(lambda: len(api.watcher_info()["streams"]) >= n, 30)
        time.sleep(1)
        rss = rss_kb(r.pid)
        print("%s: %d services watched (%d watch streams) in %.1f s; router RSS %d kB idle -> %d kB, %.1f kB per service"
              % ("https+token" if tls else "http", n, len(api.watcher_info()["streams"]), took, base, rss,
                 (rss - base) / n))
        return r, api
    except Exception:
        r.stop()
        api.stop()
        raise


def propagation(binary, changes):
    port = free_port(harness.socket.SOCK_STREAM)
    a = Backend("a", host="127.0.0.1", port=port)
    b = Backend("b", host="127.0.0.2", port=port)
    api = K8sApiServer(history=10 * changes + 100)
    api.start()
    api.put_service({"namespace": "default", "name": "web", "ports": [{"name": "http", "port": 80, "targetPort": port}],
                     "endpoints": [{"ip": "127.0.0.1"}]})
    r = Router(binary, router_config("{kind: io.l5d.k8s, host: 127.0.0.1, port: %d, useEndpointSlices: true}" % api.port))
    conn = Connection("127.0.0.1", r.port("out"))
    times = []
    try:
        current = "a"
        for _ in range(changes):
            target, ip = ("b", "127.0.0.2") if current == "a" else ("a", "127.0.0.1")
            t0 = time.monotonic()
            api.put_service({"namespace": "default", "name": "web",
                             "ports": [{"name": "http", "port": 80, "targetPort": port}],
                             "endpoints": [{"ip": ip}]})
            while True:
                s, _, body = conn.request("GET", "http://web/")
                if s == 200 and json.loads(body)["backend"] == target:
                    break
                if time.monotonic() - t0 > 10:
                    raise RuntimeError("a change did not arrive in 10 s")
            times.append((time.monotonic() - t0) * 1000)
            current = target
        times.sort()
        print("endpoint change -> routing, %d changes: p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              % (changes, statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], times[-1]))
    finally:
        conn.close()
        r.stop()
        api.stop()
        a.stop()
        b.stop()


def main():
    binary = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    changes = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    for tls in (False, True):
        r, api = measure(binary, n, tls)
        r.stop()
        api.stop()
    propagation(binary, changes)


if __name__ == "__main__":
    main()
