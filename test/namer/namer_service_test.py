#!/usr/bin/env python3
"""`switchyard namer`: the namer service's HTTP API (Namerd's
io.l5d.httpController paths), its file and in-memory storage, watch streams,
per-tenant overlays and API tokens, against the real binary on loopback.

Usage: namer_service_test.py SWITCHYARD_BINARY [TEST_NAME ...]
"""

import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from urllib.parse import quote

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Namer, header, http, wait_until  # noqa: E402

BINARY = None


def namer_config(store, extra="", disco=None):
    namers = ""
    if disco:
        namers = "namers:\n- kind: io.l5d.fs\n  rootDir: %s\n" % disco
    return """admin: {port: 0}
storage:
  %s
%sinterfaces:
- {kind: io.l5d.httpController, port: 0}
%s""" % (store, namers, extra)


def file_store(d):
    return "{kind: file, dir: %s}" % d


def api(namer, method, path, body=None, headers=None):
    if isinstance(body, str):
        body = body.encode()
    return http(method, namer.api_url(path), headers=headers, body=body)


def etag(headers):
    return header(headers, "ETag")


class Stream:
    """A ?watch=true response read line by line on a thread."""

    def __init__(self, url):
        host, rest = url[len("http://"):].split("/", 1)
        h, p = host.split(":")
        self.sock = socket.create_connection((h, int(p)), timeout=10)
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (rest, host)).encode())
        self.lines = []
        self.ended = False
        self.head = b""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.ended = True
                    return
                buf += chunk
            self.head, buf = buf.split(b"\r\n\r\n", 1)
            text = b""
            while True:
                # chunked framing: size line, data, CRLF
                while b"\r\n" not in buf:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        self.ended = True
                        return
                    buf += chunk
                size_line, buf = buf.split(b"\r\n", 1)
                size = int(size_line, 16)
                while len(buf) < size + 2:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        self.ended = True
                        return
                    buf += chunk
                data, buf = buf[:size], buf[size + 2:]
                if size == 0:
                    self.ended = True
                    return
                text += data
                while b"\n" in text:
                    line, text = text.split(b"\n", 1)
                    with self.lock:
                        self.lines.append(json.loads(line))
        except (OSError, ValueError):
            self.ended = True

    def wait_for(self, predicate, timeout=5.0):
        found = []

        def ok():
            with self.lock:
                for line in self.lines:
                    try:
                        matched = predicate(line)
                    except (KeyError, IndexError, TypeError, AttributeError):
                        matched = False  # a line of another shape (an empty set, say)
                    if matched:
                        found.append(line)
                        return True
            return False
        wait_until(ok, timeout)
        return found[0] if found else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def test_dtab_crud_versions_and_errors(c):
    d = tempfile.mkdtemp(prefix="switchyard-nstore-")
    n = Namer(BINARY, namer_config(file_store(d)))
    try:
        s, h, body = api(n, "GET", "/api/1/dtabs")
        c.eq((s, json.loads(body)), (200, []), "no namespaces at first")
        s, h, body = api(n, "GET", "/api/1/dtabs/default")
        c.eq(s, 404, "an unknown namespace is 404")
        c.check(b"default" in body, "and the message names it: %r" % body)

        s, h, _ = api(n, "POST", "/api/1/dtabs/default", "/svc => /#/io.l5d.fs;",
                      headers={"Content-Type": "application/dtab"})
        c.eq(s, 204, "POST creates")
        v1 = etag(h)
        c.check(v1 and v1.startswith('"'), "the write answers the new version as an ETag: %r" % v1)
        s, _, body = api(n, "POST", "/api/1/dtabs/default", "/a => /b")
        c.eq(s, 409, "POST of an existing namespace is 409")

        s, h, body = api(n, "GET", "/api/1/dtabs/default")
        c.eq((s, json.loads(body)), (200, [{"prefix": "/svc", "dst": "/#/io.l5d.fs"}]), "GET gives JSON dentries")
        c.eq(etag(h), v1, "with the version as ETag")
        s, h, body = api(n, "GET", "/api/1/dtabs/default", headers={"Accept": "application/dtab"})
        c.eq((s, header(h, "Content-Type"), body), (200, "application/dtab", b"/svc=>/#/io.l5d.fs"),
             "Accept: application/dtab gives the text")

        s, h, _ = api(n, "PUT", "/api/1/dtabs/default", json.dumps([{"prefix": "/svc", "dst": "/$/inet/127.1/1"}]),
                      headers={"Content-Type": "application/json", "If-Match": v1})
        c.eq(s, 204, "PUT with the current version (JSON body) replaces")
        v2 = etag(h)
        c.check(v2 != v1, "the version changed: %s -> %s" % (v1, v2))
        s, _, body = api(n, "PUT", "/api/1/dtabs/default", "/x => /y", headers={"If-Match": v1})
        c.eq(s, 412, "PUT with a stale version is 412")
        s, _, body = api(n, "GET", "/api/1/dtabs/default", headers={"Accept": "application/dtab"})
        c.eq(body, b"/svc=>/$/inet/127.1/1", "and changed nothing")

        s, _, body = api(n, "PUT", "/api/1/dtabs/default", "/svc => /a |")
        c.eq(s, 400, "an invalid dtab is 400")
        c.check(b"column" in body and b"Invalid dtab" in body, "with the parse error and its position: %r" % body)
        s, _, body = api(n, "PUT", "/api/1/dtabs/default", '[{"prefix": "/svc"}]',
                         headers={"Content-Type": "application/json"})
        c.eq(s, 400, "JSON dentries without dst are 400: %r" % body)
        s, _, body = api(n, "PUT", "/api/1/dtabs/nope", "/a => /b")
        c.eq(s, 404, "PUT of an unknown namespace is 404")
        s, _, body = api(n, "POST", "/api/1/dtabs/bad%2Fname", "/a => /b")
        c.eq(s, 400, "a namespace name with a slash is refused: %r" % body)
        s, _, body = api(n, "PUT", "/api/1/dtabs/default", "/a => /b;" * 40000)
        c.eq(s, 413, "a body over the limit is 413")
        s, _, body = api(n, "GET", "/api/1/dtabs/default", headers={"Accept": "application/dtab"})
        c.eq(body, b"/svc=>/$/inet/127.1/1", "failed requests changed nothing")

        s, _, _ = api(n, "DELETE", "/api/1/dtabs/default", headers={"If-Match": '"stale"'})
        c.eq(s, 412, "DELETE honours If-Match")
        s, _, _ = api(n, "DELETE", "/api/1/dtabs/default")
        c.eq(s, 204, "DELETE removes")
        s, _, _ = api(n, "DELETE", "/api/1/dtabs/default")
        c.eq(s, 404, "and a second DELETE is 404")
        s, _, _ = api(n, "PATCH", "/api/1/dtabs/default", "/a=>/b")
        c.eq(s, 405, "other methods are 405")
    finally:
        n.stop()


