#!/usr/bin/env python3
"""An HTTP/1.1 backend server for Switchyard's tests and examples.

Usage: backend.py --name NAME [--host 127.0.0.1] [--port 0] [--port-file FILE]

Binds HOST:PORT (port 0 = an ephemeral port), writes the bound port as one
line to FILE (through FILE.tmp and a rename, so a reader never sees a partial
file), prints `listening on HOST:PORT` and serves until SIGTERM or SIGINT,
then exits 0.

Written on asyncio streams with its own HTTP/1.1 parser, so bodies of any
size are streamed in 64 KB pieces with bounded memory, and many keep-alive
connections are served at once. Python 3 standard library only.

Requests
  * Request line `METHOD SP target SP HTTP/1.x`; the target may be
    origin-form (`/path?q`), absolute-form (`http://host/path?q`, as a proxy
    receives it) or `*`. HTTP/2+ gets 505.
  * Header names are case-insensitive; they are reported with their original
    case and order. Obsolete line folding, a name with whitespace or a bad
    character, a control character in a value: 400. The header section
    (request line included) is capped at 64 KB: 431 if larger. Chunked
    trailers count against a cap of their own (64 KB).
  * Bodies: Content-Length (repeated values must agree), or
    `Transfer-Encoding: chunked` (extensions ignored, trailers kept). Both at
    once: 400 (a request smuggling signal). A transfer coding other than plain
    `chunked`: 501.
  * Keep-alive: HTTP/1.1 keeps the connection unless `Connection: close`;
    HTTP/1.0 closes unless `Connection: keep-alive`. Pipelined requests are
    answered in order.
  * `Expect: 100-continue` on an HTTP/1.1 request with a body: the server
    sends `HTTP/1.1 100 Continue` before it reads the body.
  * Any malformed request: an error response with `Connection: close`, then
    the connection is closed. A Host header is not required.

Routes (by the path of the target; the query string is not part of it)
  default        200 application/json, the request as seen:
                 {"backend", "method", "target", "path", "version",
                  "headers": [[name, value], ...], "body_bytes",
                  "body_sha256", "trailers": [[name, value], ...]}
  /status/<code> that status (200-599) with a short text/plain body (none for
                 204 and 304).
  /bytes/<n>     n bytes of b"0123456789abcdef" repeated, sent in 64 KB
                 pieces; Content-Length, or chunked with `?chunked=1`
                 (HTTP/1.1 requests only).
  /echo          the request body streamed back as it arrives, chunked
                 (HTTP/1.0: delimited by closing the connection); the
                 Content-Type of the request is copied.
  /slow?ms=N     reads the request, waits N ms (default 1000), then answers
                 as the default route.
  /close         answers as the default route with `Connection: close`, then
                 closes the connection.
  /ws            with `Upgrade: websocket`, `Connection: Upgrade` and a
                 Sec-WebSocket-Key: 101 Switching Protocols (with the RFC 6455
                 Sec-WebSocket-Accept), then echoes raw bytes (no framing)
                 until the client's EOF. Not an upgrade: 426.
  /refuse        answers 413 with `Connection: close` before reading the
                 request body, then reads and drops the rest until EOF.
  /stats         {"requests": N, "connections": M}: N counts the requests
                 received to any path but /stats (counted when their head has
                 been parsed), M every TCP connection accepted (the one asking
                 included).

Every response carries `X-Backend: NAME`. HEAD gets the GET headers without
a body.
"""

import argparse
import asyncio
import base64
import hashlib
import http
import json
import os
import re
import signal
import sys
import traceback
import urllib.parse

HEADER_CAP = 64 * 1024          # request line + header lines, bytes
TRAILER_CAP = 64 * 1024         # chunked trailer lines, bytes
CHUNK_LINE_CAP = 4096           # one chunk-size line, bytes
PIECE = 64 * 1024               # read/write piece size
STREAM_LIMIT = HEADER_CAP + 1024  # asyncio StreamReader buffer limit

