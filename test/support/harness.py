"""Helpers for integration tests of the Switchyard router binary.

Imported by plain test scripts (no framework): tests are functions, and a
main runs them through `Checks.run`, which prints one line per failure and a
summary and returns the exit code. Python 3 standard library only.

Nothing here picks a "free" port (that races): every server binds port 0
and reports the port it got.

  Backend(name)        backend.py (next to this file) as a subprocess;
                       .port, .url(path), .stop(), .kill(), .logs()
  Router(binary, cfg)  `binary router -c linkerd.yaml` as a subprocess, ready
                       once GET /admin/ping on its admin port says pong;
                       .admin_port, .port(label, i), .logs(), .stop(), .pid
  http(...)            one request with http.client -> (status, headers, body)
  Connection(...)      the same over one kept-alive connection
  RawConnection(port)  hand-written requests over a plain socket
  curl(args)           the real curl binary, with -sS
  rss_kb / peak_rss_kb VmRSS / VmHWM of a process, in kB
  wait_until           polls a predicate
  Checks               check / eq / run

Router ports: the config passes port 0 everywhere; the router writes the
ports it bound to the file named by $SWITCHYARD_PORTS_FILE as JSON
`{"admin": 9990, "routers": {"<label>": [port, ...]}}` (through a temp file
and a rename). The harness points that variable at a file in its temp dir.
"""

import atexit
import http.client as http_client
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND_PY = os.path.join(HERE, "backend.py")

POLL_S = 0.02


class HarnessError(Exception):
    """A server the harness started did not come up (message has its logs)."""


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def wait_until(predicate, timeout, interval=POLL_S):
    """Calls predicate() every `interval` s until it is truthy (-> True) or
    `timeout` s have passed (-> False). An exception counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return True
        except Exception:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _proc_status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid, encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def rss_kb(pid):
    """Resident set size (VmRSS) of a live process in kB; None if it is gone."""
    return _proc_status_kb(pid, "VmRSS")


def peak_rss_kb(pid):
    """Peak resident set size (VmHWM) of a live process in kB; None if gone."""
    return _proc_status_kb(pid, "VmHWM")


def _read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _stop_process(proc, grace):
    """SIGTERM, then SIGKILL after `grace` s. Returns the exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _kill_process(proc):
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    proc.wait()
    return proc.returncode


def _short(text, limit=2000):
    return text if len(text) <= limit else "...(%d chars cut)...\n%s" % (
        len(text) - limit, text[-limit:])


# --------------------------------------------------------------------------
# Backend
# --------------------------------------------------------------------------