def test_file_store_survives_restart_and_kill(c):
    d = tempfile.mkdtemp(prefix="switchyard-nstore-")
    n = Namer(BINARY, namer_config(file_store(d)))
    acked = {}
    try:
        for i in range(4):
            s, _, _ = api(n, "POST", "/api/1/dtabs/ns%d" % i, "/svc => /#/v0")
            c.eq(s, 204, "create ns%d" % i)
            acked["ns%d" % i] = 0
        stop = threading.Event()
        lock = threading.Lock()
        inflight = {}

        def writer(ns):
            k = 0
            while not stop.is_set():
                k += 1
                with lock:
                    inflight[ns] = k
                try:
                    s, _, _ = http("PUT", n.api_url("/api/1/dtabs/" + ns), body=("/svc => /#/v%d" % k).encode(),
                                   timeout=10)
                except OSError:
                    return
                if s == 204:
                    with lock:
                        acked[ns] = k
        threads = [threading.Thread(target=writer, args=("ns%d" % i,)) for i in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: all(v >= 5 for v in acked.values()), 20)
        os.kill(n.pid, signal.SIGKILL)
        n.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        with lock:
            snapshot = dict(acked)
            tried = dict(inflight)
    finally:
        n.kill()
    c.check(all(v >= 5 for v in snapshot.values()), "writes were acknowledged before the kill: %s" % snapshot)
    n2 = Namer(BINARY, namer_config(file_store(d)))
    try:
        for ns, k in sorted(snapshot.items()):
            s, _, body = api(n2, "GET", "/api/1/dtabs/" + ns, headers={"Accept": "application/dtab"})
            got = int(body.decode().rsplit("/v", 1)[1]) if s == 200 else None
            # The last acknowledged write is there, or the one in flight at
            # the kill (written but never acknowledged): nothing older.
            c.check(got is not None and snapshot[ns] <= got <= tried[ns],
                    "%s after kill -9: v%s (last acknowledged v%d, in flight v%d)" % (ns, got, k, tried[ns]))
        c.eq(sorted(f for f in os.listdir(d) if f.startswith(".tmp")), [], "no temporary file is left behind")
    finally:
        n2.stop()


