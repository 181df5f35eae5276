#!/usr/bin/env python3
"""Self-test of test/support/k8s_api.py, the Kubernetes API server fixture.

Usage: k8s_api_test.py [TEST_NAME ...]

Starts the fixture as a process (`k8s_api.py --port 0 --port-file ...`) and
checks every route, the watch semantics (initial ADDED, replay from a
resourceVersion, selector transitions, 410 Expired, bookmarks, timeouts) and
every fault of the control API, and the DTab custom resource (client
create/update/delete with the real server's answers, its watch events, the
CRD being installed or not), with real HTTP clients: http.client, raw
sockets (a chunked-stream parser of its own, so chunk boundaries, clean ends,
EOFs and resets are seen as they are) and curl. Also runs the fixture
in-process once (K8sApiServer), and over TLS (in-process and as a process,
certificates from certs.py: verification, watches, the token, bad clients,
"refuse"). Prints one line per failed check and a summary; exits 1 if
anything failed. Every wait has a deadline. Python 3 standard library only;
needs curl and openssl on PATH.
"""

import atexit
import collections
import gzip
import http.client
import inspect
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "k8s_api.py")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True     # the in-process test imports k8s_api

_TEMP_DIRS = []
_PROCS = []


def _cleanup():
    for p in _PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


# --------------------------------------------------------------------------
# Checks (the house format: FAIL lines, then one summary line)
# --------------------------------------------------------------------------

def _short(value, limit=300):
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "...(%d chars)" % len(r)


class Checks:
    def __init__(self):
        self.checks = 0
        self.failures = []
        self.current = None

    def fail(self, message):
        line = "FAIL %s: %s" % (self.current or "-", message)
        self.failures.append(line)
        print(line, flush=True)
        return False

    def check(self, cond, message):
        self.checks += 1
        return True if cond else self.fail(message)

    def eq(self, got, want, message):
        self.checks += 1
        if got != want:
            return self.fail("%s: got %s, want %s" % (message, _short(got), _short(want)))
        return True

    def run(self, tests):
        start = time.monotonic()
        failed_tests = 0
        for fn in tests:
            self.current = fn.__name__
            before = len(self.failures)
            try:
                fn(self) if inspect.signature(fn).parameters else fn()
            except Exception as e:
                self.fail("raised %s: %s" % (type(e).__name__, _short(str(e), 500)))
                print("\n".join("    " + l for l in traceback.format_exc().rstrip().splitlines()),
                      flush=True)
            if len(self.failures) > before:
                failed_tests += 1
        self.current = None
        print("%d tests, %d checks, %d failures (%d tests failed) in %.1f s"
              % (len(tests), self.checks, len(self.failures), failed_tests,
                 time.monotonic() - start), flush=True)
        return 1 if self.failures else 0