class Backend:
    """backend.py running as a subprocess on 127.0.0.1:<ephemeral port>.

    Started by the constructor (so it also works without `with`); the
    context manager stops it. `.port` stays set after stop()/kill(), so a test
    can point a router at a dead backend."""

    def __init__(self, name, host="127.0.0.1", ready_timeout=10.0, python=None, port=0):
        self.name = name
        self.host = host
        self.port = None
        self.tmpdir = tempfile.mkdtemp(prefix="switchyard-backend-")
        self.port_file = os.path.join(self.tmpdir, "port")
        self.stdout_path = os.path.join(self.tmpdir, "stdout.txt")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.txt")
        cmd = [python or sys.executable, BACKEND_PY, "--name", name, "--host", host,
               "--port", str(port), "--port-file", self.port_file]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _PROCESSES.append(self.proc)
        self.pid = self.proc.pid
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            _kill_process(self.proc)
            self._cleanup()
            raise

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.port_file, encoding="ascii") as f:
                    text = f.read()
                self.port = int(text.strip())
                return
            except (FileNotFoundError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise HarnessError("backend %r exited with %s before listening:\n%s"
                                   % (self.name, self.proc.returncode, _short(self.logs())))
            if time.monotonic() >= deadline:
                raise HarnessError("backend %r did not report a port within %.0f s:\n%s"
                                   % (self.name, timeout, _short(self.logs())))
            time.sleep(POLL_S)

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def url(self, path="/"):
        if not path.startswith("/"):
            path = "/" + path
        return "http://%s:%d%s" % (self.host, self.port, path)

    def logs(self):
        return _read_text(self.stdout_path) + _read_text(self.stderr_path)

    def stats(self):
        """The backend's /stats as a dict (one request on a new connection,
        which the `connections` count includes)."""
        status, _, body = http("GET", self.url("/stats"))
        if status != 200:
            raise HarnessError("backend %r /stats answered %d" % (self.name, status))
        return json.loads(body)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM, SIGKILL after `grace` s; returns the exit code (0 = clean)."""
        rc = _stop_process(self.proc, grace)
        self._cleanup()
        return rc

    def kill(self):
        """SIGKILL (a backend that dies); returns the exit code (-9)."""
        rc = _kill_process(self.proc)
        self._cleanup()
        return rc

    def _cleanup(self):
        # The temp dir (with the logs, still readable after stop) goes at exit.
        _TEMP_DIRS.add(self.tmpdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return "Backend(%r, port=%s)" % (self.name, self.port)


# --------------------------------------------------------------------------
# Router
# --------------------------------------------------------------------------

def free_port(kind=socket.SOCK_DGRAM, host="127.0.0.1"):
    """A port the system just had free (for servers that cannot report the
    port they bound, like dnsmasq). Another process could take it meanwhile;
    on loopback in a test that is rare enough."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_udp_tcp_port(host="127.0.0.1"):
    """A port free for both UDP and TCP on `host` just now."""
    for _ in range(100):
        port = free_port(socket.SOCK_DGRAM, host)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind((host, port))
                return port
            except OSError:
                continue
    raise HarnessError("no port free for both UDP and TCP")


class Dnsmasq:
    """Debian's dnsmasq as a DNS server on 127.0.0.1:<port> for tests, and
    nothing else: no upstream servers, no /etc/hosts, no DHCP, no pid file.

    Names under .test are local: one not in the hosts file gets NXDOMAIN.
    A and AAAA records come from a hosts file that set_hosts() rewrites
    (then SIGHUP, so dnsmasq rereads it and clears its cache); SRV records
    are given at start (`srv`: list of (name, target, port, priority,
    weight)) and changed with restart(). `ttl` is the TTL of every answer."""

    def __init__(self, hosts=(), srv=(), ttl=1, ready_timeout=10.0):
        self.tmpdir = tempfile.mkdtemp(prefix="switchyard-dns-")
        _TEMP_DIRS.add(self.tmpdir)
        self.hosts_path = os.path.join(self.tmpdir, "hosts")
        self.log_path = os.path.join(self.tmpdir, "dnsmasq.log")
        self.ttl = ttl
        self.srv = list(srv)
        self.proc = None
        self._write_hosts(hosts)
        # dnsmasq listens on UDP and TCP: take a port free in both, and try
        # another if someone took it meanwhile.
        for attempt in range(5):
            self.port = free_udp_tcp_port()
            try:
                self.start(ready_timeout)
                return
            except HarnessError as e:
                if "Address already in use" not in str(e) or attempt == 4:
                    raise

    def _write_hosts(self, hosts):
        tmp = self.hosts_path + ".tmp"
        with open(tmp, "w") as f:
            for ip, name in hosts:
                f.write("%s %s\n" % (ip, name))
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.hosts_path)

    def start(self, ready_timeout=10.0):
        cmd = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
               "--no-poll", "--pid-file", "--bind-interfaces", "--listen-address=127.0.0.1",
               "--port=%d" % self.port, "--addn-hosts=%s" % self.hosts_path, "--local=/test/",
               "--local-ttl=%d" % self.ttl, "--log-facility=%s" % self.log_path, "--log-queries"]
        if os.geteuid() == 0:
            cmd.append("--user=root")  # dnsmasq drops to `nobody` otherwise
        for name, target, port, prio, weight in self.srv:
            cmd.append("--srv-host=%s,%s,%d,%d,%d" % (name, target, port, prio, weight))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        _PROCESSES.append(self.proc)
        deadline = time.monotonic() + ready_timeout
        while not self._answers():
            if self.proc.poll() is not None:
                raise HarnessError("dnsmasq exited: %s" % self.proc.stderr.read().decode(errors="replace"))
            if time.monotonic() > deadline:
                raise HarnessError("dnsmasq not answering on port %d" % self.port)
            time.sleep(POLL_S)

    def _answers(self):
        # A query for a name nobody has: any well-formed answer means ready.
        query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ready\x04test\x00\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, ("127.0.0.1", self.port))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    def set_hosts(self, hosts):
        self._write_hosts(hosts)
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            _stop_process(self.proc, 5)

    def restart(self, srv=None, hosts=None):
        self.stop()
        if srv is not None:
            self.srv = list(srv)
        if hosts is not None:
            self._write_hosts(hosts)
        self.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port