PATTERN = b"0123456789abcdef"
BLOCK = PATTERN * (PIECE // len(PATTERN))  # PIECE is a multiple of 16
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")
HEX_RE = re.compile(rb"[0-9A-Fa-f]{1,15}")
BAD_VALUE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
BAD_TARGET_RE = re.compile(rb"[\x00-\x20\x7f-\xff]")


class BadRequest(Exception):
    """A request the server rejects; the connection is closed after it."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client closed the connection in the middle of a request."""


class State:
    def __init__(self, name):
        self.name = name
        self.requests = 0
        self.connections = 0
        self.tasks = set()


class Request:
    def __init__(self):
        self.method = ""
        self.target = ""
        self.path = ""
        self.query = ""
        self.version = "HTTP/1.1"
        self.minor = 1
        self.headers = []        # [(name, value)] as received (latin-1 str)
        self.trailers = []
        self.framing = "none"    # none | length | chunked
        self.length = 0
        self.keep_alive = True
        self.response_started = False
        self.body_done = False

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def get(self, name):
        values = self.get_all(name)
        return values[0] if values else None

    def tokens(self, name):
        """Lower-cased comma-separated tokens over every `name` header."""
        out = []
        for value in self.get_all(name):
            out.extend(t.strip().lower() for t in value.split(",") if t.strip())
        return out

    @property
    def has_body(self):
        return self.framing == "chunked" or (self.framing == "length" and self.length > 0)


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

async def read_line(reader, what):
    """One line without its line ending (CRLF, or a bare LF), or None on EOF
    before any byte. Raises BadRequest if the line exceeds the stream limit."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(431 if what == "header" else 400, "%s line too long" % what)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise ClientGone()
    line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    if b"\r" in line:
        raise BadRequest(400, "bare CR in %s line" % what)
    return line


def parse_field(line, what):
    if line[:1] in (b" ", b"\t"):
        raise BadRequest(400, "obsolete line folding in %s" % what)
    name, sep, value = line.partition(b":")
    if not sep or not TOKEN_RE.fullmatch(name):
        raise BadRequest(400, "malformed %s line %r" % (what, line[:80]))
    value = value.strip(b" \t")
    if BAD_VALUE_RE.search(value):
        raise BadRequest(400, "control character in %s %r" % (what, name))
    return name.decode("latin-1"), value.decode("latin-1")


async def read_head(reader):
    """Reads a request head; None on a clean EOF between requests."""
    req = Request()
    total = 0
    empty_lines = 0
    while True:
        line = await read_line(reader, "header")
        if line is None:
            return None
        total += len(line) + 2
        if total > HEADER_CAP:
            raise BadRequest(431, "header section larger than %d bytes" % HEADER_CAP)
        if line:
            break
        empty_lines += 1          # RFC 9112 2.2: ignore empty lines before a request
        if empty_lines > 8:
            raise BadRequest(400, "too many empty lines before the request line")

    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise BadRequest(400, "malformed request line %r" % line[:120])
    method, target, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise BadRequest(400, "malformed method %r" % method[:40])
    if BAD_TARGET_RE.search(target):
        raise BadRequest(400, "malformed request target")
    m = VERSION_RE.fullmatch(version)
    if not m:
        raise BadRequest(400, "malformed HTTP version %r" % version[:40])
    if m.group(1) != b"1":
        raise BadRequest(505, "HTTP version %s not supported" % version.decode())
    req.method = method.decode("ascii")
    req.target = target.decode("ascii")
    req.version = version.decode("ascii")
    req.minor = int(m.group(2))

    if req.target.startswith("/"):
        path, _, query = req.target.partition("?")
        req.path, req.query = path.partition("#")[0], query.partition("#")[0]
    elif req.target == "*":
        req.path = "*"
    elif "://" in req.target:
        u = urllib.parse.urlsplit(req.target)
        if u.scheme.lower() not in ("http", "https") or not u.netloc:
            raise BadRequest(400, "malformed absolute-form target")
        req.path, req.query = (u.path or "/"), u.query
    elif req.method == "CONNECT":
        req.path = req.target
    else:
        raise BadRequest(400, "malformed request target %r" % req.target[:120])

    while True:
        line = await read_line(reader, "header")
        if line is None:
            raise ClientGone()
        total += len(line) + 2
        if total > HEADER_CAP:
            raise BadRequest(431, "header section larger than %d bytes" % HEADER_CAP)
        if not line:
            break
        req.headers.append(parse_field(line, "header"))

    te = req.tokens("transfer-encoding")
    cls = req.get_all("content-length")
    if req.get_all("transfer-encoding"):
        if cls:
            raise BadRequest(400, "both Transfer-Encoding and Content-Length")
        if te != ["chunked"]:
            raise BadRequest(501, "unsupported transfer coding %r" % ", ".join(te))
        req.framing = "chunked"
    elif cls:
        values = set()
        for v in cls:
            for item in v.split(","):
                item = item.strip()
                if not item.isdigit() or not item.isascii() or len(item) > 18:
                    raise BadRequest(400, "malformed Content-Length %r" % v)
                values.add(int(item))
        if len(values) != 1:
            raise BadRequest(400, "conflicting Content-Length values")
        req.framing = "length"
        req.length = values.pop()

    conn = req.tokens("connection")
    if req.minor >= 1:
        req.keep_alive = "close" not in conn
    else:
        req.keep_alive = "keep-alive" in conn and "close" not in conn
    return req


async def body_pieces(reader, req):
    """Yields the request body in pieces of at most PIECE bytes."""
    if req.framing == "length":
        remaining = req.length
        while remaining:
            data = await reader.read(min(PIECE, remaining))
            if not data:
                raise ClientGone()
            remaining -= len(data)
            yield data
    elif req.framing == "chunked":
        while True:
            line = await read_line(reader, "chunk-size")
            if line is None:
                raise ClientGone()
            if len(line) > CHUNK_LINE_CAP:
                raise BadRequest(400, "chunk-size line too long")
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not HEX_RE.fullmatch(size_text):
                raise BadRequest(400, "malformed chunk size %r" % line[:40])
            size = int(size_text, 16)
            if size == 0:
                break
            remaining = size
            while remaining:
                data = await reader.read(min(PIECE, remaining))
                if not data:
                    raise ClientGone()
                remaining -= len(data)
                yield data
            try:
                crlf = await reader.readexactly(2)
            except asyncio.IncompleteReadError:
                raise ClientGone()
            if crlf != b"\r\n":
                raise BadRequest(400, "chunk data not followed by CRLF")
        total = 0
        while True:
            line = await read_line(reader, "trailer")
            if line is None:
                raise ClientGone()
            total += len(line) + 2
            if total > TRAILER_CAP:
                raise BadRequest(400, "trailer section larger than %d bytes" % TRAILER_CAP)
            if not line:
                break
            req.trailers.append(parse_field(line, "trailer"))
    req.body_done = True


async def consume_body(reader, req):
    """Reads the whole body; returns (byte count, sha256 hex)."""
    h = hashlib.sha256()
    n = 0
    async for piece in body_pieces(reader, req):
        h.update(piece)
        n += len(piece)
    return n, h.hexdigest()


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------

def reason_phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status %d" % status


def response_head(state, req, status, headers):
    """The status line and headers, plus X-Backend and Connection."""
    lines = ["HTTP/1.1 %d %s" % (status, reason_phrase(status))]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    lines.append("X-Backend: %s" % state.name)
    if req is None or not req.keep_alive:
        lines.append("Connection: close")
    elif req.minor == 0:
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send_simple(state, req, writer, status, content_type, body, extra=()):
    headers = list(extra)
    no_body = status in (204, 304) or 100 <= status < 200
    if not no_body:
        headers.append(("Content-Type", content_type))
        headers.append(("Content-Length", str(len(body))))
    req.response_started = True
    writer.write(response_head(state, req, status, headers))
    if not no_body and req.method != "HEAD":
        writer.write(body)
    await writer.drain()


async def send_error(state, req, writer, status, message):
    """An error response that closes the connection."""
    body = ("%d %s: %s\n" % (status, reason_phrase(status), message)).encode("utf-8", "replace")
    if req is None:
        req = Request()
    req.keep_alive = False
    await send_simple(state, req, writer, status, "text/plain; charset=utf-8", body)


def query_param(req, name):
    values = urllib.parse.parse_qs(req.query, keep_blank_values=True).get(name)
    return values[0] if values else None


# --------------------------------------------------------------------------
# Routes: each returns True to keep the connection open
# --------------------------------------------------------------------------

async def route_default(state, req, reader, writer, force_close=False, consumed=None):
    n, digest = consumed if consumed else await consume_body(reader, req)
    if force_close:
        req.keep_alive = False
    doc = {
        "backend": state.name,
        "method": req.method,
        "target": req.target,
        "path": req.path,
        "version": req.version,
        "headers": [[k, v] for k, v in req.headers],
        "body_bytes": n,
        "body_sha256": digest,
        "trailers": [[k, v] for k, v in req.trailers],
    }
    body = json.dumps(doc).encode("utf-8")
    await send_simple(state, req, writer, 200, "application/json", body)
    return req.keep_alive


async def route_status(state, req, reader, writer):
    await consume_body(reader, req)
    code_text = req.path[len("/status/"):]
    if not (code_text.isdigit() and code_text.isascii() and 200 <= int(code_text) <= 599):
        body = b"status must be a number from 200 to 599\n"
        await send_simple(state, req, writer, 400, "text/plain; charset=utf-8", body)
        return req.keep_alive
    code = int(code_text)
    body = ("%d %s\n" % (code, reason_phrase(code))).encode("ascii")
    await send_simple(state, req, writer, code, "text/plain; charset=utf-8", body)
    return req.keep_alive


async def route_bytes(state, req, reader, writer):
    await consume_body(reader, req)
    n_text = req.path[len("/bytes/"):]
    if not (n_text.isdigit() and n_text.isascii() and len(n_text) <= 15):
        await send_simple(state, req, writer, 400, "text/plain; charset=utf-8",
                          b"/bytes/<n>: n must be a non-negative integer\n")
        return req.keep_alive
    n = int(n_text)
    chunked = query_param(req, "chunked") == "1" and req.minor >= 1
    headers = [("Content-Type", "application/octet-stream")]
    headers.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(n)))
    req.response_started = True
    writer.write(response_head(state, req, 200, headers))
    await writer.drain()
    if req.method == "HEAD":
        return req.keep_alive
    remaining = n
    while remaining:
        piece = BLOCK if remaining >= PIECE else BLOCK[:remaining]
        remaining -= len(piece)
        if chunked:
            writer.write(b"%x\r\n" % len(piece))
            writer.write(piece)
            writer.write(b"\r\n")
        else:
            writer.write(piece)
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    return req.keep_alive


async def route_echo(state, req, reader, writer):
    chunked = req.minor >= 1
    if not chunked:
        req.keep_alive = False       # HTTP/1.0: the body ends when we close
    headers = [("Content-Type", req.get("content-type") or "application/octet-stream")]
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    req.response_started = True
    writer.write(response_head(state, req, 200, headers))
    await writer.drain()
    head_only = req.method == "HEAD"
    async for piece in body_pieces(reader, req):
        if head_only:
            continue
        if chunked:
            writer.write(b"%x\r\n" % len(piece))
            writer.write(piece)
            writer.write(b"\r\n")
        else:
            writer.write(piece)
        await writer.drain()
    if chunked and not head_only:
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    return req.keep_alive


async def route_slow(state, req, reader, writer):
    ms_text = query_param(req, "ms")
    if ms_text is None:
        ms = 1000
    elif ms_text.isdigit() and ms_text.isascii() and len(ms_text) <= 9:
        ms = int(ms_text)
    else:
        await consume_body(reader, req)
        await send_simple(state, req, writer, 400, "text/plain; charset=utf-8",
                          b"/slow?ms=N: N must be a non-negative integer\n")
        return req.keep_alive
    consumed = await consume_body(reader, req)
    await asyncio.sleep(ms / 1000.0)
    return await route_default(state, req, reader, writer, consumed=consumed)


async def route_refuse(state, req, reader, writer):
    """Answers 413 before reading the request body, as a server with an
    upload limit does, then reads and drops what the client still sends
    (so that closing does not reset the connection under the answer)."""
    req.keep_alive = False
    req.response_started = True
    await send_simple(state, req, writer, 413, "text/plain; charset=utf-8", b"refused before reading the body\n")
    writer.write_eof()
    while await reader.read(65536):
        pass
    return False


async def route_ws(state, req, reader, writer):
    await consume_body(reader, req)
    if "websocket" not in req.tokens("upgrade") or "upgrade" not in req.tokens("connection"):
        await send_simple(state, req, writer, 426, "text/plain; charset=utf-8",
                          b"/ws needs Upgrade: websocket and Connection: Upgrade\n",
                          extra=[("Upgrade", "websocket")])
        return req.keep_alive
    key = req.get("sec-websocket-key")
    if not key:
        await send_simple(state, req, writer, 400, "text/plain; charset=utf-8",
                          b"/ws needs a Sec-WebSocket-Key header\n")
        return req.keep_alive
    accept = base64.b64encode(hashlib.sha1(key.strip().encode("latin-1") + WS_GUID).digest())
    lines = ["HTTP/1.1 101 Switching Protocols",
             "Upgrade: websocket",
             "Connection: Upgrade",
             "Sec-WebSocket-Accept: %s" % accept.decode("ascii"),
             "X-Backend: %s" % state.name]
    req.response_started = True
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    while True:
        data = await reader.read(PIECE)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    return False


async def route_stats(state, req, reader, writer):
    await consume_body(reader, req)
    body = json.dumps({"requests": state.requests, "connections": state.connections})
    await send_simple(state, req, writer, 200, "application/json", body.encode("ascii"))
    return req.keep_alive


async def dispatch(state, req, reader, writer):
    path = req.path
    if path != "/stats":
        state.requests += 1
    if (req.minor >= 1 and "100-continue" in req.tokens("expect") and req.has_body):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if path == "/stats":
        return await route_stats(state, req, reader, writer)
    if path.startswith("/status/"):
        return await route_status(state, req, reader, writer)
    if path.startswith("/bytes/"):
        return await route_bytes(state, req, reader, writer)
    if path == "/echo":
        return await route_echo(state, req, reader, writer)
    if path == "/slow":
        return await route_slow(state, req, reader, writer)
    if path == "/close":
        return await route_default(state, req, reader, writer, force_close=True)
    if path == "/ws":
        return await route_ws(state, req, reader, writer)
    if path == "/refuse":
        return await route_refuse(state, req, reader, writer)
    return await route_default(state, req, reader, writer)


async def handle_connection(state, reader, writer):
    task = asyncio.current_task()
    state.tasks.add(task)
    state.connections += 1
    try:
        while True:
            req = None
            try:
                req = await read_head(reader)
                if req is None:
                    break
                keep = await dispatch(state, req, reader, writer)
            except BadRequest as e:
                if req is None or not req.response_started:
                    await send_error(state, req, writer, e.status, e.message)
                break
            if not keep or not req.body_done and req.has_body:
                break
    except (ClientGone, ConnectionError, asyncio.IncompleteReadError):
        pass
    except asyncio.CancelledError:
        pass
    except Exception:                 # a bug here: say so, drop the connection
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
    finally:
        state.tasks.discard(task)
        try:
            writer.close()
        except Exception:
            pass


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


async def serve(args):
    state = State(args.name)
    server = await asyncio.start_server(
        lambda r, w: handle_connection(state, r, w),
        args.host, args.port, limit=STREAM_LIMIT, backlog=1024, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    print("listening on %s:%d" % (args.host, port), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    server.close()
    tasks = list(state.tasks)
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    await server.wait_closed()


def main(argv=None):
    p = argparse.ArgumentParser(description="HTTP/1.1 test backend for Switchyard.")
    p.add_argument("--name", required=True, help="reported in X-Backend and JSON bodies")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    p.add_argument("--port-file", help="write the bound port here (atomically)")
    args = p.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as e:
        print("backend.py: cannot listen on %s:%d: %s" % (args.host, args.port, e),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