def test_concurrent_writers_with_if_match_lose_nothing(c):
    n = Namer(BINARY, namer_config(file_store(tempfile.mkdtemp(prefix="switchyard-nstore-"))))
    try:
        api(n, "POST", "/api/1/dtabs/counter", "/count => /#/0")
        per_writer = 10
        errors = []
        conflicts = [0]

        def writer():
            done = 0
            while done < per_writer:
                s, h, body = http("GET", n.api_url("/api/1/dtabs/counter"), headers={"Accept": "application/dtab"})
                if s != 200:
                    errors.append("GET %d" % s)
                    return
                value = int(body.decode().rsplit("/", 1)[1])
                s, _, _ = http("PUT", n.api_url("/api/1/dtabs/counter"),
                               headers={"If-Match": etag(h)}, body=("/count => /#/%d" % (value + 1)).encode())
                if s == 204:
                    done += 1
                elif s == 412:
                    conflicts[0] += 1
                else:
                    errors.append("PUT %d" % s)
                    return
        threads = [threading.Thread(target=writer) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c.eq(errors, [], "no writer failed")
        s, _, body = api(n, "GET", "/api/1/dtabs/counter", headers={"Accept": "application/dtab"})
        c.eq(body.decode(), "/count=>/#/%d" % (16 * per_writer),
             "16 writers x %d increments with If-Match: none lost (%d conflicts retried)" % (per_writer, conflicts[0]))
    finally:
        n.stop()


def test_bind_addr_resolve_delegate_and_watches(c):
    disco = tempfile.mkdtemp(prefix="switchyard-disco-")
    with open(os.path.join(disco, "hello"), "w") as f:
        f.write("127.0.0.1 8080\n")
    n = Namer(BINARY, namer_config("{kind: io.l5d.inMemory, namespaces: {default: '/svc => /#/io.l5d.fs;'}}",
                                   disco=disco))
    streams = []
    try:
        s, _, body = api(n, "GET", "/api/1/bind/default?path=/svc/hello")
        tree = json.loads(body)
        c.eq((s, tree["type"], tree["bound"]["id"]), (200, "leaf", "/#/io.l5d.fs/hello"), "bind gives Namerd's leaf")
        c.eq(tree["bound"]["addr"]["addrs"], [{"ip": "127.0.0.1", "port": 8080, "meta": {}}], "with its addresses")
        s, _, body = api(n, "GET", "/api/1/addr/default?path=/%23/io.l5d.fs/hello")
        c.eq((s, json.loads(body)["type"]), (200, "bound"), "addr of a bound id")
        s, _, body = api(n, "GET", "/api/1/resolve/default?path=/svc/hello")
        c.eq(json.loads(body)["addrs"][0]["port"], 8080, "resolve gives the addresses of a logical name")
        s, _, body = api(n, "GET", "/api/1/delegate/default?path=/svc/hello")
        c.eq(json.loads(body)["delegate"]["dentry"], {"prefix": "/svc", "dst": "/#/io.l5d.fs"}, "delegate shows the step")
        s, _, body = api(n, "GET", "/api/1/bind/default?path=/svc/hello&dtab=" + quote("/svc/hello => /$/inet/127.0.0.9/9"))
        c.eq(json.loads(body)["bound"]["id"], "/$/inet/127.0.0.9/9", "a dtab parameter overrides, as l5d-dtab does")
        s, _, body = api(n, "GET", "/api/1/bind/default?path=svc")
        c.eq(s, 400, "an invalid path is 400: %r" % body)
        s, _, body = api(n, "GET", "/api/1/bind/nope?path=/svc/hello")
        c.eq(s, 404, "bind in an unknown namespace is 404")

        bind = Stream(n.api_url("/api/1/bind/default?path=/svc/hello&watch=true"))
        dt = Stream(n.api_url("/api/1/dtabs/default?watch=true"))
        streams += [bind, dt]
        c.check(bind.wait_for(lambda t: t["bound"]["addr"].get("addrs", [{}])[0].get("port") == 8080) is not None,
                "a bind watch starts with the current tree")
        # Written whole (through a rename), so no empty file is ever read.
        with open(os.path.join(disco, ".hello.tmp"), "w") as f:
            f.write("127.0.0.1 8081\n")
        os.rename(os.path.join(disco, ".hello.tmp"), os.path.join(disco, "hello"))
        c.check(bind.wait_for(lambda t: t["bound"]["addr"].get("addrs", [{}])[0].get("port") == 8081) is not None,
                "and streams the namer's change")
        api(n, "PUT", "/api/1/dtabs/default", "/svc => /$/inet/127.0.0.7/7")
        c.check(bind.wait_for(lambda t: t["bound"]["id"] == "/$/inet/127.0.0.7/7") is not None,
                "and the dtab's change")
        c.check(dt.wait_for(lambda d: d == [{"prefix": "/svc", "dst": "/$/inet/127.0.0.7/7"}]) is not None,
                "a dtab watch streams the new dtab: %s" % dt.lines)
        api(n, "DELETE", "/api/1/dtabs/default")
        c.check(wait_until(lambda: dt.ended, 5), "deleting the namespace ends its watch")
        s, _, body = http("GET", n.admin_url("/admin/metrics.json"))
        c.check(json.loads(body)["namer/api/updates_sent"] >= 3, "updates are counted: %s" % body)
        s, _, body = http("GET", n.admin_url("/admin/metrics/prometheus"))
        p = harness.subprocess.run(["promtool", "check", "metrics"], input=body.decode(), capture_output=True, text=True)
        c.check(s == 200 and p.returncode == 0 and b"namer_api_updates_sent_total" in body,
                "the same in Prometheus form, clean for promtool: %s %s" % (p.stdout, p.stderr))
    finally:
        for s in streams:
            s.close()
        n.stop()


def test_tenant_overlays_and_tokens(c):
    cfg = namer_config("{kind: io.l5d.inMemory}", extra="""auth:
  adminToken: root-secret
  namespaceTokens: {acme: acme-secret, beta: beta-secret}
""")
    n = Namer(BINARY, cfg)
    try:
        c.check("no API tokens" not in n.stderr(), "no open-API warning when tokens are set")
        admin = {"Authorization": "Bearer root-secret"}
        s, h, _ = api(n, "POST", "/api/1/dtabs/default", "/svc => /$/inet/127.0.0.1/1")
        c.eq((s, header(h, "WWW-Authenticate")), (401, "Bearer"), "a write without a token is 401")
        s, _, _ = api(n, "POST", "/api/1/dtabs/default", "/svc => /$/inet/127.0.0.1/1", headers=admin)
        c.eq(s, 204, "the admin token writes any namespace")
        s, _, body = api(n, "POST", "/api/1/dtabs/acme?base=default", "/svc/b => /$/inet/127.0.0.2/2",
                         headers={"Authorization": "Bearer acme-secret"})
        c.eq(s, 204, "a tenant's token creates its own namespace: %r" % body)
        s, _, _ = api(n, "POST", "/api/1/dtabs/beta", "/svc => /$/inet/127.0.0.3/3",
                      headers={"Authorization": "Bearer acme-secret"})
        c.eq(s, 403, "but not another tenant's")
        s, _, _ = api(n, "PUT", "/api/1/dtabs/default", "/svc => /x", headers={"Authorization": "Bearer acme-secret"})
        c.eq(s, 403, "nor the base")
        s, _, _ = api(n, "GET", "/api/1/dtabs/default")
        c.eq(s, 200, "reads need no token")

        def bound(ns, path):
            s, _, body = api(n, "GET", "/api/1/bind/%s?path=%s" % (ns, path))
            return json.loads(body)["bound"]["id"] if s == 200 else s
        c.eq(bound("acme", "/svc/a"), "/$/inet/127.0.0.1/1", "a tenant inherits its base's entries")
        c.eq(bound("acme", "/svc/b"), "/$/inet/127.0.0.2/2", "and its own entries win")
        c.eq(bound("default", "/svc/b"), "/$/inet/127.0.0.1/1", "the base is unchanged")
        api(n, "PUT", "/api/1/dtabs/default", "/svc => /$/inet/127.0.0.4/4", headers=admin)
        c.eq(bound("acme", "/svc/a"), "/$/inet/127.0.0.4/4", "a base change reaches the tenant")
        s, h, _ = api(n, "GET", "/api/1/dtabs/acme")
        c.eq(header(h, "X-Switchyard-Base"), "default", "the base is shown")
        s, _, body = api(n, "PUT", "/api/1/dtabs/default?base=acme", "/svc => /x", headers=admin)
        c.eq(s, 400, "a cycle of bases is refused: %r" % body)
        s, _, body = api(n, "DELETE", "/api/1/dtabs/default", headers=admin)
        c.eq(s, 409, "a namespace that is a base cannot be deleted: %r" % body)
    finally:
        n.stop()


def test_open_api_warns_and_bad_config_is_refused(c):
    n = Namer(BINARY, namer_config("{kind: io.l5d.inMemory}"))
    try:
        c.check("no API tokens are configured" in n.stderr(), "an open API is warned about: %r" % n.stderr())
    finally:
        n.stop()
    d = tempfile.mkdtemp(prefix="switchyard-ncfg-")
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write("""storage: {kind: io.l5d.zk, zkAddrs: []}
interfaces:
- {kind: io.l5d.destination}
- {kind: io.l5d.httpController, prot: 4180}
""")
    p = harness.subprocess.run([BINARY, "namer", "--check", "-c", bad], capture_output=True, text=True)
    c.eq(p.returncode, 2, "an invalid namer config is refused")
    for want in ('storage.kind: unknown storage kind "io.l5d.zk"', 'interface kind "io.l5d.destination"',
                 "interfaces[1].prot"):
        c.check(want in p.stderr, "the refusal names %r: %r" % (want, p.stderr))


def run_cli(n, *args, token=None):
    env = dict(os.environ)
    env["SWITCHYARD_NAMER"] = n.api_url("").rstrip("/")
    env.pop("SWITCHYARD_TOKEN", None)
    if token:
        env["SWITCHYARD_TOKEN"] = token
    return harness.subprocess.run([BINARY, "dtab"] + list(args), capture_output=True, text=True, env=env, timeout=30)


def test_cli_dtab_commands(c):
    d = tempfile.mkdtemp(prefix="switchyard-cli-")
    os.mkdir(os.path.join(d, "disco"))
    with open(os.path.join(d, "disco", "hello"), "w") as f:
        f.write("127.0.0.1 8080\n")
    n = Namer(BINARY, namer_config("{kind: io.l5d.inMemory}", extra="auth: {adminToken: t0k}\n",
                                   disco=os.path.join(d, "disco")))
    v1 = os.path.join(d, "v1.dtab")
    v2 = os.path.join(d, "v2.dtab")
    bad = os.path.join(d, "bad.dtab")
    cases = os.path.join(d, "cases.txt")
    with open(v1, "w") as f:
        f.write("/svc => /#/io.l5d.fs;\n/svc/web => /$/inet/127.0.0.1/80;\n")
    with open(v2, "w") as f:
        f.write("/svc => /#/io.l5d.k8s/default/http;\n")
    with open(bad, "w") as f:
        f.write("/svc => /a |\n")
    with open(cases, "w") as f:
        f.write("# the web name is pinned\n/svc/web -> /$/inet/127.0.0.1/80\n/svc/hello -> /#/io.l5d.fs/hello  # fs\n/other -> ~\n")
    try:
        p = run_cli(n, "create", "default", v1)
        c.eq(p.returncode, 1, "a write without the token fails: %s" % p.stderr)
        c.check("401" in p.stderr, "and says why: %r" % p.stderr)
        c.eq(run_cli(n, "create", "default", v1, token="t0k").returncode, 0, "create with the token")
        p = run_cli(n, "list")
        c.eq((p.returncode, p.stdout), (0, "default\n"), "list")
        p = run_cli(n, "get", "default")
        c.eq((p.returncode, p.stdout), (0, "/svc=>/#/io.l5d.fs;\n/svc/web=>/$/inet/127.0.0.1/80;\n"), "get prints the dtab")
        version = p.stderr.split("version ")[1].split()[0]
        c.check(len(version) > 0, "and the version on stderr: %r" % p.stderr)

        p = run_cli(n, "test", "default", "--cases", cases)
        c.check(p.returncode == 0 and p.stdout.count("ok ") == 3, "the cases pass against the namespace: %s" % p.stdout)
        p = run_cli(n, "test", "--dtab-file", v2, "--cases", cases)
        c.eq(p.returncode, 1, "a dtab that changes an answer fails the test: %s" % p.stdout)
        c.check("FAIL /svc/web -> /#/io.l5d.k8s/default/http/web" in p.stdout, "naming the case and the answer: %s" % p.stdout)
        p = run_cli(n, "test", "--dtab-file", v1, "--cases", cases)
        c.eq(p.returncode, 0, "a local dtab file passes the same cases: %s" % p.stdout)

        p = run_cli(n, "update", "default", bad, token="t0k")
        c.eq(p.returncode, 1, "an invalid dtab file is refused before it is sent")
        c.check("bad.dtab" in p.stderr and "column" in p.stderr, "with its place: %r" % p.stderr)
        p = run_cli(n, "update", "default", v2, "--version", version, token="t0k")
        c.eq(p.returncode, 0, "update at the version read: %s" % p.stderr)
        p = run_cli(n, "update", "default", v1, "--version", version, token="t0k")
        c.eq(p.returncode, 1, "a second update based on the old version is refused")
        c.check("changed since version" in p.stderr, "and says the namespace changed: %r" % p.stderr)
        p = run_cli(n, "get", "default")
        c.eq(p.stdout, "/svc=>/#/io.l5d.k8s/default/http;\n", "the concurrent change was not overwritten")
        c.eq(run_cli(n, "delete", "default", token="t0k").returncode, 0, "delete")
        p = run_cli(n, "get", "default")
        c.check(p.returncode == 1 and "404" in p.stderr, "get of a deleted namespace: %r" % p.stderr)
        p = harness.subprocess.run([BINARY, "dtab", "list", "--namer", "http://127.0.0.1:1"], capture_output=True, text=True)
        c.check(p.returncode == 2 and "refused" in p.stderr, "an unreachable namer is exit 2 with why: %r" % p.stderr)
    finally:
        n.stop()


TESTS = [
    test_dtab_crud_versions_and_errors,
    test_file_store_survives_restart_and_kill,
    test_concurrent_writers_with_if_match_lose_nothing,
    test_bind_addr_resolve_delegate_and_watches,
    test_tenant_overlays_and_tokens,
    test_open_api_warns_and_bad_config_is_refused,
    test_cli_dtab_commands,
]

if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    sys.exit(harness.Checks().run([t for t in TESTS if not only or t.__name__ in only]))