class Etcd:
    """Debian's etcd (v3) on 127.0.0.1 loopback ports, with its data in a
    temporary directory that outlives stop(), so start() brings the same
    state back. client_url is what the JSON gateway answers on."""

    def __init__(self, ready_timeout=20.0):
        self.tmpdir = tempfile.mkdtemp(prefix="switchyard-etcd-")
        _TEMP_DIRS.add(self.tmpdir)
        self.data_dir = os.path.join(self.tmpdir, "data")
        self.log_path = os.path.join(self.tmpdir, "etcd.log")
        self.port = free_port(socket.SOCK_STREAM)
        self.peer_port = self.port
        while self.peer_port == self.port:  # two free ports, not the same one twice
            self.peer_port = free_port(socket.SOCK_STREAM)
        self.proc = None
        self.start(ready_timeout)

    @property
    def client_url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, ready_timeout=20.0):
        cmd = ["etcd", "--name", "test", "--data-dir", self.data_dir,
               "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
               "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer_port,
               "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer_port,
               "--initial-cluster", "test=http://127.0.0.1:%d" % self.peer_port]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        _PROCESSES.append(self.proc)

        def ready():
            if self.proc.poll() is not None:
                raise HarnessError("etcd exited with %s:\n%s" % (self.proc.returncode, _short(_read_text(self.log_path))))
            try:
                status, _, body = http("GET", self.client_url + "/health", timeout=1)
                return status == 200 and b"true" in body
            except (OSError, http_client.HTTPException):
                return False
        if not wait_until(ready, ready_timeout):
            _kill_process(self.proc)
            raise HarnessError("etcd not ready within %.0f s:\n%s" % (ready_timeout, _short(_read_text(self.log_path))))

    def ctl(self, *args):
        """etcdctl against this server; the CompletedProcess (text)."""
        env = dict(os.environ, ETCDCTL_API="3")
        return subprocess.run(["etcdctl", "--endpoints", self.client_url] + list(args),
                              capture_output=True, text=True, env=env, timeout=30)

    def stop(self, grace=5.0):
        if self.proc:
            _stop_process(self.proc, grace)