def wait_until(pred, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except Exception:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --------------------------------------------------------------------------
# The fixture as a process
# --------------------------------------------------------------------------

class ApiProcess:
    def __init__(self, *args, ready_timeout=10):
        self.dir = tempfile.mkdtemp(prefix="switchyard-k8s-api-test-")
        _TEMP_DIRS.append(self.dir)
        self.port_file = os.path.join(self.dir, "port")
        self.out_path = os.path.join(self.dir, "stdout")
        self.err_path = os.path.join(self.dir, "stderr")
        cmd = [sys.executable, FIXTURE, "--port", "0", "--port-file", self.port_file] + list(args)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _PROCS.append(self.proc)
        deadline = time.monotonic() + ready_timeout
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise RuntimeError("fixture exited with %s: %s"
                                   % (self.proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                raise RuntimeError("fixture not ready within %s s" % ready_timeout)
            time.sleep(0.02)
        with open(self.port_file, encoding="ascii") as f:
            self.port = int(f.read().strip())

    def stderr(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stdout(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, timeout=5):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


API = None      # the shared fixture process (started in main)


def port():
    return API.port


# --------------------------------------------------------------------------
# HTTP clients
# --------------------------------------------------------------------------

def call(method, path, body=None, headers=None, p=None, timeout=10, tls=None, host="127.0.0.1"):
    """(status, {lower-case header: value}, body bytes). tls: an
    ssl.SSLContext to speak HTTPS with."""
    if tls is not None:
        conn = http.client.HTTPSConnection(host, p or port(), timeout=timeout, context=tls)
    else:
        conn = http.client.HTTPConnection(host, p or port(), timeout=timeout)
    try:
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def jcall(method, path, body=None, headers=None, p=None, tls=None):
    status, hdrs, data = call(method, path, body, headers, p, tls=tls)
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = None
    return status, doc, hdrs


def ctl(method, path, body=None, p=None, tls=None):
    """A control API call that must succeed; returns its document."""
    status, doc, _ = jcall(method, "/_fixture/" + path, body, p=p, tls=tls)
    if status != 200:
        raise AssertionError("%s /_fixture/%s -> %s %r" % (method, path, status, doc))
    return doc


def current_rv(p=None):
    return int(ctl("GET", "state", p=p)["resourceVersion"])


class Watch:
    """A raw-socket HTTP client for one streaming response."""

    def __init__(self, path, p=None, headers=(), version="HTTP/1.1", timeout=5, tls=None):
        self.sock = socket.create_connection(("127.0.0.1", p or port()), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
        lines = ["GET %s %s" % (path, version), "Host: 127.0.0.1"] + \
                ["%s: %s" % h for h in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = bytearray()
        self.payload = bytearray()
        self.lines = collections.deque()
        self.chunks = []             # sizes of the data chunks received
        self.chunk_left = None
        self.end = None              # None, "clean", "eof", "reset"
        self.status = None
        self.headers = {}
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.raw:
            if not self._recv(deadline, parse=False):
                raise AssertionError("no response head for %s (end: %s, got %r)"
                                     % (path, self.end, bytes(self.raw[:200])))
        head, _, rest = bytes(self.raw).partition(b"\r\n\r\n")
        self.raw = bytearray(rest)
        first, *hlines = head.decode("latin-1").split("\r\n")
        self.status = int(first.split(" ")[1])
        for line in hlines:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.ended_at = None
        self._parse()

    def _recv(self, deadline, parse=True):
        if self.end is not None and self.end != "clean":
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            self.end = self.end or "reset"
            self.ended_at = self.ended_at or time.monotonic()
            return False
        if not data:
            self.end = self.end or "eof"
            self.ended_at = self.ended_at or time.monotonic()
            return False
        self.raw += data
        if parse:
            self._parse()
        return True

    def _parse(self):
        if not self.chunked:
            self.payload += self.raw
            self.raw.clear()
        else:
            while self.end is None:
                if self.chunk_left is None:
                    i = self.raw.find(b"\r\n")
                    if i < 0:
                        break
                    size = int(bytes(self.raw[:i]).split(b";")[0], 16)
                    if size == 0:
                        if self.raw[i + 2:i + 4] != b"\r\n":
                            break
                        del self.raw[:i + 4]
                        self.end = "clean"
                        self.ended_at = time.monotonic()
                        break
                    del self.raw[:i + 2]
                    self.chunks.append(size)
                    self.chunk_left = size
                else:
                    if len(self.raw) < self.chunk_left + 2:
                        take = min(len(self.raw), self.chunk_left)
                        self.payload += self.raw[:take]
                        del self.raw[:take]
                        self.chunk_left -= take
                        if self.chunk_left or len(self.raw) < 2:
                            break
                    else:
                        self.payload += self.raw[:self.chunk_left]
                        del self.raw[:self.chunk_left]
                        self.chunk_left = 0
                    if self.raw[:2] != b"\r\n":
                        raise AssertionError("chunk not followed by CRLF: %r" % bytes(self.raw[:20]))
                    del self.raw[:2]
                    self.chunk_left = None
        while True:
            i = self.payload.find(b"\n")
            if i < 0:
                break
            self.lines.append(bytes(self.payload[:i]))
            del self.payload[:i + 1]

    def next_line(self, timeout=5):
        deadline = time.monotonic() + timeout
        while not self.lines:
            if self.end is not None or not self._recv(deadline):
                if self.lines:
                    break
                return None
        return self.lines.popleft()

    def next(self, timeout=5):
        """The next event (a dict), or None at the deadline or the end."""
        line = self.next_line(timeout)
        return None if line is None else json.loads(line)

    def next_of(self, types, timeout=5):
        """The next event whose type is in `types` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(max(0.0, deadline - time.monotonic()))
            if ev is None or ev["type"] in types:
                return ev

    def events(self, n, timeout=5):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            ev = self.next(max(0.0, deadline - time.monotonic()))
            if ev is None:
                break
            out.append(ev)
        return out

    def drain_to_end(self, timeout=5):
        """Reads until the stream ends; returns (end, events read)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(max(0.0, deadline - time.monotonic()))
            if ev is not None:
                out.append(ev)
                continue
            if self.end is not None or time.monotonic() >= deadline:
                return self.end, out

    def quiet_for(self, seconds, types=None):
        """True if no event (of `types`) arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            ev = self.next(max(0.0, deadline - time.monotonic()))
            if ev is None:
                return True
            if types is None or ev["type"] in types:
                return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def watchers(p=None):
    return ctl("GET", "watchers", p=p)["watchers"]


def settle(c):
    """Waits until the watches earlier tests closed are gone."""
    return c.check(wait_until(lambda: watchers() == 0, 5), "watchers left from earlier tests")


# --------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------

def pod(ns, name, node, labels=None, phase="Running", ip="10.1.0.1"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "img"}]},
            "status": {"phase": phase, "podIP": ip, "hostIP": "192.168.0.1"}}


def endpoints(ns, name, ips, port=8080, labels=None):
    obj = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": name, "namespace": ns}, "subsets": []}
    if labels:
        obj["metadata"]["labels"] = labels
    if ips:
        obj["subsets"] = [{"addresses": [{"ip": ip, "nodeName": "node-a"} for ip in ips],
                           "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}]
    return obj


def put(*objs):
    doc = ctl("PUT", "objects", list(objs))
    return [r["object"] for r in doc["results"]]


def service_spec(ns, name, eps, ports=None, **extra):
    spec = {"namespace": ns, "name": name,
            "ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}],
            "endpoints": eps}
    spec.update(extra)
    return spec


RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

def test_startup(c):
    c.check(("listening on 127.0.0.1:%d" % port()) in API.stdout(), "stdout: %r" % API.stdout())
    status, doc, hdrs = jcall("GET", "/version")
    c.eq(status, 200, "/version status")
    c.check(doc and doc.get("major") == "1" and "gitVersion" in doc, "/version doc: %r" % doc)
    status, _, body = call("GET", "/healthz")
    c.eq((status, body), (200, b"ok"), "/healthz")
    status, hdrs, body = call("GET", "/nothing/here")
    c.eq((status, body), (404, b"404 page not found\n"), "a path outside /api")
    status, doc, _ = jcall("GET", "/api/v1/foos")
    c.eq(status, 404, "unknown resource status")
    c.eq(doc, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "the server could not find the requested resource",
               "reason": "NotFound", "details": {}, "code": 404}, "unknown resource Status")
    status, doc, _ = jcall("GET", "/apis/discovery.k8s.io/v1/namespaces/x/endpoints")
    c.eq(status, 404, "endpoints is not in discovery.k8s.io")
    status, doc, _ = jcall("POST", "/api/v1/namespaces/x/endpoints", {"kind": "Endpoints"})
    c.eq((status, doc and doc.get("reason")), (405, "MethodNotAllowed"), "POST to the API")


def test_state_file(c):
    d = tempfile.mkdtemp(prefix="switchyard-k8s-state-")
    _TEMP_DIRS.append(d)
    path = os.path.join(d, "state.json")
    with open(path, "w") as f:
        json.dump({"objects": [endpoints("s", "a", ["10.0.0.1"]), pod("s", "p", "n1")],
                   "services": [service_spec("s", "web", [{"ip": "10.0.0.9"}])]}, f)
    api = ApiProcess("--state", path)
    try:
        status, doc, _ = jcall("GET", "/api/v1/namespaces/s/endpoints/a", p=api.port)
        c.eq(status, 200, "object from --state")
        c.eq(doc and doc["metadata"]["resourceVersion"], "1", "first object is revision 1")
        status, doc, _ = jcall("GET", "/api/v1/namespaces/s/endpoints/web", p=api.port)
        c.eq(doc and doc["subsets"][0]["addresses"][0]["ip"], "10.0.0.9", "service from --state")
        c.eq(current_rv(api.port), 5, "one revision per object")
    finally:
        api.stop()
    with open(path, "w") as f:
        json.dump([pod("s", "only", "n1")], f)
    api = ApiProcess("--state", path)
    try:
        status, doc, _ = jcall("GET", "/api/v1/namespaces/s/pods", p=api.port)
        c.eq([i["metadata"]["name"] for i in doc["items"]], ["only"], "a plain list as --state")
    finally:
        api.stop()
    with open(path, "w") as f:
        f.write("[{\"kind\": \"Nope\"}]")
    bad = subprocess.run([sys.executable, FIXTURE, "--port", "0", "--state", path],
                         capture_output=True, text=True, timeout=10)
    c.eq(bad.returncode, 2, "a bad --state exits 2 (%s)" % bad.stderr.strip())


def test_get_and_list_shapes(c):
    ns = "shapes"
    ep, pd, svc, sl = put(
        endpoints(ns, "web", ["10.0.0.2", "10.0.0.1"], labels={"app": "web"}),
        pod(ns, "web-1", "node-a", {"app": "web"}),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "web", "namespace": ns},
         "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"app": "web"}}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "web-abcde", "namespace": ns,
                      "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "endpoints": [],
         "ports": [{"name": "http", "port": 8080}]})
    rv = current_rv()
    for obj, kind in ((ep, "Endpoints"), (pd, "Pod"), (svc, "Service"), (sl, "EndpointSlice")):
        m = obj["metadata"]
        c.eq(obj["kind"], kind, "%s kind" % kind)
        c.eq(list(obj)[:3], ["kind", "apiVersion", "metadata"], "%s key order" % kind)
        c.check(re.fullmatch(r"[0-9a-f-]{36}", m.get("uid", "")), "%s uid %r" % (kind, m))
        c.check(RFC3339.fullmatch(m.get("creationTimestamp", "")), "%s creationTimestamp" % kind)
        c.check(m["resourceVersion"].isdigit(), "%s resourceVersion" % kind)
        c.eq(list(m)[:6], ["name", "namespace", "uid", "resourceVersion", "creationTimestamp",
                           "labels"][:len(m)], "%s metadata key order" % kind)
    c.eq(svc["apiVersion"], "v1", "Service apiVersion")
    c.eq(sl["apiVersion"], "discovery.k8s.io/v1", "EndpointSlice apiVersion")
    # defaulting and encoding as the real server
    c.eq(svc["spec"]["ports"], [{"name": "http", "protocol": "TCP", "port": 80,
                                 "targetPort": 80}], "Service port defaults")
    c.check(re.fullmatch(r"10\.96\.\d+\.\d+", svc["spec"].get("clusterIP", "")),
            "clusterIP allocated: %r" % svc["spec"])
    c.eq(svc["spec"]["clusterIPs"], [svc["spec"]["clusterIP"]], "clusterIPs")
    c.eq(svc["spec"]["type"], "ClusterIP", "Service type")
    c.eq(sl["endpoints"], None, "an EndpointSlice with no endpoints has endpoints: null")
    c.eq(sl["ports"], [{"name": "http", "protocol": "TCP", "port": 8080}], "slice port defaults")
    c.eq(ep["subsets"][0]["ports"], [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "Endpoints ports")

    status, hdrs, body = call("GET", "/api/v1/namespaces/shapes/endpoints/web")
    c.eq(status, 200, "get status")
    c.eq(hdrs.get("content-type"), "application/json", "get Content-Type")
    c.eq(hdrs.get("content-length"), str(len(body)), "get Content-Length")
    c.check(body.endswith(b"}\n"), "body ends with a newline, as the real server's")
    c.eq(json.loads(body), ep, "get returns the stored object")

    status, doc, hdrs = jcall("GET", "/api/v1/namespaces/shapes/endpoints")
    c.eq(status, 200, "list status")
    c.eq(list(doc), ["kind", "apiVersion", "metadata", "items"], "list keys")
    c.eq((doc["kind"], doc["apiVersion"]), ("EndpointsList", "v1"), "list kind")
    c.eq(doc["metadata"], {"resourceVersion": str(rv)}, "list metadata")
    want = {k: v for k, v in ep.items() if k not in ("kind", "apiVersion")}
    c.eq(doc["items"], [want], "list items carry no kind/apiVersion")
    for path, kind, av in (("/api/v1/namespaces/shapes/pods", "PodList", "v1"),
                           ("/api/v1/namespaces/shapes/services", "ServiceList", "v1"),
                           ("/apis/discovery.k8s.io/v1/namespaces/shapes/endpointslices",
                            "EndpointSliceList", "discovery.k8s.io/v1")):
        status, doc, _ = jcall("GET", path)
        c.eq((status, doc["kind"], doc["apiVersion"], len(doc["items"])), (200, kind, av, 1),
             path)
    status, doc, _ = jcall("GET", "/api/v1/namespaces/shapes/services/web")
    c.eq(doc, svc, "get a Service")
    status, doc, _ = jcall("GET", "/apis/discovery.k8s.io/v1/namespaces/shapes/endpointslices/"
                           "web-abcde")
    c.eq(doc, sl, "get an EndpointSlice")

    status, doc, _ = jcall("GET", "/api/v1/namespaces/shapes/endpoints/x")
    c.eq(status, 404, "missing object status")
    c.eq(doc, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "endpoints \"x\" not found", "reason": "NotFound",
               "details": {"name": "x", "kind": "endpoints"}, "code": 404}, "404 Status")
    c.eq(json.dumps(doc, separators=(",", ":")),
         '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
         '"endpoints \\"x\\" not found","reason":"NotFound","details":{"name":"x","kind":'
         '"endpoints"},"code":404}', "404 Status key order")
    status, doc, _ = jcall("GET", "/apis/discovery.k8s.io/v1/namespaces/shapes/endpointslices/x")
    c.eq(doc, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "endpointslices.discovery.k8s.io \"x\" not found",
               "reason": "NotFound",
               "details": {"name": "x", "group": "discovery.k8s.io", "kind": "endpointslices"},
               "code": 404}, "404 Status of a grouped resource")
    status, doc, _ = jcall("GET", "/api/v1/namespaces/shapes/pods/nope")
    c.eq(doc and doc["message"], "pods \"nope\" not found", "404 for a pod")

    # all namespaces
    put(endpoints("shapes-2", "aaa", ["10.0.0.3"]))
    status, doc, _ = jcall("GET", "/api/v1/endpoints")
    keys = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in doc["items"]]
    c.check(("shapes", "web") in keys and ("shapes-2", "aaa") in keys, "all-namespaces list")
    c.eq(keys, sorted(keys, key=lambda k: "%s/%s" % k), "all-namespaces list in key order")
    status, doc, _ = jcall("GET", "/apis/discovery.k8s.io/v1/endpointslices")
    c.check(any(i["metadata"]["name"] == "web-abcde" for i in doc["items"]),
            "all-namespaces endpointslices")
    for path in ("/api/v1/pods", "/api/v1/services"):
        status, _, _ = jcall("GET", path)
        c.eq(status, 200, path)

    # keep-alive: several requests on one connection
    conn = http.client.HTTPConnection("127.0.0.1", port(), timeout=5)
    try:
        socks = []
        for path in ("/api/v1/namespaces/shapes/endpoints", "/api/v1/namespaces/shapes/pods",
                     "/api/v1/namespaces/shapes/endpoints/x"):
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            c.check(r.getheader("Connection") is None, "no Connection: close on %s" % path)
            socks.append(conn.sock)
        c.check(socks[0] is not None and socks[0] is socks[1] is socks[2],
                "keep-alive: one connection served three requests")
        conn.request("HEAD", "/api/v1/namespaces/shapes/endpoints/web")
        r = conn.getresponse()
        c.eq((r.status, r.read()), (200, b""), "HEAD has no body")
        c.check(int(r.getheader("Content-Length", "0")) > 0, "HEAD has Content-Length")
    finally:
        conn.close()
    status, doc, _ = jcall("GET", "/api/v1/namespaces/shapes/endpoints?pretty=true")
    c.eq(doc["kind"], "EndpointsList", "pretty=true still JSON")


def test_resource_versions(c):
    ns = "rv"
    rv0 = current_rv()
    a = put(endpoints(ns, "a", ["10.0.0.1"]))[0]
    c.eq(a["metadata"]["resourceVersion"], str(rv0 + 1), "create takes the next revision")
    b = put(endpoints(ns, "b", ["10.0.0.2"]))[0]
    c.eq(b["metadata"]["resourceVersion"], str(rv0 + 2), "second create")
    a2 = put(endpoints(ns, "a", ["10.0.0.1", "10.0.0.5"]))[0]
    c.eq(a2["metadata"]["resourceVersion"], str(rv0 + 3), "update takes the next revision")
    c.eq(a2["metadata"]["uid"], a["metadata"]["uid"], "update keeps the uid")
    c.eq(a2["metadata"]["creationTimestamp"], a["metadata"]["creationTimestamp"],
         "update keeps creationTimestamp")
    doc = ctl("PUT", "objects", endpoints(ns, "a", ["10.0.0.1", "10.0.0.5"]))
    c.eq((doc["results"][0]["changed"], doc["resourceVersion"]), (False, str(rv0 + 3)),
         "an identical write is a no-op")
    status, doc, _ = jcall("GET", "/api/v1/namespaces/rv/endpoints")
    c.eq(doc["metadata"]["resourceVersion"], str(rv0 + 3), "list rv = current revision")
    c.eq([i["metadata"]["resourceVersion"] for i in doc["items"]], [str(rv0 + 3), str(rv0 + 2)],
         "object rv = revision of its last change")
    doc = ctl("DELETE", "objects/endpoints/rv/b")
    c.eq(doc["resourceVersion"], str(rv0 + 4), "delete takes the next revision")
    c.eq(doc["object"]["metadata"]["resourceVersion"], str(rv0 + 4), "deleted object's rv")
    status, _, _ = jcall("DELETE", "/_fixture/objects/Endpoints/rv/b")
    c.eq(status, 404, "deleting a missing object")
    put(pod(ns, "p", "n"))
    c.eq(current_rv(), rv0 + 5, "one counter over all resources")

    # lists with old resourceVersions
    status, doc, _ = jcall("GET", "/api/v1/namespaces/rv/endpoints?resourceVersion=1")
    c.eq((status, doc["metadata"]["resourceVersion"]), (200, str(rv0 + 5)),
         "a list at an old rv serves the current state")
    status, doc, _ = jcall("GET", "/api/v1/namespaces/rv/endpoints?resourceVersion=%d"
                           "&resourceVersionMatch=Exact" % (rv0 + 2))
    c.eq(status, 200, "Exact list within the history")
    c.eq(doc["metadata"]["resourceVersion"], str(rv0 + 2), "Exact list rv")
    c.eq([(i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in doc["items"]],
         [("a", str(rv0 + 1)), ("b", str(rv0 + 2))], "Exact list = the state at that rv")
    status, doc, _ = jcall("GET", "/api/v1/namespaces/rv/endpoints?resourceVersion=abc")
    c.eq((status, doc["reason"]), (400, "BadRequest"), "a malformed resourceVersion")


def test_selectors(c):
    ns = "sel"
    put(pod(ns, "a1", "node-a", {"app": "web", "tier": "fe"}),
        pod(ns, "a2", "node-a", {"app": "db"}),
        pod(ns, "b1", "node-b", {"app": "web", "n": "5"}, phase="Pending"),
        pod(ns, "x1", "", {"app": "cache"}))

    def names(query, path="/api/v1/namespaces/sel/pods"):
        status, doc, _ = jcall("GET", path + "?" + query)
        if status != 200:
            return status, doc
        return [i["metadata"]["name"] for i in doc["items"]]

    c.eq(names("fieldSelector=spec.nodeName%3Dnode-a"), ["a1", "a2"], "spec.nodeName=")
    c.eq(names("fieldSelector=spec.nodeName==node-b"), ["b1"], "spec.nodeName==")
    c.eq(names("fieldSelector=spec.nodeName!=node-a"), ["b1", "x1"], "spec.nodeName!=")
    c.eq(names("fieldSelector=spec.nodeName="), ["x1"], "spec.nodeName= (unscheduled)")
    c.eq(names("fieldSelector=metadata.name=a2"), ["a2"], "metadata.name=")
    c.eq(names("fieldSelector=status.phase=Running,spec.nodeName=node-a"), ["a1", "a2"],
         "two field terms")
    c.eq(names("fieldSelector=metadata.namespace=sel&labelSelector=app=web"), ["a1", "b1"],
         "field and label selectors together")
    status, doc, _ = jcall("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a")
    got = [(i["metadata"]["namespace"], i["metadata"]["name"], i["spec"]["nodeName"])
           for i in doc["items"]]
    c.check(("sel", "a1", "node-a") in got and ("sel", "a2", "node-a") in got and
            all(g[2] == "node-a" for g in got), "all-namespaces pods by node: %r" % got)
    status, doc = names("fieldSelector=spec.foo=bar")
    c.eq(status, 400, "unsupported field")
    c.eq(doc, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "field label not supported: spec.foo", "reason": "BadRequest",
               "code": 400}, "unsupported field Status")
    status, doc = names("fieldSelector=spec.nodeName", "/api/v1/namespaces/sel/pods")
    c.eq(status, 400, "a field term without an operator")
    status, _ = names("fieldSelector=spec.nodeName=x", "/api/v1/namespaces/sel/endpoints")
    c.eq(status, 400, "spec.nodeName is a pod field only")

    c.eq(names("labelSelector=app%3Dweb"), ["a1", "b1"], "app=web")
    c.eq(names("labelSelector=app==web"), ["a1", "b1"], "app==web")
    c.eq(names("labelSelector=app!=web"), ["a2", "x1"], "app!=web")
    c.eq(names("labelSelector=tier!=fe"), ["a2", "b1", "x1"], "!= matches a missing label")
    c.eq(names("labelSelector=app=web,tier=fe"), ["a1"], "comma-joined")
    c.eq(names("labelSelector=tier"), ["a1"], "exists")
    c.eq(names("labelSelector=!tier"), ["a2", "b1", "x1"], "does not exist")
    c.eq(names("labelSelector=" + urllib.request.quote("app in (db,cache)")), ["a2", "x1"], "in")
    c.eq(names("labelSelector=" + urllib.request.quote("app notin (web), n")), [], "notin + exists")
    c.eq(names("labelSelector=" + urllib.request.quote("n>3")), ["b1"], "gt")
    status, doc = names("labelSelector=" + urllib.request.quote("app=we b"))
    c.eq((status, doc["reason"]), (400, "BadRequest"), "a bad label selector")
    status, doc = names("labelSelector=app=,,")
    c.eq(status, 400, "an empty term")

    ctl("PUT", "service", service_spec(ns, "web", [{"ip": "10.0.0.1"}]))
    ctl("PUT", "service", service_spec(ns, "web2", [{"ip": "10.0.0.2"}]))
    base = "/apis/discovery.k8s.io/v1/namespaces/sel/endpointslices"
    for q in ("labelSelector=kubernetes.io/service-name%3Dweb",
              "labelSelector=kubernetes.io%2Fservice-name%3D%3Dweb"):
        status, doc, _ = jcall("GET", base + "?" + q)
        c.eq([i["metadata"]["labels"]["kubernetes.io/service-name"] for i in doc["items"]],
             ["web"], "endpointslices by service name (%s)" % q)
    status, doc, _ = jcall("GET", base + "?labelSelector=kubernetes.io/service-name!=web")
    c.eq([i["metadata"]["labels"]["kubernetes.io/service-name"] for i in doc["items"]],
         ["web2"], "endpointslices by service name !=")


def test_service_convenience(c):
    ns = "conv"
    rv0 = current_rv()
    doc = ctl("PUT", "service", service_spec(ns, "web", [
        {"ip": "10.0.0.2", "nodeName": "node-b", "pod": "web-b"},
        {"ip": "10.0.0.1", "nodeName": "node-a", "pod": "web-a"}], labels={"team": "x"}))
    c.eq(doc["resourceVersion"], str(rv0 + 3), "service + endpoints + slice: three revisions")
    svc, ep, sl = doc["service"], doc["endpoints"], doc["endpointSlice"]
    c.eq([svc["metadata"]["resourceVersion"], ep["metadata"]["resourceVersion"],
          sl["metadata"]["resourceVersion"]], [str(rv0 + 1), str(rv0 + 2), str(rv0 + 3)],
         "written in the order Service, Endpoints, EndpointSlice")
    c.eq(svc["spec"]["ports"], [{"name": "http", "protocol": "TCP", "port": 80,
                                 "targetPort": 8080}], "service ports")
    c.eq(svc["spec"]["selector"], {"app": "web"}, "service selector")
    c.eq(svc["metadata"]["labels"], {"team": "x"}, "service labels")
    c.check(svc["spec"]["clusterIP"].startswith("10.96."), "clusterIP")
    c.eq(ep["subsets"], [{
        "addresses": [
            {"ip": "10.0.0.1", "nodeName": "node-a",
             "targetRef": {"kind": "Pod", "namespace": ns, "name": "web-a",
                           "uid": ep["subsets"][0]["addresses"][0]["targetRef"]["uid"]}},
            {"ip": "10.0.0.2", "nodeName": "node-b",
             "targetRef": {"kind": "Pod", "namespace": ns, "name": "web-b",
                           "uid": ep["subsets"][0]["addresses"][1]["targetRef"]["uid"]}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}],
        "Endpoints subsets (sorted by ip; ports are target ports)")
    c.eq(sl["metadata"]["labels"]["kubernetes.io/service-name"], "web", "slice service label")
    c.eq(sl["metadata"]["labels"]["team"], "x", "slice copies service labels")
    c.check(re.fullmatch(r"web-[a-z0-9]{5}", sl["metadata"]["name"]), "slice name %r"
            % sl["metadata"]["name"])
    c.eq(sl["metadata"]["ownerReferences"][0]["uid"], svc["metadata"]["uid"], "slice owner")
    c.eq(sl["addressType"], "IPv4", "addressType")
    c.eq(sl["ports"], [{"name": "http", "protocol": "TCP", "port": 8080}], "slice ports")
    c.eq(sl["endpoints"][0], {
        "addresses": ["10.0.0.2"], "conditions": {"ready": True, "serving": True,
                                                  "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": ns, "name": "web-b",
                      "uid": sl["endpoints"][0]["targetRef"]["uid"]},
        "nodeName": "node-b"}, "slice endpoint")

    doc = ctl("PUT", "service", service_spec(ns, "web", [
        {"ip": "10.0.0.2", "nodeName": "node-b", "pod": "web-b"},
        {"ip": "10.0.0.1", "nodeName": "node-a", "pod": "web-a"}], labels={"team": "x"}))
    c.eq(doc["resourceVersion"], str(rv0 + 3), "the same service again: no change")
    c.eq(doc["endpointSlice"]["metadata"]["name"], sl["metadata"]["name"], "stable slice name")

    doc = ctl("PUT", "service", service_spec(ns, "web", [
        {"ip": "10.0.0.1", "nodeName": "node-a", "ready": True},
        {"ip": "10.0.0.3", "nodeName": "node-a", "ready": False},
        {"ip": "10.0.0.4", "nodeName": "node-b", "ready": False, "terminating": True,
         "serving": True}], labels={"team": "x"}))
    c.eq(doc["resourceVersion"], str(rv0 + 5), "changed endpoints: Endpoints + slice rewritten")
    c.eq(doc["service"]["metadata"]["resourceVersion"], str(rv0 + 1), "service unchanged")
    sub = doc["endpoints"]["subsets"][0]
    c.eq([a["ip"] for a in sub["addresses"]], ["10.0.0.1"], "ready -> addresses")
    c.eq([a["ip"] for a in sub["notReadyAddresses"]], ["10.0.0.3"],
         "not ready -> notReadyAddresses (terminating left out)")
    c.eq([(e["addresses"], e["conditions"]) for e in doc["endpointSlice"]["endpoints"]], [
        (["10.0.0.1"], {"ready": True, "serving": True, "terminating": False}),
        (["10.0.0.3"], {"ready": False, "serving": False, "terminating": False}),
        (["10.0.0.4"], {"ready": False, "serving": True, "terminating": True})],
        "slice conditions")

    doc = ctl("PUT", "service", service_spec(ns, "web", [], labels={"team": "x"}))
    c.check("subsets" not in doc["endpoints"], "no endpoints: no subsets key: %r"
            % doc["endpoints"])
    c.eq(doc["endpointSlice"]["endpoints"], None, "no endpoints: slice endpoints null")
    status, body_doc, _ = jcall("GET", "/api/v1/namespaces/conv/endpoints/web")
    c.check("subsets" not in body_doc, "GET of an empty Endpoints has no subsets")

    doc = ctl("PUT", "service", service_spec(ns, "ds", [
        {"ip": "10.2.0.1", "nodeName": "node-a", "hostIP": "192.168.1.1"},
        {"ip": "10.2.0.2", "nodeName": "node-b"}], pods=True))
    c.eq(len(doc["pods"]), 2, "pods: true writes pods")
    status, pods_doc, _ = jcall("GET", "/api/v1/namespaces/conv/pods?fieldSelector="
                                "spec.nodeName%3Dnode-a")
    c.eq([(p["status"]["podIP"], p["status"].get("hostIP"), p["metadata"]["labels"])
          for p in pods_doc["items"]], [("10.2.0.1", "192.168.1.1", {"app": "ds"})],
         "pods on node-a")
    c.eq(doc["endpoints"]["subsets"][0]["addresses"][0]["targetRef"]["uid"],
         pods_doc["items"][0]["metadata"]["uid"], "targetRef uid = pod uid")
    doc = ctl("PUT", "service", service_spec(ns, "ds", [{"ip": "10.2.0.2", "nodeName": "node-b"}],
                                            pods=True))
    status, pods_doc, _ = jcall("GET", "/api/v1/namespaces/conv/pods?labelSelector=app%3Dds")
    c.eq([p["status"]["podIP"] for p in pods_doc["items"]], ["10.2.0.2"], "stale pods deleted")
    status, _, _ = jcall("PUT", "/_fixture/service", {"namespace": ns, "name": "v6", "ports": [
        {"name": "p", "port": 80}], "endpoints": [{"ip": "fd00::1"}]})
    status, doc, _ = jcall("GET", "/apis/discovery.k8s.io/v1/namespaces/conv/endpointslices?"
                           "labelSelector=kubernetes.io/service-name%3Dv6")
    c.eq(doc["items"][0]["addressType"], "IPv6", "IPv6 slice")

    doc = ctl("DELETE", "service/conv/web")
    c.eq(doc["deleted"], 3, "service delete removes three objects")
    for path in ("/api/v1/namespaces/conv/services/web", "/api/v1/namespaces/conv/endpoints/web",
                 "/apis/discovery.k8s.io/v1/namespaces/conv/endpointslices/" +
                 sl["metadata"]["name"]):
        status, _, _ = jcall("GET", path)
        c.eq(status, 404, "gone: " + path)
    status, doc, _ = jcall("PUT", "/_fixture/service", {"namespace": ns, "name": "bad",
                                                       "ports": [{"port": "x"}]})
    c.eq(status, 400, "a bad service spec")


def test_watch_initial_and_changes(c):
    ns = "w1"
    ctl("PUT", "service", service_spec(ns, "web", [{"ip": "10.0.0.1", "nodeName": "node-a"}]))
    ctl("PUT", "service", service_spec(ns, "db", [{"ip": "10.0.0.7"}]))
    put(endpoints("w1-other", "web", ["10.9.0.1"]))
    with Watch("/api/v1/namespaces/w1/endpoints?watch=1") as w, \
            Watch("/api/v1/namespaces/w1/endpoints?watch=true&resourceVersion=0") as w0, \
            Watch("/api/v1/endpoints?watch=true") as wall, \
            Watch("/api/v1/watch/namespaces/w1/endpoints/web") as wname, \
            Watch("/api/v1/namespaces/w1/endpoints?watch=1&fieldSelector=metadata.name%3Dweb") \
            as wfield:
        c.eq(w.status, 200, "watch status")
        c.eq(w.headers.get("content-type"), "application/json", "watch Content-Type")
        c.eq(w.headers.get("transfer-encoding"), "chunked", "watch is chunked")
        c.check("content-length" not in w.headers, "watch has no Content-Length")
        for name, s in (("unset", w), ("0", w0)):
            evs = s.events(2)
            c.eq([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                 [("ADDED", "db"), ("ADDED", "web")], "initial ADDED (rv %s)" % name)
            if evs:
                c.eq((evs[0]["object"]["kind"], evs[0]["object"]["apiVersion"]),
                     ("Endpoints", "v1"), "event objects carry kind/apiVersion")
                c.eq(list(evs[0]), ["type", "object"], "event keys")
        first = wname.next()
        c.eq(first and (first["type"], first["object"]["metadata"]["name"]), ("ADDED", "web"),
             "named watch (/watch/ path) initial event")
        first = wfield.next()
        c.eq(first and (first["type"], first["object"]["metadata"]["name"]), ("ADDED", "web"),
             "fieldSelector metadata.name initial event")
        evs = []
        while True:
            ev = wall.next(0.3)
            if ev is None:
                break
            evs.append(ev)
        c.eq(sorted((e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"])
                    for e in evs if e["object"]["metadata"]["namespace"].startswith("w1")),
             [("w1", "db"), ("w1", "web"), ("w1-other", "web")],
             "all-namespaces watch sees every namespace")

        doc = ctl("PUT", "service", service_spec(ns, "web", [
            {"ip": "10.0.0.1", "nodeName": "node-a"}, {"ip": "10.0.0.2", "nodeName": "node-b"}]))
        new_ep = doc["endpoints"]
        for name, s in (("unset", w), ("0", w0), ("named", wname), ("field", wfield)):
            ev = s.next()
            c.eq(ev, {"type": "MODIFIED", "object": new_ep}, "MODIFIED on %s watch" % name)
        ctl("PUT", "service", service_spec(ns, "db", [{"ip": "10.0.0.8"}]))
        ev = w.next()
        c.eq(ev and (ev["type"], ev["object"]["metadata"]["name"]), ("MODIFIED", "db"),
             "change of another object")
        c.check(wname.quiet_for(0.2), "the named watch does not see another object")
        gone = ctl("DELETE", "objects/endpoints/w1/web")
        ev = w.next()
        c.eq(ev and ev["type"], "DELETED", "DELETED")
        if ev:
            c.eq(ev["object"]["metadata"]["resourceVersion"], gone["resourceVersion"],
                 "DELETED carries the deletion's resourceVersion")
            c.eq(ev["object"]["subsets"], new_ep["subsets"], "DELETED carries the last state")
        ev = wname.next()
        c.eq(ev and ev["type"], "DELETED", "named watch sees the delete")
        put(endpoints(ns, "web", ["10.0.0.9"]))
        ev = wname.next()
        c.eq(ev and ev["type"], "ADDED", "named watch sees the re-create")
        w.next()
        put(endpoints("w1-other", "web", ["10.9.0.2"]))
        c.check(w.quiet_for(0.2), "a namespaced watch does not see another namespace")

    status, doc, hdrs = jcall("GET", "/api/v1/namespaces/w1/endpoints/web?watch=true")
    c.eq((status, doc and doc.get("kind"), "content-length" in hdrs), (200, "Endpoints", True),
         "watch=true on a named GET returns the object (as the real server)")


def test_watch_from_resource_version(c):
    ns = "w2"
    rv0 = current_rv()
    put(endpoints(ns, "a", ["10.0.0.1"]))                       # rv0+1
    put(endpoints(ns, "a", ["10.0.0.2"]))                       # rv0+2
    put(pod(ns, "noise", "n"))                                  # rv0+3 (another resource)
    put(endpoints(ns, "b", ["10.0.0.3"]))                       # rv0+4
    ctl("DELETE", "objects/endpoints/w2/a")                     # rv0+5
    with Watch("/api/v1/namespaces/w2/endpoints?watch=1&resourceVersion=%d" % rv0) as w:
        evs = w.events(4)
        c.eq([(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]
               ["resourceVersion"]) for e in evs],
             [("ADDED", "a", str(rv0 + 1)), ("MODIFIED", "a", str(rv0 + 2)),
              ("ADDED", "b", str(rv0 + 4)), ("DELETED", "a", str(rv0 + 5))],
             "every change after the rv, in order")
        c.check(w.quiet_for(0.1), "nothing more")
        put(endpoints(ns, "c", ["10.0.0.4"]))
        ev = w.next()
        c.eq(ev and (ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "c"),
             "then live changes")
    with Watch("/api/v1/namespaces/w2/endpoints?watch=1&resourceVersion=%d" % (rv0 + 2)) as w:
        evs = w.events(3)
        c.eq([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
             [("ADDED", "b"), ("DELETED", "a"), ("ADDED", "c")], "from a later rv")
    now = current_rv()
    with Watch("/api/v1/namespaces/w2/endpoints?watch=1&resourceVersion=%d" % (now + 2)) as w:
        put(endpoints(ns, "f1", ["10.0.0.5"]))                  # now+1
        put(endpoints(ns, "f2", ["10.0.0.5"]))                  # now+2
        put(endpoints(ns, "f3", ["10.0.0.5"]))                  # now+3
        ev = w.next()
        c.eq(ev and ev["object"]["metadata"]["name"], "f3", "a future rv: changes after it only")
    with Watch("/api/v1/namespaces/w2/endpoints?watch=1&resourceVersion=zz") as w:
        c.eq(w.status, 400, "a malformed resourceVersion on a watch")


def test_watch_selector_transitions(c):
    ns = "w3"
    with Watch("/api/v1/namespaces/w3/pods?watch=1&labelSelector=app%3Dweb") as wl, \
            Watch("/api/v1/namespaces/w3/pods?watch=1&fieldSelector=spec.nodeName%3Dnode-a") \
            as wf:
        p1 = put(pod(ns, "p1", "node-a", {"app": "web"}))[0]
        for s, what in ((wl, "label"), (wf, "field")):
            ev = s.next()
            c.eq(ev, {"type": "ADDED", "object": p1}, "%s watch: ADDED" % what)
        put(pod(ns, "p2", "node-b", {"app": "db"}))
        c.check(wl.quiet_for(0.15) and wf.quiet_for(0.05), "a non-matching object is not sent")
        p1b = put(pod(ns, "p1", "node-a", {"app": "db"}))[0]
        ev = wl.next()
        c.eq(ev and ev["type"], "DELETED", "stops matching -> DELETED")
        if ev:
            c.eq(ev["object"]["metadata"]["labels"], {"app": "web"},
                 "DELETED carries the previous content")
            c.eq(ev["object"]["metadata"]["resourceVersion"], p1b["metadata"]["resourceVersion"],
                 "... with the event's resourceVersion")
        ev = wf.next()
        c.eq(ev and ev["type"], "MODIFIED", "still matching the field selector -> MODIFIED")
        put(pod(ns, "p1", "node-a", {"app": "web"}))
        ev = wl.next()
        c.eq(ev and ev["type"], "ADDED", "matches again -> ADDED")
        wf.next()
        put(pod(ns, "p1", "node-b", {"app": "web"}))
        ev = wf.next()
        c.eq(ev and (ev["type"], ev["object"]["spec"]["nodeName"]), ("DELETED", "node-a"),
             "moved off the node -> DELETED with the old node")
        ev = wl.next()
        c.eq(ev and ev["type"], "MODIFIED", "label watch: MODIFIED")
    status, body, _ = jcall("GET", "/api/v1/namespaces/w3/pods?watch=1&"
                            "fieldSelector=spec.bogus%3Dx")
    c.eq(status, 400, "an unsupported field on a watch: 400")
    c.eq(body and body.get("message"), "field label not supported: spec.bogus", "its Status")


def test_watch_expired(c):
    ns = "w4"
    try:
        ctl("POST", "compact", {"historySize": 5})
        rv0 = current_rv()
        for i in range(10):
            put(endpoints(ns, "e%d" % i, ["10.0.0.%d" % (i + 1)]))
        state = ctl("GET", "state")
        m = int(state["compactedResourceVersion"])
        c.eq(m, rv0 + 5, "a history of 5: compacted up to 5 events ago")
        c.eq(state["historyEvents"], 5, "historyEvents")
        ctl("DELETE", "requests")
        with Watch("/api/v1/namespaces/w4/endpoints?watch=1&resourceVersion=%d" % rv0) as w:
            c.eq(w.status, 200, "an expired watch still answers 200")
            ev = w.next()
            c.eq(ev, {"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "too old resource version: %d (%d)" % (rv0, m),
                "reason": "Expired", "code": 410}}, "ERROR 410 Expired event")
            end, rest = w.drain_to_end(3)
            c.eq((end, rest), ("clean", []), "then the stream ends cleanly")
        with Watch("/api/v1/namespaces/w4/endpoints?watch=1&resourceVersion=%d" % m) as w:
            evs = w.events(5)
            c.eq([e["type"] for e in evs], ["ADDED"] * 5, "the oldest kept rv still works")
        log = ctl("GET", "requests")["requests"]
        c.eq([(r["path"], r["params"].get("resourceVersion"), r["watch"], r["status"])
              for r in log],
             [("/api/v1/namespaces/w4/endpoints", str(rv0), True, 200),
              ("/api/v1/namespaces/w4/endpoints", str(m), True, 200)],
             "the request log shows the watches")

        ctl("POST", "compact", {"historySize": 1000})
        before = current_rv()
        put(endpoints(ns, "late", ["10.0.1.1"]))
        doc = ctl("POST", "compact")
        c.eq(doc["compactedResourceVersion"], doc["resourceVersion"], "compact: up to now")
        with Watch("/api/v1/namespaces/w4/endpoints?watch=true&resourceVersion=%d" % before) as w:
            ev = w.next()
            c.eq(ev and (ev["type"], ev["object"]["code"], ev["object"]["reason"]),
                 ("ERROR", 410, "Expired"), "after compact: 410")
        with Watch("/api/v1/namespaces/w4/endpoints?watch=true&resourceVersion=%s"
                   % doc["resourceVersion"]) as w:
            c.check(w.quiet_for(0.1), "a watch from the compacted rv: no error")
        status, ldoc, _ = jcall("GET", "/api/v1/namespaces/w4/endpoints?resourceVersion=%d"
                                % before)
        c.eq((status, len(ldoc["items"])), (200, 11), "a list at a compacted rv: current state")
        status, ldoc, _ = jcall("GET", "/api/v1/namespaces/w4/endpoints?resourceVersion=%d"
                                "&resourceVersionMatch=Exact" % before)
        c.eq((status, ldoc["reason"], ldoc["code"]), (410, "Expired", 410),
             "an Exact list at a compacted rv: 410")
        with Watch("/api/v1/namespaces/w4/endpoints?watch=true") as w:
            c.eq(len(w.events(11)), 11, "a watch without rv after compaction: full ADDED set")
    finally:
        ctl("POST", "compact", {"historySize": 1000})


def test_bookmarks(c):
    ns = "w5"
    put(endpoints(ns, "a", ["10.0.0.1"]))
    try:
        ctl("POST", "bookmarks", {"intervalMs": 100})
        with Watch("/api/v1/namespaces/w5/endpoints?watch=1&allowWatchBookmarks=true") as w, \
                Watch("/api/v1/namespaces/w5/endpoints?watch=1") as plain, \
                Watch("/apis/discovery.k8s.io/v1/endpointslices?watch=1&"
                      "allowWatchBookmarks=true&resourceVersion=%d" % current_rv()) as ws:
            c.eq(w.next()["type"], "ADDED", "initial event first")
            t0 = time.monotonic()
            ev = w.next(3)
            rv = current_rv()
            c.eq(ev, {"type": "BOOKMARK", "object": {"kind": "Endpoints", "apiVersion": "v1",
                                                     "metadata": {"resourceVersion": str(rv)}}},
                 "BOOKMARK shape")
            c.check(time.monotonic() - t0 < 1.5, "bookmark within the interval")
            ev = ws.next(3)
            c.eq(ev and ev["object"], {"kind": "EndpointSlice",
                                        "apiVersion": "discovery.k8s.io/v1",
                                        "metadata": {"resourceVersion": str(rv)}},
                 "EndpointSlice BOOKMARK")
            c.eq(plain.next()["type"], "ADDED", "plain watch initial event")
            c.check(plain.quiet_for(0.4), "no bookmarks without allowWatchBookmarks")
            e2 = put(endpoints(ns, "b", ["10.0.0.2"]))[0]
            ev = w.next_of({"ADDED"}, 3)
            c.eq(ev and ev["object"]["metadata"]["name"], "b", "event between bookmarks")
            ev = w.next_of({"BOOKMARK"}, 3)
            c.check(ev and int(ev["object"]["metadata"]["resourceVersion"]) >=
                    int(e2["metadata"]["resourceVersion"]),
                    "a bookmark never goes below an event sent: %r" % ev)
            ctl("POST", "bookmarks", {"intervalMs": 0})
            w.next_of({"NONE"}, 0.15)             # what was already queued
            c.check(w.quiet_for(0.4), "intervalMs 0: no bookmarks")
        ctl("POST", "bookmarks", {"intervalMs": 5000})
        with Watch("/api/v1/namespaces/w5/endpoints?watch=1&sendInitialEvents=true&"
                   "allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&"
                   "resourceVersion=") as w:
            evs = w.events(3)
            c.eq([e["type"] for e in evs], ["ADDED", "ADDED", "BOOKMARK"],
                 "sendInitialEvents: ADDED..., BOOKMARK")
            if len(evs) == 3:
                c.eq(evs[2]["object"]["metadata"], {
                    "resourceVersion": str(current_rv()),
                    "annotations": {"k8s.io/initial-events-end": "true"}},
                    "initial-events-end bookmark")
        with Watch("/api/v1/namespaces/w5/endpoints?watch=1&sendInitialEvents=true") as w:
            c.eq(w.status, 400, "sendInitialEvents without its companions: 400")
    finally:
        ctl("POST", "bookmarks", {"intervalMs": 1000})


def test_timeout_seconds(c):
    ns = "w6"
    put(endpoints(ns, "a", ["10.0.0.1"]))
    t0 = time.monotonic()
    w = Watch("/api/v1/namespaces/w6/endpoints?watch=1&timeoutSeconds=1")
    try:
        end, evs = w.drain_to_end(5)
        took = w.ended_at - t0 if w.ended_at else None
        c.eq((end, [e["type"] for e in evs]), ("clean", ["ADDED"]), "ends with a terminating chunk")
        c.check(took is not None and 0.8 <= took <= 3, "after ~1 s (%s)" % took)
        # the connection stays usable
        w.sock.sendall(b"GET /api/v1/namespaces/w6/endpoints/a HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        buf = bytearray(w.raw)
        while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
            w.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = w.sock.recv(65536)
            if not data:
                break
            buf += data
        c.check(buf.startswith(b"HTTP/1.1 200 "), "keep-alive after the watch: %r" % bytes(buf[:60]))
    finally:
        w.close()
    r = subprocess.run(["curl", "-sS", "-N", "--max-time", "10",
                        "http://127.0.0.1:%d/api/v1/namespaces/w6/endpoints?watch=1&"
                        "timeoutSeconds=1" % port()], capture_output=True, text=True, timeout=15)
    c.eq(r.returncode, 0, "curl reads a timed-out watch to its clean end (%s)" % r.stderr.strip())
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    c.eq([e["type"] for e in lines], ["ADDED"], "curl watch events")


def test_drop_watches(c):
    ns = "w7"
    put(endpoints(ns, "a", ["10.0.0.1"]))
    settle(c)
    base = 0
    ws = [Watch("/api/v1/namespaces/w7/endpoints?watch=1") for _ in range(3)]
    try:
        for w in ws:
            w.next()
        c.check(wait_until(lambda: watchers() == base + 3, 5), "watchers counts three")
        info = ctl("GET", "watchers")
        c.check(all(s["path"] == "/api/v1/namespaces/w7/endpoints" for s in info["streams"]
                    if s["namespace"] == "w7"), "watchers lists the streams: %r" % info)
        doc = ctl("POST", "drop-watches")
        c.eq(doc["dropped"], base + 3, "dropped count")
        for i, w in enumerate(ws):
            end, evs = w.drain_to_end(5)
            c.eq((end, evs), ("eof", []), "watch %d: cut without a terminating chunk" % i)
        c.check(wait_until(lambda: watchers() == 0, 5), "no watchers left")
    finally:
        for w in ws:
            w.close()
    w = Watch("/api/v1/namespaces/w7/endpoints?watch=1")
    try:
        w.next()
        wait_until(lambda: watchers() == 1, 5)
        ctl("POST", "drop-watches", {"reset": True})
        end, _ = w.drain_to_end(5)
        c.eq(end, "reset", "drop with reset: the client sees a connection reset")
    finally:
        w.close()
    # a client that goes away is forgotten
    w = Watch("/api/v1/namespaces/w7/endpoints?watch=1")
    w.next()
    c.check(wait_until(lambda: watchers() == 1, 5), "one watcher")
    w.close()
    c.check(wait_until(lambda: watchers() == 0, 5), "a closed client is noticed")


def test_down(c):
    ns = "w8"
    put(endpoints(ns, "a", ["10.0.0.1"]))
    path = "/api/v1/namespaces/w8/endpoints"
    w = Watch(path + "?watch=1")
    try:
        w.next()
        t0 = time.monotonic()
        doc = ctl("POST", "down", {"seconds": 1, "mode": "503"})
        c.eq(doc["down"]["mode"], "503", "down answer")
        end, _ = w.drain_to_end(5)
        c.eq(end, "eof", "down drops open watches")
        status, sdoc, _ = jcall("GET", path)
        c.eq(status, 503, "503 while down")
        c.eq((sdoc["kind"], sdoc["reason"], sdoc["code"]), ("Status", "ServiceUnavailable", 503),
             "a 503 Status")
        with Watch(path + "?watch=1") as w2:
            c.eq(w2.status, 503, "a new watch while down: 503")
        c.eq(ctl("GET", "state")["down"]["mode"], "503", "the control API works while down")
        c.check(wait_until(lambda: call("GET", path)[0] == 200, 5), "up again after the period")
        c.check(time.monotonic() - t0 >= 0.9, "down for about a second")
    finally:
        w.close()

    ctl("POST", "down", {"mode": "close", "seconds": 30})
    ctl("DELETE", "requests")
    try:
        call("GET", path)
        c.fail("mode close: a request got an answer")
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        pass
    s = socket.create_connection(("127.0.0.1", port()), timeout=5)
    try:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        c.eq(data, b"", "mode close: closed without a byte")
    finally:
        s.close()
    log = ctl("GET", "requests")["requests"]
    c.eq([(r["path"], r["status"]) for r in log], [(path, None), (path, None)],
         "closed requests are logged with status null")
    ctl("POST", "up")
    status, _, _ = jcall("GET", path)
    c.eq(status, 200, "/up ends the period at once")
    ctl("POST", "down", {})
    c.eq(call("GET", path)[0], 503, "down without seconds: until /up")
    ctl("POST", "up")
    c.eq(call("GET", path)[0], 200, "up")
    status, doc, _ = jcall("POST", "/_fixture/down", {"mode": "sideways"})
    c.eq(status, 400, "a bad mode")


def test_down_refuse(c):
    api = ApiProcess()
    try:
        p = api.port
        ctl("PUT", "objects", endpoints("r", "a", ["10.0.0.1"]), p=p)
        w = Watch("/api/v1/namespaces/r/endpoints?watch=1", p=p)
        w.next()
        t0 = time.monotonic()
        ctl("POST", "down", {"mode": "refuse", "seconds": 1}, p=p)
        end, _ = w.drain_to_end(5)
        c.check(end in ("eof", "reset"), "refuse cuts open watches (%s)" % end)
        w.close()
        try:
            socket.create_connection(("127.0.0.1", p), timeout=2).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        c.check(refused, "connections are refused")
        c.check(wait_until(lambda: call("GET", "/api/v1/namespaces/r/endpoints/a", p=p)[0] == 200,
                           5), "listening again on the same port")
        c.check(time.monotonic() - t0 >= 0.9, "refused for about a second")
        c.eq(ctl("GET", "state", p=p)["down"], None, "state: up")
        c.eq(api.stop(), 0, "exit status")
        c.check("Traceback" not in api.stderr(), "no traceback: %r" % api.stderr()[-500:])
    finally:
        api.stop()


def test_requests_log(c):
    ctl("DELETE", "requests")
    call("GET", "/api/v1/namespaces/log/endpoints?limit=5&labelSelector=a%3Db",
         headers={"User-Agent": "switchyard-test/1"})
    call("GET", "/api/v1/namespaces/log/endpoints/x")
    ctl("GET", "state")
    with Watch("/api/v1/namespaces/log/endpoints?watch=true&timeoutSeconds=1") as w:
        w.drain_to_end(5)
    doc = ctl("GET", "requests")
    log = doc["requests"]
    c.eq([(r["method"], r["path"], r["query"], r["watch"], r["status"]) for r in log], [
        ("GET", "/api/v1/namespaces/log/endpoints", "limit=5&labelSelector=a%3Db", False, 200),
        ("GET", "/api/v1/namespaces/log/endpoints/x", "", False, 404),
        ("GET", "/api/v1/namespaces/log/endpoints", "watch=true&timeoutSeconds=1", True, 200)],
        "the log (control requests not included)")
    if log:
        c.eq(log[0]["params"], {"limit": "5", "labelSelector": "a=b"}, "params decoded")
        c.eq(log[0]["userAgent"], "switchyard-test/1", "userAgent")
        since = ctl("GET", "requests?since=%d" % log[1]["seq"])["requests"]
        c.eq([r["seq"] for r in since], [log[1]["seq"], log[2]["seq"]], "?since=")
        c.eq(doc["next"], log[-1]["seq"] + 1, "next")
    ctl("DELETE", "requests")
    c.eq(ctl("GET", "requests")["requests"], [], "cleared")


def test_token(c):
    api = ApiProcess("--token", "s3cret")
    try:
        p = api.port
        path = "/api/v1/namespaces/t/endpoints"
        status, doc, _ = jcall("GET", path, p=p)
        c.eq(status, 401, "no token: 401")
        c.eq(doc, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401},
             "401 Status")
        c.eq(jcall("GET", path, headers={"Authorization": "Bearer nope"}, p=p)[0], 401,
             "wrong token")
        c.eq(jcall("GET", path, headers={"Authorization": "Basic czNjcmV0"}, p=p)[0], 401,
             "not a bearer token")
        c.eq(jcall("GET", path, headers={"Authorization": "Bearer s3cret"}, p=p)[0], 200,
             "right token")
        c.eq(jcall("GET", "/version", p=p)[0], 200, "/version needs no token")
        c.eq(ctl("GET", "state", p=p)["token"], True, "control API needs no token")
        with Watch(path + "?watch=1", p=p) as w:
            c.eq(w.status, 401, "a watch without the token")
        with Watch(path + "?watch=1&timeoutSeconds=1", p=p,
                   headers=[("Authorization", "Bearer s3cret")]) as w:
            c.eq((w.status, w.drain_to_end(5)[0]), (200, "clean"), "a watch with the token")
        ctl("POST", "token", {"token": "next"}, p=p)
        c.eq(jcall("GET", path, headers={"Authorization": "Bearer s3cret"}, p=p)[0], 401,
             "old token after rotation")
        c.eq(jcall("GET", path, headers={"Authorization": "Bearer next"}, p=p)[0], 200,
             "new token")
        log = ctl("GET", "requests", p=p)["requests"]
        c.eq(log[-1]["authorization"], "Bearer next", "the log records Authorization")
        ctl("POST", "token", {"token": None}, p=p)
        c.eq(jcall("GET", path, p=p)[0], 200, "token null: open")
    finally:
        api.stop()


def test_pagination(c):
    ns = "page"
    for name in ("b", "c", "d", "e", "f"):
        put(endpoints(ns, name, ["10.0.0.1"]))
    base = "/api/v1/namespaces/page/endpoints"
    status, p1, _ = jcall("GET", base + "?limit=2")
    c.eq([i["metadata"]["name"] for i in p1["items"]], ["b", "c"], "page 1")
    c.eq(p1["metadata"].get("remainingItemCount"), 3, "remainingItemCount")
    c.eq(list(p1["metadata"]), ["resourceVersion", "continue", "remainingItemCount"],
         "list metadata keys with a continue")
    rv1 = p1["metadata"]["resourceVersion"]
    put(endpoints(ns, "a", ["10.0.0.1"]), endpoints(ns, "d", ["10.0.0.2"]),
        endpoints(ns, "ee", ["10.0.0.1"]))
    status, p2, _ = jcall("GET", base + "?limit=2&continue=" + p1["metadata"]["continue"])
    c.eq([i["metadata"]["name"] for i in p2["items"]], ["d", "e"],
         "page 2 is the snapshot of page 1 (no new object)")
    c.eq(p2["items"][0]["subsets"][0]["addresses"][0]["ip"], "10.0.0.1",
         "page 2 has the old content of a changed object")
    c.eq(p2["metadata"]["resourceVersion"], rv1, "page 2 has page 1's rv")
    status, p3, _ = jcall("GET", base + "?limit=2&continue=" + p2["metadata"]["continue"])
    c.eq([i["metadata"]["name"] for i in p3["items"]], ["f"], "last page")
    c.eq(p3["metadata"], {"resourceVersion": rv1}, "no continue on the last page")
    status, full, _ = jcall("GET", base + "?limit=2&resourceVersion=0")
    c.eq(len(full["items"]), 7, "limit is ignored with resourceVersion=0")
    c.eq(jcall("GET", base + "?limit=2&continue=garbage!")[0], 400, "a bad continue")
    c.eq(jcall("GET", base + "?limit=2&resourceVersion=5&continue=" +
               p1["metadata"]["continue"])[0], 400, "continue with a resourceVersion")
    ctl("POST", "compact")
    status, doc, _ = jcall("GET", base + "?limit=2&continue=" + p1["metadata"]["continue"])
    c.eq((status, doc["reason"]), (410, "Expired"), "a compacted continue: 410")


def test_gzip(c):
    eps = [{"ip": "10.%d.%d.%d" % (i // 65536, i // 256 % 256, i % 256), "nodeName": "node-%d" % i}
           for i in range(1500)]
    ctl("PUT", "service", service_spec("gz", "big", eps))
    path = "/api/v1/namespaces/gz/endpoints/big"
    status, hdrs, plain = call("GET", path)
    c.check(len(plain) > 128 * 1024, "the object is big (%d bytes)" % len(plain))
    c.check("content-encoding" not in hdrs, "no gzip unless asked")
    status, hdrs, body = call("GET", path, headers={"Accept-Encoding": "gzip"})
    c.eq(hdrs.get("content-encoding"), "gzip", "gzip when asked")
    c.eq(hdrs.get("content-length"), str(len(body)), "Content-Length of the gzip body")
    c.eq(gzip.decompress(body), plain, "same content")
    status, hdrs, _ = call("GET", "/api/v1/namespaces/gz/services/big",
                           headers={"Accept-Encoding": "gzip"})
    c.check("content-encoding" not in hdrs, "small bodies are not compressed")
    ctl("DELETE", "service/gz/big")


def test_watch_chunks_and_inject(c):
    ns = "w9"
    put(endpoints(ns, "a", ["10.0.0.1"]))
    try:
        ctl("POST", "watch-chunks", {"maxBytes": 7})
        with Watch("/api/v1/namespaces/w9/endpoints?watch=1") as w:
            ev = w.next()
            c.eq(ev and ev["type"], "ADDED", "an event split into 7-byte chunks")
            c.check(w.chunks and max(w.chunks) <= 7 and len(w.chunks) > 10,
                    "chunk sizes %r" % w.chunks[:20])
    finally:
        ctl("POST", "watch-chunks", {"maxBytes": 0})
    with Watch("/api/v1/namespaces/w9/endpoints?watch=1") as w:
        w.next()
        c.check(len(w.chunks) == 1, "one chunk per event by default: %r" % w.chunks)
        wait_until(lambda: watchers() >= 1, 5)
        doc = ctl("POST", "inject", {"raw": "this is not json"})
        c.check(doc["watchers"] >= 1, "inject reaches the watchers")
        c.eq(w.next_line(), b"this is not json", "raw line injected")
        status_500 = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": "etcdserver: leader changed", "reason": "InternalError",
                      "code": 500}
        ctl("POST", "inject", {"event": {"type": "ERROR", "object": status_500},
                               "resource": "endpoints"})
        c.eq(w.next(), {"type": "ERROR", "object": status_500}, "event injected")
        doc = ctl("POST", "inject", {"raw": "x", "resource": "pods"})
        c.check(w.quiet_for(0.1), "inject for another resource is not sent here")


def test_many_watchers(c):
    ns = "many"
    put(endpoints(ns, "a", ["10.0.0.1"]))
    n = 60
    settle(c)
    base = 0
    ws = []
    try:
        for _ in range(n):
            ws.append(Watch("/api/v1/namespaces/many/endpoints?watch=1"))
        got = sum(1 for w in ws if (w.next() or {}).get("type") == "ADDED")
        c.eq(got, n, "every watcher gets its initial event")
        c.check(wait_until(lambda: watchers() == base + n, 5), "%d watchers open" % n)
        put(endpoints(ns, "a", ["10.0.0.2"]))
        got = sum(1 for w in ws if (w.next() or {}).get("type") == "MODIFIED")
        c.eq(got, n, "every watcher gets the change")
    finally:
        for w in ws:
            w.close()
    c.check(wait_until(lambda: watchers() == base, 5), "all forgotten after the clients close")


def test_http_details(c):
    s = socket.create_connection(("127.0.0.1", port()), timeout=5)
    try:
        s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /api/v1/namespaces/none/endpoints/x HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        deadline = time.monotonic() + 5
        while buf.count(b"HTTP/1.1 ") < 2 or not buf.rstrip().endswith(b"}"):
            if time.monotonic() > deadline:
                break
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data = s.recv(65536)
            if not data:
                break
            buf += data
        starts = [m.start() for m in re.finditer(rb"HTTP/1\.1 \d{3}", buf)]
        c.eq([buf[i:i + 12] for i in starts], [b"HTTP/1.1 200", b"HTTP/1.1 404"],
             "pipelined requests answered in order")
    finally:
        s.close()

    def raw(request):
        s = socket.create_connection(("127.0.0.1", port()), timeout=5)
        try:
            s.sendall(request)
            out = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    return out, True
                out += data
            return out, False
        finally:
            s.close()

    out, closed = raw(b"GET /api/v1/namespaces/none/endpoints HTTP/1.0\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 200") and closed, "HTTP/1.0: answered, then closed")
    c.check(b"\r\nConnection: close\r\n" in out, "HTTP/1.0: Connection: close")
    out, closed = raw(b"GET /api/v1/namespaces/none/endpoints?watch=1&timeoutSeconds=1 "
                      b"HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    c.check(b"Transfer-Encoding" not in head and closed, "HTTP/1.0 watch: unchunked, closed")
    out, closed = raw(b"BLAH\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 400") and closed, "malformed request: 400 and closed")
    out, closed = raw(b"GET / HTTP/2.0\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 505"), "HTTP/2.0: 505")

    obj = endpoints("http", "chunked", ["10.0.0.1"])
    body = json.dumps(obj).encode()
    req = (b"PUT /_fixture/objects HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n")
    for i in range(0, len(body), 10):
        piece = body[i:i + 10]
        req += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out, _ = raw(req + b"0\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 200"), "a chunked control body: %r" % out[:100])
    big = json.dumps([endpoints("http", "e%d" % i, ["10.0.0.1"]) for i in range(300)])
    r = subprocess.run(["curl", "-sS", "-X", "PUT", "-H", "Expect: 100-continue",
                        "-H", "Content-Type: application/json", "--data-binary", "@-",
                        "http://127.0.0.1:%d/_fixture/objects" % port()],
                       input=big, capture_output=True, text=True, timeout=15)
    c.eq(r.returncode, 0, "curl with Expect: 100-continue (%s)" % r.stderr.strip())
    c.check(r.returncode == 0 and len(json.loads(r.stdout)["results"]) == 300,
            "300 objects written in one PUT")
    r = subprocess.run(["curl", "-sS", "http://127.0.0.1:%d/api/v1/namespaces/http/endpoints"
                        % port()], capture_output=True, text=True, timeout=15)
    c.eq(len(json.loads(r.stdout)["items"]), 301, "curl list")


def test_control_errors(c):
    c.eq(call("PUT", "/_fixture/objects", "{not json")[0], 400, "bad JSON")
    c.eq(call("PUT", "/_fixture/objects", {"kind": "Nope", "metadata": {"name": "x"}})[0], 400,
         "unknown kind")
    c.eq(call("PUT", "/_fixture/objects", {"kind": "Endpoints", "apiVersion": "v2",
                                           "metadata": {"name": "x"}})[0], 400,
         "wrong apiVersion")
    c.eq(call("PUT", "/_fixture/objects", {"kind": "Endpoints", "metadata": {}})[0], 400,
         "no name")
    rv = current_rv()
    c.eq(call("PUT", "/_fixture/objects", [endpoints("ce", "ok", []), {"kind": "Nope"}])[0], 400,
         "a list with a bad object")
    c.eq(current_rv(), rv, "... changes nothing")
    c.eq(call("DELETE", "/_fixture/objects/gizmos/ns/x")[0], 400, "delete of an unknown kind")
    c.eq(call("GET", "/_fixture/nothing")[0], 404, "unknown control route")
    c.eq(call("GET", "/_fixture/drop-watches")[0], 405, "wrong method")
    c.eq(call("POST", "/_fixture/bookmarks", {"intervalMs": -1})[0], 400, "negative interval")
    doc = ctl("PUT", "objects", {"items": [endpoints("ce", "x1", []),
                                           endpoints("ce", "x2", [])]})
    c.eq(len(doc["results"]), 2, "{items: [...]}")
    doc = ctl("GET", "objects")
    c.check(any(o["metadata"]["name"] == "x1" and o["kind"] == "Endpoints"
                for o in doc["items"]), "GET objects")
    c.eq(ctl("DELETE", "objects/Endpoints/ce/x1")["object"]["metadata"]["name"], "x1",
         "delete by Kind")
    c.eq(ctl("DELETE", "objects/endpoint/ce/x2")["object"]["metadata"]["name"], "x2",
         "delete by singular")


def test_in_process(c):
    import k8s_api
    with k8s_api.K8sApiServer(history=10, bookmark_interval_ms=0) as api:
        api.put_service(service_spec("ip", "web", [{"ip": "10.0.0.1", "nodeName": "n"}]))
        with urllib.request.urlopen(api.url("/api/v1/namespaces/ip/endpoints/web"),
                                    timeout=5) as r:
            doc = json.loads(r.read())
        c.eq(doc["subsets"][0]["addresses"][0]["ip"], "10.0.0.1", "in-process GET")
        with Watch("/api/v1/namespaces/ip/endpoints?watch=1", p=api.port) as w:
            w.next()
            api.put_object(endpoints("ip", "web", ["10.0.0.2"]))
            ev = w.next()
            c.eq(ev and ev["type"], "MODIFIED", "in-process watch")
            c.check(wait_until(lambda: api.watcher_info()["watchers"] == 1, 5), "watcher_info")
            api.drop_watches()
            c.eq(w.drain_to_end(5)[0], "eof", "in-process drop")
        c.eq(api.state()["historySize"], 10, "history option")
        thread = api.thread
    c.check(not thread.is_alive(), "stop() ends the thread")


# ---- the DTab custom resource (dtabs.l5d.io) --------------------------------

DTABS = "/apis/l5d.io/v1alpha1/namespaces/%s/dtabs"
DTAB_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def dtab(name, dentries=None, ns=None, **meta):
    m = {"name": name}
    if ns is not None:
        m["namespace"] = ns
    m.update(meta)
    return {"apiVersion": "l5d.io/v1alpha1", "kind": "DTab", "metadata": m,
            "dentries": dentries if dentries is not None else
            [{"prefix": "/svc", "dst": "/#/io.l5d.k8s/default/http"}]}


def failure(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message}
    if reason is not None:
        s["reason"] = reason
    if details is not None:
        s["details"] = details
    s["code"] = code
    return s


def sorted_keys_everywhere(value):
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(sorted_keys_everywhere(v)
                                                    for v in value.values())
    if isinstance(value, list):
        return all(sorted_keys_everywhere(v) for v in value)
    return True


def test_dtab_create_get_list(c):
    ns = "dt1"
    base = DTABS % ns
    ctl("DELETE", "requests")
    rv0 = current_rv()
    body = dtab("default", annotations={"linkerd.io/owner": "namerd"}, labels={"tier": "edge"})
    body["extra"] = {"kept": [1, {"z": 1, "a": 2}]}
    status, doc, hdrs = jcall("POST", base, body)
    c.eq(status, 201, "create: 201 (%s)" % doc)
    c.eq(hdrs.get("content-type"), "application/json", "create Content-Type")
    created = doc or {}
    meta = created.get("metadata", {})
    c.eq((created.get("kind"), created.get("apiVersion")), ("DTab", "l5d.io/v1alpha1"),
         "kind/apiVersion")
    c.eq(created.get("dentries"), body["dentries"], "dentries kept as given")
    c.eq(created.get("extra"), {"kept": [1, {"a": 2, "z": 1}]}, "other top-level fields kept")
    c.eq((meta.get("name"), meta.get("namespace"), meta.get("resourceVersion"),
          meta.get("generation")), ("default", ns, str(rv0 + 1), 1),
         "name, namespace (from the path), resourceVersion, generation 1")
    c.check(re.fullmatch(r"[0-9a-f-]{36}", meta.get("uid", "")), "a uid: %r" % meta)
    c.check(RFC3339.fullmatch(meta.get("creationTimestamp", "")), "a creationTimestamp")
    c.eq((meta.get("annotations"), meta.get("labels")),
         ({"linkerd.io/owner": "namerd"}, {"tier": "edge"}), "annotations, labels")
    c.check(sorted_keys_everywhere(created), "unstructured: keys sorted: %r" % list(created))
    c.eq(current_rv(), rv0 + 1, "one revision")

    status, doc, _ = jcall("GET", base + "/default")
    c.eq((status, doc), (200, created), "get")
    # a second object, created with the namespace in the body and without kind/apiVersion
    status, other, _ = jcall("POST", base, {"metadata": {"name": "other.v2", "namespace": ns},
                                            "dentries": []})
    c.eq((status, other and other["kind"], other and other["apiVersion"]),
         (201, "DTab", "l5d.io/v1alpha1"), "kind/apiVersion filled in")
    jcall("POST", DTABS % "dt1-b", dtab("default"))

    status, doc, _ = jcall("GET", base)
    c.eq(status, 200, "list")
    c.eq(doc and [k for k in doc], ["apiVersion", "items", "kind", "metadata"],
         "list keys (sorted)")
    c.eq(doc and (doc["kind"], doc["apiVersion"], doc["metadata"]),
         ("DTabList", "l5d.io/v1alpha1", {"continue": "", "resourceVersion": str(current_rv())}),
         "list kind, metadata")
    c.eq(doc and doc["items"], [created, other], "items (with kind/apiVersion), in key order")
    status, doc, _ = jcall("GET", "/apis/l5d.io/v1alpha1/dtabs")
    c.eq(sorted((i["metadata"]["namespace"], i["metadata"]["name"]) for i in doc["items"]
                if i["metadata"]["namespace"].startswith("dt1")),
         [("dt1", "default"), ("dt1", "other.v2"), ("dt1-b", "default")],
         "all-namespaces list")
    doc = jcall("GET", base + "?labelSelector=tier%3Dedge")[1]
    c.eq([i["metadata"]["name"] for i in doc["items"]], ["default"], "labelSelector")
    doc = jcall("GET", base + "?fieldSelector=metadata.name%3Dother.v2")[1]
    c.eq([i["metadata"]["name"] for i in doc["items"]], ["other.v2"], "fieldSelector")
    doc = jcall("GET", base + "?limit=1")[1]
    c.eq(([i["metadata"]["name"] for i in doc["items"]], doc["metadata"].get("remainingItemCount")),
         (["default"], 1), "limit")
    doc = jcall("GET", base + "?limit=1&continue=" + doc["metadata"]["continue"])[1]
    c.eq(([i["metadata"]["name"] for i in doc["items"]], doc["metadata"]["continue"]),
         (["other.v2"], ""), "continue; the last page's continue is empty")
    status, _, body404 = call("GET", base + "/nope")
    c.eq((status, json.loads(body404)), (404, failure(
        404, "NotFound", 'dtabs.l5d.io "nope" not found',
        {"name": "nope", "group": "l5d.io", "kind": "dtabs"})), "get of an absent DTab")

    # errors
    status, doc, _ = jcall("POST", base, dtab("default"))
    c.eq((status, doc), (409, failure(409, "AlreadyExists", 'dtabs.l5d.io "default" already exists',
                                      {"name": "default", "group": "l5d.io", "kind": "dtabs"})),
         "create of an existing name: 409 AlreadyExists")
    status, doc, _ = jcall("POST", base, dtab("Bad_Name"))
    msg = 'Invalid value: "Bad_Name": ' + DTAB_SUBDOMAIN_MSG
    c.eq((status, doc), (422, failure(
        422, "Invalid", 'DTab.l5d.io "Bad_Name" is invalid: metadata.name: ' + msg,
        {"name": "Bad_Name", "group": "l5d.io", "kind": "DTab",
         "causes": [{"reason": "FieldValueInvalid", "message": msg,
                     "field": "metadata.name"}]})), "an invalid name: 422 Invalid")
    for bad in ("a..b", "-a", "a-", "a_b", "x" * 254):
        status, doc, _ = jcall("POST", base, dtab(bad))
        c.eq((status, doc and doc["reason"]), (422, "Invalid"), "invalid name %r" % bad[:20])
    status, doc, _ = jcall("POST", base, dtab("x" * 254))
    c.check(doc and "must be no more than 253 characters" in doc["message"], "a too long name")
    status, doc, _ = jcall("POST", base, {"kind": "DTab", "metadata": {}, "dentries": []})
    c.eq((status, doc), (422, failure(
        422, "Invalid",
        'DTab.l5d.io "" is invalid: metadata.name: Required value: name or generateName is '
        'required', {"group": "l5d.io", "kind": "DTab",
                     "causes": [{"reason": "FieldValueRequired",
                                 "message": "Required value: name or generateName is required",
                                 "field": "metadata.name"}]})), "no name: 422")
    status, doc, _ = jcall("POST", base, dtab("gen", generateName="gen-"))
    c.eq(status, 201, "a name and a generateName")
    status, doc, _ = jcall("POST", base, {"metadata": {"generateName": "auto-"}})
    c.check(status == 201 and re.fullmatch(r"auto-[a-z0-9]{5}", doc["metadata"]["name"]),
            "generateName: %s %r" % (status, doc and doc.get("metadata")))
    status, doc, _ = jcall("POST", base, dtab("elsewhere", ns="dt1-b"))
    c.eq((status, doc), (400, failure(
        400, "BadRequest", "the namespace of the provided object does not match the namespace "
        "sent on the request")), "a body namespace other than the path's: 400")
    status, doc, _ = jcall("POST", base, dtab("withrv", resourceVersion="5"))
    c.eq((status, doc), (500, failure(
        500, None, "resourceVersion should not be set on objects to be created")),
        "a resourceVersion on create: 500, as the etcd3 store answers")
    status, doc, _ = jcall("POST", base, dict(dtab("wrongav"), apiVersion="l5d.io/v1"))
    c.eq((status, doc and doc["message"]), (400, "the API version in the data (l5d.io/v1) does "
                                                 "not match the expected API version "
                                                 "(l5d.io/v1alpha1)"), "another apiVersion")
    status, doc, _ = jcall("POST", base, dict(dtab("wrongkind"), kind="Dtab"))
    c.eq((status, doc and doc["message"]),
         (422, 'DTab.l5d.io "wrongkind" is invalid: kind: Invalid value: "Dtab": must be DTab'),
         "another kind")
    status, doc, _ = jcall("POST", base, "{not json")
    c.eq((status, doc and doc["reason"]), (400, "BadRequest"), "a body that is not JSON")
    status, doc, _ = jcall("POST", base, dtab("ct"), headers={"Content-Type": "text/plain"})
    c.eq((status, doc and doc["reason"]), (415, "UnsupportedMediaType"), "another Content-Type")
    status, doc, _ = jcall("POST", base, dtab("ct"),
                           headers={"Content-Type": "application/json; charset=utf-8"})
    c.eq(status, 201, "Content-Type application/json with a parameter")
    status, doc, _ = jcall("POST", "/apis/l5d.io/v1alpha1/dtabs", dtab("nons"))
    c.eq((status, doc and doc["message"]),
         (422, 'DTab.l5d.io "nons" is invalid: metadata.namespace: Required value'),
         "POST to the all-namespaces path")
    status, doc, _ = jcall("POST", DTABS % "Bad_NS", dtab("x"))
    c.check(status == 422 and doc["details"]["causes"][0]["field"] == "metadata.namespace",
            "an invalid namespace: %s %r" % (status, doc))

    log = ctl("GET", "requests")["requests"]
    c.eq([(r["method"], r["status"]) for r in log[:2]], [("POST", 201), ("GET", 200)],
         "writes are in the request log")
    c.eq(ctl("GET", "objects")["items"][0]["kind"], "DTab", "control API sees DTabs")


def test_dtab_update(c):
    ns = "dt2"
    base = DTABS % ns
    created = jcall("POST", base, dtab("default"))[1]
    rv1 = created["metadata"]["resourceVersion"]
    upd = copy_json(created)
    upd["dentries"] = [{"prefix": "/svc", "dst": "/#/io.l5d.k8s/prod/http"}]
    status, doc, _ = jcall("PUT", base + "/default", upd)
    c.eq(status, 200, "update with the current resourceVersion: 200 (%s)" % doc)
    updated = doc or {}
    rv2 = updated.get("metadata", {}).get("resourceVersion")
    c.eq(int(rv2 or 0), current_rv(), "a new resourceVersion")
    c.check(int(rv2 or 0) > int(rv1), "newer than the old one")
    c.eq(updated.get("dentries"), upd["dentries"], "the new dentries")
    c.eq(updated.get("metadata", {}).get("generation"), 2, "generation bumped")
    c.eq((updated["metadata"]["uid"], updated["metadata"]["creationTimestamp"]),
         (created["metadata"]["uid"], created["metadata"]["creationTimestamp"]),
         "uid and creationTimestamp kept")
    c.eq(jcall("GET", base + "/default")[1], updated, "get sees the update")

    # metadata-only change: a new resourceVersion, the same generation
    meta_only = copy_json(updated)
    meta_only["metadata"]["annotations"] = {"note": "x"}
    meta_only["metadata"]["generation"] = 42          # not settable
    status, doc, _ = jcall("PUT", base + "/default", meta_only)
    c.eq((status, doc and doc["metadata"]["generation"], doc and doc["metadata"]["annotations"]),
         (200, 2, {"note": "x"}), "a metadata-only update keeps the generation")
    rv3 = doc["metadata"]["resourceVersion"]

    # identical: 200, nothing changes
    before = current_rv()
    status, same, _ = jcall("PUT", base + "/default", doc)
    c.eq((status, same), (200, doc), "an identical update: 200 and the unchanged object")
    c.eq(current_rv(), before, "... and no new revision")

    stale = copy_json(doc)
    stale["metadata"]["resourceVersion"] = rv1
    stale["dentries"] = []
    status, doc2, _ = jcall("PUT", base + "/default", stale)
    c.eq((status, doc2), (409, failure(
        409, "Conflict", 'Operation cannot be fulfilled on dtabs.l5d.io "default": the object has '
        'been modified; please apply your changes to the latest version and try again',
        {"name": "default", "group": "l5d.io", "kind": "dtabs"})),
        "a stale resourceVersion: 409 Conflict")
    norv = copy_json(stale)
    del norv["metadata"]["resourceVersion"]
    status, doc2, _ = jcall("PUT", base + "/default", norv)
    c.eq((status, doc2), (422, failure(
        422, "Invalid", 'dtabs.l5d.io "default" is invalid: metadata.resourceVersion: Invalid '
        'value: 0x0: must be specified for an update',
        {"name": "default", "group": "l5d.io", "kind": "dtabs",
         "causes": [{"reason": "FieldValueInvalid",
                     "message": "Invalid value: 0x0: must be specified for an update",
                     "field": "metadata.resourceVersion"}]})),
        "no resourceVersion: 422 Invalid")
    c.eq(jcall("GET", base + "/default")[1]["metadata"]["resourceVersion"], rv3,
         "failed updates change nothing")
    status, doc2, _ = jcall("PUT", base + "/absent", dtab("absent", resourceVersion=rv3))
    c.eq((status, doc2), (404, failure(
        404, "NotFound", 'dtabs.l5d.io "absent" not found',
        {"name": "absent", "group": "l5d.io", "kind": "dtabs"})), "update of an absent DTab: 404")
    status, doc2, _ = jcall("PUT", base + "/default", dtab("other", resourceVersion=rv3))
    c.eq((status, doc2 and doc2["message"]),
         (400, "the name of the object (other) does not match the name on the URL (default)"),
         "a body name other than the path's: 400")
    status, doc2, _ = jcall("PUT", base + "/default", dtab("default", ns="dt2-x",
                                                         resourceVersion=rv3))
    c.eq((status, doc2 and doc2["message"]),
         (400, "the namespace of the object (dt2-x) does not match the namespace on the request "
               "(dt2)"), "a body namespace other than the path's: 400")
    status, doc2, _ = jcall("PUT", base + "/default", dtab("default", resourceVersion=rv3,
                                                         uid="not-the-uid"))
    c.check(status == 409 and doc2["reason"] == "Conflict" and
            "Precondition failed: UID in precondition: not-the-uid" in doc2["message"],
            "another uid: 409 (%s %r)" % (status, doc2))
    status, doc2, _ = jcall("PUT", base + "/default", dtab("default", resourceVersion="abc"))
    c.eq((status, doc2), (500, failure(
        500, None, 'strconv.ParseUint: parsing "abc": invalid syntax')),
        "a resourceVersion that is not a number")
    # a full replacement from a body without uid/creationTimestamp (what Namerd sends)
    status, doc2, _ = jcall("PUT", base + "/default", dtab("default", [], resourceVersion=rv3))
    c.eq((status, doc2 and doc2["dentries"], doc2 and doc2["metadata"].get("annotations"),
          doc2 and doc2["metadata"]["generation"]), (200, [], None, 3),
         "PUT replaces the object (annotations gone)")
    status, doc2, _ = jcall("PUT", base, dtab("default", resourceVersion=rv3))
    c.eq((status, doc2 and doc2["reason"]), (405, "MethodNotAllowed"), "PUT to the collection")
    status, doc2, _ = jcall("PATCH", base + "/default", {"dentries": []},
                            headers={"Content-Type": "application/merge-patch+json"})
    c.eq((status, doc2 and doc2["reason"]), (405, "MethodNotAllowed"), "PATCH: 405")


def copy_json(doc):
    return json.loads(json.dumps(doc))


def test_dtab_delete(c):
    ns = "dt3"
    base = DTABS % ns
    a = jcall("POST", base, dtab("a"))[1]
    b = jcall("POST", base, dtab("b"))[1]
    rv_a = a["metadata"]["resourceVersion"]
    opts = {"kind": "DeleteOptions", "apiVersion": "v1",
            "preconditions": {"resourceVersion": "1"}}
    status, doc, _ = jcall("DELETE", base + "/a", opts)
    c.eq((status, doc), (409, failure(
        409, "Conflict", 'Operation cannot be fulfilled on DTab.l5d.io "a": the ResourceVersion in '
        'the precondition (1) does not match the ResourceVersion in record (%s). The object might '
        'have been modified' % rv_a, {"name": "a", "group": "l5d.io", "kind": "DTab"})),
        "a resourceVersion precondition that does not hold: 409 Conflict")
    status, doc, _ = jcall("DELETE", base + "/a", {"preconditions": {"uid": "nope"}})
    c.eq((status, doc and doc["message"]),
         (409, 'Operation cannot be fulfilled on DTab.l5d.io "a": the UID in the precondition '
               '(nope) does not match the UID in record (%s). The object might have been '
               'deleted and then recreated' % a["metadata"]["uid"]),
         "a uid precondition that does not hold: 409")
    c.eq(jcall("GET", base + "/a")[0], 200, "still there")
    before = current_rv()
    opts["preconditions"] = {"resourceVersion": rv_a, "uid": a["metadata"]["uid"]}
    status, doc, _ = jcall("DELETE", base + "/a", opts)
    c.eq((status, doc), (200, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": "a", "group": "l5d.io", "kind": "dtabs",
                    "uid": a["metadata"]["uid"]}}),
        "delete with preconditions that hold: 200 and a Success Status")
    c.eq(current_rv(), before + 1, "one revision")
    c.eq(jcall("GET", base + "/a")[0], 404, "gone")
    status, doc, _ = jcall("DELETE", base + "/b")
    c.eq((status, doc and doc["status"], doc and doc["details"]["uid"]),
         (200, "Success", b["metadata"]["uid"]), "delete without a body")
    status, doc, _ = jcall("DELETE", base + "/b")
    c.eq((status, doc), (404, failure(404, "NotFound", 'dtabs.l5d.io "b" not found',
                                      {"name": "b", "group": "l5d.io", "kind": "dtabs"})),
         "delete of an absent DTab: 404")
    status, doc, _ = jcall("DELETE", base)
    c.eq((status, doc and doc["reason"]), (405, "MethodNotAllowed"), "delete of the collection")
    c.eq(jcall("GET", base)[1]["items"], [], "empty list")


def test_dtab_watch(c):
    ns = "dt4"
    base = DTABS % ns
    jcall("POST", base, dtab("pre"))
    rv0 = current_rv()
    with Watch(base + "?watch=1") as w, \
            Watch(base + "?watch=1&resourceVersion=%d" % rv0) as wrv, \
            Watch("/apis/l5d.io/v1alpha1/watch/namespaces/dt4/dtabs/default") as wname, \
            Watch("/apis/l5d.io/v1alpha1/dtabs?watch=1&resourceVersion=%d" % rv0) as wall:
        c.eq(w.status, 200, "watch status")
        ev = w.next()
        c.eq(ev and (ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "pre"),
             "initial ADDED")
        c.check(wname.quiet_for(0.1), "the named watch: nothing yet")
        created = jcall("POST", base, dtab("default"))[1]
        upd = copy_json(created)
        upd["dentries"] = []
        updated = jcall("PUT", base + "/default", upd)[1]
        same = jcall("PUT", base + "/default", updated)[1]
        c.eq(same, updated, "a no-op update")
        jcall("DELETE", base + "/default")
        gone_rv = current_rv()
        want = [("ADDED", created), ("MODIFIED", updated),
                ("DELETED", dict(updated, metadata=dict(updated["metadata"],
                                                        resourceVersion=str(gone_rv))))]
        for label, s in (("list", w), ("from rv", wrv), ("named", wname), ("all", wall)):
            evs = s.events(3)
            c.eq([(e["type"], e["object"]) for e in evs], want,
                 "%s watch: ADDED, MODIFIED, DELETED with their resourceVersions" % label)
            c.check(s.quiet_for(0.1), "%s watch: no event for the no-op" % label)
    with Watch(base + "?watch=1&resourceVersion=%d" % rv0) as w:
        evs = w.events(3)
        c.eq([(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in evs],
             [("ADDED", str(rv0 + 1)), ("MODIFIED", str(rv0 + 2)), ("DELETED", str(rv0 + 3))],
             "replayed from the history")
    with Watch(base + "?watch=1&allowWatchBookmarks=true&timeoutSeconds=1") as w:
        ctl("POST", "bookmarks", {"intervalMs": 100})
        try:
            ev = w.next_of({"BOOKMARK"}, 3)
        finally:
            ctl("POST", "bookmarks", {"intervalMs": 1000})
        c.eq(ev and ev["object"], {"apiVersion": "l5d.io/v1alpha1", "kind": "DTab",
                                   "metadata": {"resourceVersion": str(current_rv())}},
             "a DTab BOOKMARK")
        c.eq(w.drain_to_end(5)[0], "clean", "timeoutSeconds")
    # fixture-control writes are the same store
    with Watch(base + "?watch=1&resourceVersion=%d" % current_rv()) as w:
        doc = ctl("PUT", "objects", dtab("ctl", ns=ns))
        ev = w.next()
        c.eq(ev and (ev["type"], ev["object"]), ("ADDED", doc["results"][0]["object"]),
             "a control-API write: an event")
        c.eq(doc["results"][0]["object"]["metadata"]["generation"], 1, "generation 1")
        ctl("DELETE", "objects/dtab/%s/ctl" % ns)
        ev = w.next()
        c.eq(ev and ev["type"], "DELETED", "a control-API delete")
    ctl("POST", "compact", {})
    with Watch(base + "?watch=1&resourceVersion=%d" % rv0) as w:
        ev = w.next()
        c.eq(ev and (ev["type"], ev["object"]["code"]), ("ERROR", 410), "410 after compaction")


def test_dtab_read_only_builtins(c):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/api/v1/namespaces/ro/endpoints", "/api/v1/namespaces/ro/endpoints/x",
                     "/apis/discovery.k8s.io/v1/namespaces/ro/endpointslices/x",
                     "/api/v1/namespaces/ro/services/x", "/api/v1/namespaces/ro/pods"):
            status, doc, _ = jcall(method, path, endpoints("ro", "x", []))
            c.eq((status, doc), (405, failure(
                405, "MethodNotAllowed",
                "the server does not allow this method on the requested resource", {})),
                "%s %s" % (method, path))
    status, doc, _ = jcall("POST", "/apis/l5d.io/v1alpha1/watch/namespaces/ro/dtabs", dtab("x"))
    c.eq(status, 405, "a write to a /watch/ path")
    status, doc, _ = jcall("POST", DTABS % "ro" + "/x", dtab("x"))
    c.eq(status, 405, "POST to a named path")


def test_dtab_crds(c):
    api = ApiProcess("--no-crds")
    try:
        p = api.port
        base = DTABS % "crd"
        no_such = failure(404, "NotFound", "the server could not find the requested resource", {})
        c.eq(ctl("GET", "state", p=p)["crds"], False, "state: crds false")
        c.eq(ctl("GET", "crds", p=p), {"installed": False}, "GET crds")
        for method, path in (("GET", base), ("GET", base + "/default"),
                             ("GET", "/apis/l5d.io/v1alpha1/dtabs"), ("POST", base),
                             ("PUT", base + "/default"), ("DELETE", base + "/default")):
            status, doc, _ = jcall(method, path, dtab("default") if method != "GET" else None,
                                   p=p)
            c.eq((status, doc), (404, no_such), "no CRD: %s %s" % (method, path))
        with Watch(base + "?watch=1", p=p) as w:
            c.eq(w.status, 404, "no CRD: a watch")
        status, doc, _ = jcall("PUT", "/_fixture/objects", dtab("x", ns="crd"), p=p)
        c.eq(status, 400, "no CRD: the control API will not write a DTab")
        c.eq(jcall("GET", "/api/v1/namespaces/crd/endpoints", p=p)[0], 200,
             "built-in resources are there")

        c.eq(ctl("POST", "crds", {"installed": True}, p=p),
             {"installed": True, "deleted": 0, "watchesEnded": 0}, "install")
        status, created, _ = jcall("POST", base, dtab("default"), p=p)
        c.eq(status, 201, "then a create works")
        jcall("POST", DTABS % "crd-2", dtab("other"), p=p)
        c.eq(jcall("GET", base + "/default", p=p)[1], created, "and a get")
        with Watch(base + "?watch=1", p=p) as w, \
                Watch("/api/v1/namespaces/crd/endpoints?watch=1", p=p) as wep:
            c.eq(w.next()["type"], "ADDED", "watch")
            rv = current_rv(p)
            doc = ctl("POST", "crds", {"installed": False}, p=p)
            c.eq(doc, {"installed": False, "deleted": 2, "watchesEnded": 1},
                 "uninstall deletes the DTabs and ends their watches")
            end, evs = w.drain_to_end(5)
            c.eq(([e["type"] for e in evs], end), (["DELETED"], "clean"),
                 "the watch sees the DELETED, then ends cleanly")
            if evs:
                c.eq(evs[0]["object"]["metadata"]["resourceVersion"], str(rv + 1),
                     "the deletion's resourceVersion")
            c.check(wep.quiet_for(0.1) and wep.end is None, "other watches stay")
        c.eq(current_rv(p), rv + 2, "a revision per deleted DTab")
        c.eq(jcall("GET", base, p=p)[0], 404, "404 again")
        ctl("POST", "crds", {"installed": True}, p=p)
        c.eq(jcall("GET", base, p=p)[1]["items"], [], "reinstalled: empty")
        c.eq(call("POST", "/_fixture/crds", {"installed": "yes"}, p=p)[0], 400,
             "installed must be a boolean")
    finally:
        api.stop()

    import k8s_api
    with k8s_api.K8sApiServer(crds=False, bookmark_interval_ms=0) as api:
        c.eq(jcall("GET", DTABS % "ip", p=api.port)[0], 404, "in-process, crds=False: 404")
        c.eq(api.set_crds(True)["installed"], True, "set_crds(True)")
        c.eq(jcall("POST", DTABS % "ip", dtab("default"), p=api.port)[0], 201,
             "in-process create")
        c.eq(api.put_object(dtab("two", ns="ip"))["object"]["metadata"]["generation"], 1,
             "put_object of a DTab")
        c.eq(api.set_crds(False)["deleted"], 2, "set_crds(False)")
        c.eq(api.state()["crds"], False, "state()")


def test_dtab_token_and_down(c):
    api = ApiProcess("--token", "s3cret")
    try:
        p = api.port
        base = DTABS % "tok"
        auth = {"Authorization": "Bearer s3cret"}
        unauthorized = failure(401, "Unauthorized", "Unauthorized")
        c.eq(jcall("POST", base, dtab("default"), p=p)[:2], (401, unauthorized),
             "create without the token")
        c.eq(jcall("POST", base, dtab("default"), headers={"Authorization": "Bearer no"},
                   p=p)[0], 401, "create with a wrong token")
        c.eq(jcall("GET", base + "/default", headers=auth, p=p)[0], 404, "nothing written")
        status, created, _ = jcall("POST", base, dtab("default"), headers=auth, p=p)
        c.eq(status, 201, "create with the token")
        upd = dict(created, dentries=[])
        c.eq(jcall("PUT", base + "/default", upd, p=p)[0], 401, "update without the token")
        c.eq(jcall("DELETE", base + "/default", p=p)[0], 401, "delete without the token")
        status, doc, _ = jcall("PUT", base + "/default", upd, headers=auth, p=p)
        c.eq(status, 200, "update with the token")
        ctl("POST", "down", {"mode": "503"}, p=p)
        status, doc, _ = jcall("DELETE", base + "/default", headers=auth, p=p)
        c.eq((status, doc and doc["reason"]), (503, "ServiceUnavailable"), "a write while down")
        ctl("POST", "up", p=p)
        c.eq(jcall("GET", base + "/default", headers=auth, p=p)[0], 200, "not deleted")
        c.eq(jcall("DELETE", base + "/default", headers=auth, p=p)[0], 200,
             "delete with the token")
        log = ctl("GET", "requests", p=p)["requests"]
        c.eq([(r["method"], r["status"]) for r in log if r["method"] != "GET"],
             [("POST", 401), ("POST", 401), ("POST", 201), ("PUT", 401), ("DELETE", 401),
              ("PUT", 200), ("DELETE", 503), ("DELETE", 200)], "the request log")
    finally:
        api.stop()


# ---- TLS ------------------------------------------------------------------

_TLS = {}


def tls_files():
    """{"ca", "cert", "key", "other_ca"}: made once (certs.py) for the TLS tests."""
    if not _TLS:
        import certs
        d = tempfile.mkdtemp(prefix="switchyard-k8s-api-tls-")
        _TEMP_DIRS.append(d)
        _TLS.update(certs.make_ca_and_server_cert(d))
        _TLS["other_ca"] = certs.make_other_ca(d)["ca"]
    return _TLS


def tls_client(cafile=None):
    """A verifying client context (hostname checked) trusting cafile."""
    return ssl.create_default_context(cafile=cafile or tls_files()["ca"])


def tls_refused(fn):
    """The exception fn() raises (None if it returns)."""
    try:
        fn()
    except Exception as e:     # noqa: BLE001 - the exception is the result
        return e
    return None


def tls_handshake(p, ctx, name):
    """A TLS handshake with 127.0.0.1:p expecting the certificate to be name's."""
    with socket.create_connection(("127.0.0.1", p), timeout=5) as raw:
        ctx.wrap_socket(raw, server_hostname=name).close()


def test_tls_in_process(c):
    import k8s_api
    files = tls_files()
    ctx = tls_client()
    with k8s_api.K8sApiServer(tls_cert=files["cert"], tls_key=files["key"],
                              bookmark_interval_ms=0) as api:
        p = api.port
        c.check(api.tls, "tls property")
        c.eq(api.url("/version"), "https://127.0.0.1:%d/version" % p, "url() is https")
        # (a) /version over HTTPS (urllib, certificate and hostname checked)
        with urllib.request.urlopen(api.url("/version"), context=ctx, timeout=5) as r:
            c.eq((r.status, json.loads(r.read())["gitVersion"]),
                 (200, "v1.30.0-switchyard-fixture"), "GET /version over HTTPS")
        c.eq(call("GET", "/healthz", p=p, tls=ctx, host="localhost")[0], 200,
             "the DNS name localhost verifies too")
        state = ctl("GET", "state", p=p, tls=ctx)
        c.eq((state["tls"], state["tlsHandshakeFailures"]), (True, 0), "state: tls")
        # (b) list, then a watch that sees a put_service through the control API
        ctl("PUT", "service", service_spec("tls", "web", [{"ip": "10.0.0.1"}]), p=p, tls=ctx)
        status, doc, _ = jcall("GET", "/api/v1/namespaces/tls/endpoints", p=p, tls=ctx)
        c.eq((status, [i["metadata"]["name"] for i in (doc or {}).get("items", [])]),
             (200, ["web"]), "a list over HTTPS")
        rv = doc["metadata"]["resourceVersion"] if doc else "0"
        with Watch("/api/v1/namespaces/tls/endpoints?watch=1&resourceVersion=%s" % rv,
                   p=p, tls=ctx) as w:
            c.eq((w.status, w.chunked), (200, True), "a chunked watch over HTTPS")
            ctl("PUT", "service", service_spec("tls", "api", [{"ip": "10.0.0.2"}]),
                p=p, tls=ctx)
            ev = w.next()
            c.eq(ev and (ev["type"], ev["object"]["metadata"]["name"],
                         ev["object"]["subsets"][0]["addresses"][0]["ip"]),
                 ("ADDED", "api", "10.0.0.2"), "the watch's ADDED event")
            ctl("POST", "inject", {"raw": "x" * 300}, p=p, tls=ctx)
            c.eq(w.next_line(), b"x" * 300, "an injected line")
            api.drop_watches()
            c.eq(w.drain_to_end(5)[0], "eof", "drop-watches cuts a TLS watch")
        with Watch("/api/v1/namespaces/tls/endpoints?watch=1&timeoutSeconds=1",
                   p=p, tls=ctx) as w:
            end, evs = w.drain_to_end(5)
            c.eq((end, sorted(e["object"]["metadata"]["name"] for e in evs)),
                 ("clean", ["api", "web"]), "initial events, then a clean end over TLS")
        # (d) the bearer token over TLS
        api.set_token("s3cret")
        path = "/api/v1/namespaces/tls/endpoints"
        status, doc, _ = jcall("GET", path, p=p, tls=ctx)
        c.eq((status, doc and doc.get("reason")), (401, "Unauthorized"),
             "no token over TLS: 401")
        c.eq(jcall("GET", path, headers={"Authorization": "Bearer s3cret"}, p=p,
                   tls=ctx)[0], 200, "the token over TLS: 200")
        c.eq(jcall("GET", "/version", p=p, tls=ctx)[0], 200, "/version needs no token")
        with Watch(path + "?watch=1", p=p, tls=ctx) as w:
            c.eq(w.status, 401, "a watch without the token over TLS")
        c.eq(api.state()["tlsHandshakeFailures"], 0, "no failed handshake so far")
    c.eq(k8s_api.K8sApiServer().url("/x")[:7], "http://", "without TLS: http://")
    c.check(isinstance(tls_refused(lambda: k8s_api.K8sApiServer(tls_cert=files["cert"])),
                       ValueError), "tls_cert without tls_key: ValueError")


def test_tls_process(c):
    files = tls_files()
    ctx = tls_client()
    api = ApiProcess("--tls-cert", files["cert"], "--tls-key", files["key"])
    try:
        p = api.port
        c.check(("listening on 127.0.0.1:%d" % p) in api.stdout(), "stdout: %r" % api.stdout())
        c.eq(call("GET", "/version", p=p, tls=ctx)[0], 200, "GET /version over HTTPS")
        # (c) a client trusting another CA refuses the certificate, as does one
        # that expects another name
        e = tls_refused(lambda: call("GET", "/version", p=p, tls=tls_client(files["other_ca"])))
        c.check(isinstance(e, ssl.SSLCertVerificationError) and e.verify_code == 20,
                "another CA: verification fails (%r)" % e)
        e = tls_refused(lambda: tls_handshake(p, ctx, "wrong.example"))
        c.check(isinstance(e, ssl.SSLCertVerificationError),
                "a name not in the certificate: verification fails (%r)" % e)
        # (e) clients that are no TLS clients, or leave mid-handshake
        bad = [b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",   # plain HTTP
               b"\x00" * 600,                                           # garbage
               b"\x16\x03\x01\x02\x00\x01\x00",                         # half a ClientHello
               b""]                                                     # nothing at all
        for i, data in enumerate(bad + [b"\x16\x03\x01\x02\x00\x01\x00"]):
            s = socket.create_connection(("127.0.0.1", p), timeout=5)
            if data:
                s.sendall(data)
            if i == len(bad):                        # and the last one by a TCP RST
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif data and data[0] != 0x16:
                try:
                    s.recv(100)                      # the fixture hangs up
                except OSError:
                    pass
            s.close()
        e = tls_refused(lambda: call("GET", "/version", p=p))
        c.check(isinstance(e, (ConnectionError, http.client.HTTPException)),
                "plain HTTP to the TLS port gets no answer (%r)" % e)
        c.eq(call("GET", "/version", p=p, tls=ctx)[0], 200, "still serving HTTPS")
        c.check(wait_until(lambda: ctl("GET", "state", p=p, tls=ctx)["tlsHandshakeFailures"]
                           >= 4, 5), "failed handshakes counted: %r"
                % ctl("GET", "state", p=p, tls=ctx)["tlsHandshakeFailures"])
        # down "refuse" reopens the listener with TLS
        ctl("PUT", "objects", endpoints("tr", "a", ["10.0.0.1"]), p=p, tls=ctx)
        w = Watch("/api/v1/namespaces/tr/endpoints?watch=1", p=p, tls=ctx)
        try:
            c.eq((w.next() or {}).get("type"), "ADDED", "a TLS watch before the refusal")
            ctl("POST", "down", {"mode": "refuse", "seconds": 0.5}, p=p, tls=ctx)
            c.check(w.drain_to_end(5)[0] in ("eof", "reset"), "refuse cuts the TLS watch")
        finally:
            w.close()
        c.check(wait_until(lambda: call("GET", "/api/v1/namespaces/tr/endpoints/a", p=p,
                                        tls=ctx, timeout=2)[0] == 200, 5),
                "HTTPS again on the same port after the refusal")
        e = tls_refused(lambda: call("GET", "/version", p=p))
        c.check(isinstance(e, (ConnectionError, http.client.HTTPException)),
                "still TLS only after the refusal (%r)" % e)
        c.eq(api.stop(), 0, "exit status")
        err = api.stderr()
        lines = err.splitlines()
        c.check("Traceback" not in err and all(
            l.startswith("k8s_api.py: TLS handshake failed: ") for l in lines),
            "stderr: only handshake lines: %r" % err[-2000:])
        c.check(len(lines) <= 8, "at most a line per failed handshake: %r" % lines)
        c.check(any("HTTP_REQUEST" in l for l in lines), "plain HTTP named: %r" % lines)
    finally:
        api.stop()


def test_tls_options(c):
    files = tls_files()
    for args, what in [(["--tls-cert", files["cert"]], "--tls-cert alone"),
                       (["--tls-key", files["key"]], "--tls-key alone"),
                       (["--tls-cert", files["cert"] + ".missing", "--tls-key", files["key"]],
                        "a missing certificate file"),
                       (["--tls-cert", files["key"], "--tls-key", files["cert"]],
                        "certificate and key swapped")]:
        r = subprocess.run([sys.executable, FIXTURE, "--port", "0"] + args,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        c.eq(r.returncode, 2, "%s: exit 2 (%s)" % (what, r.stderr.strip()[-300:]))
        c.check("Traceback" not in r.stderr, "%s: no traceback: %r" % (what, r.stderr))


def test_sigterm(c):
    """Last: stops the shared process."""
    w = Watch("/api/v1/namespaces/w1/endpoints?watch=1")
    try:
        w.next()
        t0 = time.monotonic()
        code = API.stop(5)
        c.eq(code, 0, "SIGTERM: exit 0")
        c.check(time.monotonic() - t0 < 3, "promptly")
    finally:
        w.close()
    err = API.stderr()
    c.check("Traceback" not in err and "exception" not in err.lower(),
            "nothing on stderr after the whole run: %r" % err[-2000:])


TESTS = [
    test_startup,
    test_state_file,
    test_get_and_list_shapes,
    test_resource_versions,
    test_selectors,
    test_service_convenience,
    test_watch_initial_and_changes,
    test_watch_from_resource_version,
    test_watch_selector_transitions,
    test_watch_expired,
    test_bookmarks,
    test_timeout_seconds,
    test_drop_watches,
    test_down,
    test_down_refuse,
    test_requests_log,
    test_token,
    test_pagination,
    test_gzip,
    test_watch_chunks_and_inject,
    test_many_watchers,
    test_http_details,
    test_control_errors,
    test_in_process,
    test_dtab_create_get_list,
    test_dtab_update,
    test_dtab_delete,
    test_dtab_watch,
    test_dtab_read_only_builtins,
    test_dtab_crds,
    test_dtab_token_and_down,
    test_tls_in_process,
    test_tls_process,
    test_tls_options,
    test_sigterm,
]


def main(argv):
    global API
    tests = [t for t in TESTS if not argv or t.__name__ in argv]
    if argv and len(tests) != len(argv):
        print("unknown test names: %s" % sorted(set(argv) - {t.__name__ for t in TESTS}))
        return 2
    API = ApiProcess()
    try:
        return Checks().run(tests)
    finally:
        API.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