class Router:
    """`binary router -c <tmp>/linkerd.yaml` as a subprocess.

    With wait_ready (the default), the constructor returns once the ports file
    has been written and GET /admin/ping on the admin port answers `pong`,
    or raises HarnessError (with the router's output) after ready_timeout s
    or if the process exits first. With wait_ready=False it returns at once
    (for configs the router must reject: use wait_exit())."""

    command = "router"

    def __init__(self, binary, config_text, ready_timeout=15.0, wait_ready=True,
                 env=None, args=None):
        self.binary = binary
        self.tmpdir = tempfile.mkdtemp(prefix="switchyard-%s-" % self.command)
        self.config_path = os.path.join(self.tmpdir, "linkerd.yaml")
        self.ports_file = os.path.join(self.tmpdir, "ports.json")
        self.stdout_path = os.path.join(self.tmpdir, "stdout.txt")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.txt")
        self.ports = None
        self.admin_port = None
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(config_text)
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["SWITCHYARD_PORTS_FILE"] = self.ports_file
        cmd = [binary, self.command, "-c", self.config_path] + list(args or [])
        self.cmd = cmd
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=full_env)
        _PROCESSES.append(self.proc)
        self.pid = self.proc.pid
        _TEMP_DIRS.add(self.tmpdir)
        if wait_ready:
            try:
                self._wait_ready(ready_timeout)
            except BaseException:
                _kill_process(self.proc)
                raise

    def _fail(self, what):
        raise HarnessError("%s %s\ncommand: %s\nconfig:\n%s\noutput:\n%s"
                           % (self.command, what, " ".join(self.cmd), _read_text(self.config_path),
                              _short(self.logs())))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last_problem = "no ports file %s" % self.ports_file
        while True:
            if self.proc.poll() is not None:
                self._fail("exited with %s before it was ready (%s)"
                           % (self.proc.returncode, last_problem))
            if self.ports is None:
                try:
                    with open(self.ports_file, encoding="utf-8") as f:
                        ports = json.load(f)
                    self.admin_port = int(ports["admin"])
                    ports.setdefault("routers", {})
                    self.ports = ports
                    last_problem = "admin port %d: no pong yet" % self.admin_port
                except FileNotFoundError:
                    pass
                except (ValueError, KeyError, TypeError) as e:
                    last_problem = "bad ports file: %s" % e
            if self.ports is not None:
                try:
                    status, _, body = http("GET", "http://127.0.0.1:%d/admin/ping"
                                           % self.admin_port, timeout=2)
                    if status == 200 and body.strip() == b"pong":
                        return
                    last_problem = "/admin/ping answered %d %r" % (status, body[:100])
                except (OSError, http_client.HTTPException) as e:
                    last_problem = "/admin/ping: %s" % e
            if time.monotonic() >= deadline:
                self._fail("not ready within %.0f s (%s)" % (timeout, last_problem))
            time.sleep(POLL_S)

    def port(self, label, index=0):
        """The port the router labelled `label` bound (its index-th server)."""
        try:
            return int(self.ports["routers"][label][index])
        except (KeyError, IndexError, TypeError):
            raise HarnessError("router has no port %s[%d]; ports file: %s"
                               % (label, index, json.dumps(self.ports)))

    def url(self, label, path="/", index=0):
        return "http://127.0.0.1:%d%s" % (self.port(label, index), path)

    def admin_url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.admin_port, path)

    def stdout(self):
        return _read_text(self.stdout_path)

    def stderr(self):
        return _read_text(self.stderr_path)

    def logs(self):
        """stdout then stderr, as text."""
        return self.stdout() + self.stderr()

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout=10.0):
        """Waits for the process to exit by itself; its exit code, or None."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=10.0):
        """SIGTERM, SIGKILL after `grace` s; returns the exit code."""
        return _stop_process(self.proc, grace)

    def kill(self):
        return _kill_process(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Namer(Router):
    """`binary namer -c <tmp>/linkerd.yaml`: the namer service, started and
    checked for readiness as Router is. api_url() is its first
    io.l5d.httpController interface."""

    command = "namer"

    def api_port(self, index=0):
        try:
            return int(self.ports["api"][index])
        except (KeyError, IndexError, TypeError):
            raise HarnessError("namer has no API port %d; ports file: %s" % (index, json.dumps(self.ports)))

    def api_url(self, path="/", index=0):
        return "http://127.0.0.1:%d%s" % (self.api_port(index), path)


def increment_concurrently(replicas, ns, writers=16, per_writer=5):
    """`writers` threads, spread over the namer services `replicas` in turn,
    each adding one to the namespace `ns`'s `/count => /#/N`, read then
    written with If-Match, `per_writer` times (a 412 is tried again). The
    namespace must exist. Returns the statuses that were neither 204 nor
    412 (empty when every write went through)."""
    errors = []

    def writer(n):
        done = 0
        while done < per_writer:
            s, h, body = http("GET", n.api_url("/api/1/dtabs/" + ns), headers={"Accept": "application/dtab"})
            if s != 200:
                continue  # another replica's create may not have arrived yet
            value = int(body.decode().rsplit("/", 1)[1])
            s, _, _ = http("PUT", n.api_url("/api/1/dtabs/" + ns), headers={"If-Match": header(h, "ETag")},
                           body=("/count => /#/%d" % (value + 1)).encode())
            if s == 204:
                done += 1
            elif s != 412:
                errors.append(s)
                return
    threads = [threading.Thread(target=writer, args=(replicas[i % len(replicas)],)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


# --------------------------------------------------------------------------
# HTTP clients
# --------------------------------------------------------------------------

def _parse_proxy(proxy):
    """(host, port) from "host:port", "http://host:port" or a (host, port) tuple."""
    if isinstance(proxy, (tuple, list)):
        return proxy[0], int(proxy[1])
    if isinstance(proxy, int):
        return "127.0.0.1", proxy
    if "://" not in proxy:
        proxy = "http://" + proxy
    u = urllib.parse.urlsplit(proxy)
    return u.hostname, u.port or 80


def _header_names(headers):
    return {k.lower() for k, _ in headers}


def _normalize_headers(headers):
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return [(k, v) for k, v in headers]


def _send_body(sock, body, chunked, errors):
    try:
        if isinstance(body, (bytes, bytearray, memoryview)):
            if chunked:
                if body:
                    sock.sendall(b"%x\r\n" % len(body) + bytes(body) + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
            else:
                view = memoryview(body)
                for i in range(0, len(view), 1 << 20):
                    sock.sendall(view[i:i + (1 << 20)])
        else:
            for piece in body:
                if isinstance(piece, str):
                    piece = piece.encode("utf-8")
                if chunked:
                    if piece:
                        sock.sendall(b"%x\r\n" % len(piece))
                        sock.sendall(piece)
                        sock.sendall(b"\r\n")
                else:
                    sock.sendall(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
    except Exception as e:          # the server may answer early and close
        errors.append(e)


def _request(conn, method, target, host_header, headers, body, timeout):
    """Sends one request on an http.client connection and reads the response.
    The body is sent from a thread while the response is read, so a server
    that streams its answer while the upload goes on (/echo) cannot deadlock.

    body: None, bytes/str (Content-Length unless the headers say chunked), or
    an iterable of bytes (chunked unless the headers give a Content-Length)."""
    headers = _normalize_headers(headers)
    names = _header_names(headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
    chunked = False
    if body is not None:
        if "transfer-encoding" in names:
            chunked = True
        elif "content-length" not in names:
            if isinstance(body, (bytes, bytearray, memoryview)):
                headers.append(("Content-Length", str(len(body))))
            else:
                headers.append(("Transfer-Encoding", "chunked"))
                chunked = True
    conn.timeout = timeout
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    if "host" not in names and host_header is not None:
        conn.putheader("Host", host_header)
    for k, v in headers:
        conn.putheader(k, v)
    conn.endheaders()
    sender = None
    errors = []
    if body is not None:
        sender = threading.Thread(target=_send_body, args=(conn.sock, body, chunked, errors),
                                  daemon=True)
        sender.start()
    try:
        resp = conn.getresponse()
        data = resp.read()
    finally:
        if sender is not None:
            sender.join(timeout)
    return resp, data


def _target_for(url, proxy):
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http":
        raise ValueError("only http:// URLs: %r" % url)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    if proxy is not None:
        # Absolute-form, as a client talking to an HTTP proxy sends it.
        return (u.hostname, u.port or 80), "http://%s%s" % (u.netloc, path), u.netloc
    return (u.hostname, u.port or 80), path, u.netloc


def http(method, url, headers=None, body=None, proxy=None, timeout=10):
    """One request on a new connection with http.client.

    headers: list of (name, value) or a dict; a Host header given here
    replaces the one from the URL. proxy: "host:port", "http://host:port",
    (host, port) or a port; then the connection goes to the proxy and the
    request target is absolute-form (http://host/path). timeout: seconds per
    socket operation. Returns (status, [(name, value), ...], body bytes)."""
    (host, port), target, host_header = _target_for(url, proxy)
    if proxy is not None:
        host, port = _parse_proxy(proxy)
    conn = http_client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.connect()
        resp, data = _request(conn, method, target, host_header, headers, body, timeout)
        return resp.status, resp.getheaders(), data
    finally:
        conn.close()


class Connection:
    """Several requests over one kept-alive connection (http.client).

        with Connection("127.0.0.1", port) as c:
            status, headers, body = c.request("GET", "/a")

    request() takes a path (origin-form) or a full http:// URL (sent
    absolute-form, as to a proxy)."""

    def __init__(self, host, port, timeout=10):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = http_client.HTTPConnection(host, port, timeout=timeout)
        self.conn.auto_open = 0     # a closed connection is an error, not a reconnect
        self.conn.connect()

    def request(self, method, target, headers=None, body=None, timeout=None):
        if target.startswith("http://"):
            host_header = urllib.parse.urlsplit(target).netloc
        else:
            host_header = "%s:%d" % (self.host, self.port)
        resp, data = _request(self.conn, method, target, host_header, headers, body,
                              timeout or self.timeout)
        return resp.status, resp.getheaders(), data

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def header(headers, name, default=None):
    """The first value of header `name` (case-insensitive) in a list of pairs."""
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


def header_all(headers, name):
    name = name.lower()
    return [v for k, v in headers if k.lower() == name]


def curl(args, timeout=30, text=True):
    """Runs `curl -sS ARGS...`; returns the CompletedProcess (stdout/stderr
    as str unless text=False). Raises subprocess.TimeoutExpired."""
    kwargs = dict(encoding="utf-8", errors="replace") if text else {}
    return subprocess.run(["curl", "-sS"] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, **kwargs)


class RawConnection:
    """A plain TCP connection for hand-written requests and byte-exact
    responses (malformed input, pipelining, 100-continue, upgrades).

        with RawConnection(port) as r:
            r.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            status, headers, body = r.response()
            assert r.closed()

    Reads are buffered, so pipelined responses come back one by one."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self):
        piece = self.sock.recv(65536)
        if not piece:
            raise EOFError("connection closed by peer (%d bytes unread)" % len(self.buf))
        self.buf += piece

    def read_until(self, marker):
        """Bytes up to and including `marker`."""
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_available(self, timeout=0.2):
        """Whatever arrives within `timeout` s (b"" if nothing)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            while True:
                self._fill()
        except (socket.timeout, EOFError):
            pass
        finally:
            self.sock.settimeout(old)
        out, self.buf = self.buf, b""
        return out

    def read_to_eof(self):
        while True:
            try:
                self._fill()
            except EOFError:
                break
        out, self.buf = self.buf, b""
        return out

    def head(self):
        """(status, [(name, value)], raw head bytes) of the next response."""
        raw = self.read_until(b"\r\n\r\n")
        lines = raw[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError("malformed status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        return int(parts[1]), headers, raw

    def response(self, method="GET"):
        """(status, headers, body) of the next response (1xx included as
        they come), reading its body by Content-Length, chunked encoding or
        to EOF. Chunked bodies are returned decoded."""
        status, headers, _ = self.head()
        if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
            return status, headers, b""
        te = (header(headers, "transfer-encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                size = int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    return status, headers, body
                body += self.read_exact(size)
                self.read_exact(2)
        cl = header(headers, "content-length")
        if cl is not None:
            return status, headers, self.read_exact(int(cl))
        return status, headers, self.read_to_eof()

    def closed(self, timeout=5):
        """True if the peer closes the connection (EOF) within `timeout` s
        with nothing more to read; False if bytes arrive or it stays open."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(old)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def _short_repr(value, limit=300):
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "...(%d chars)" % len(r)


class Checks:
    """Records checks and failures.

        c = Checks()
        def test_something(c): c.eq(status, 200, "GET /")
        sys.exit(c.run([test_something, ...]))

    A test function takes the Checks object as its only argument, or no
    argument (then it uses a module-level Checks). check()/eq() return the
    condition, so a test can stop early: `if not c.eq(...): return`."""

    def __init__(self, out=None):
        self.out = out
        self.checks = 0
        self.failures = []
        self.current = None

    def _print(self, line):
        print(line, file=self.out or sys.stdout, flush=True)

    def fail(self, message):
        line = "FAIL %s: %s" % (self.current or "-", message)
        self.failures.append(line)
        self._print(line)
        return False

    def check(self, cond, message):
        self.checks += 1
        if not cond:
            return self.fail(message)
        return True

    def eq(self, got, want, message):
        self.checks += 1
        if got != want:
            return self.fail("%s: got %s, want %s"
                             % (message, _short_repr(got), _short_repr(want)))
        return True

    def run(self, test_functions):
        """Runs each test; an exception is a failure (with its traceback,
        indented under the FAIL line). Prints a summary; returns 0 if nothing
        failed, else 1."""
        start = time.monotonic()
        tests = list(test_functions)
        failed_tests = 0
        for fn in tests:
            self.current = fn.__name__
            before = len(self.failures)
            try:
                if len(inspect.signature(fn).parameters) >= 1:
                    fn(self)
                else:
                    fn()
            except Exception as e:
                self.fail("raised %s: %s" % (type(e).__name__, _short_repr(str(e), 500)))
                tb = traceback.format_exc().rstrip().splitlines()
                self._print("\n".join("    " + line for line in tb))
            if len(self.failures) > before:
                failed_tests += 1
        self.current = None
        self._print("%d tests, %d checks, %d failures (%d tests failed) in %.1f s"
                    % (len(tests), self.checks, len(self.failures), failed_tests,
                       time.monotonic() - start))
        return 1 if self.failures else 0


# --------------------------------------------------------------------------
# Temp dirs: kept while the test runs (logs are read after stop), removed at
# exit.
# --------------------------------------------------------------------------

_TEMP_DIRS = set()
_PROCESSES = []     # every process started here, killed at exit if still up


def _at_exit():
    for proc in _PROCESSES:
        if proc.poll() is None:
            _kill_process(proc)
    if os.environ.get("SWITCHYARD_KEEP_TEMP"):
        return
    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_at_exit)
