#!/usr/bin/env python3
"""A strict Zipkin v2 collector for Switchyard's tracing tests.

Usage: zipkin_collector.py [--host 127.0.0.1] [--port 0] [--port-file FILE]

Binds HOST:PORT (port 0 = an ephemeral port), writes the bound port as one
line to FILE (through FILE.tmp and a rename, so a reader never sees a partial
file), prints `listening on HOST:PORT` and serves HTTP/1.1 until SIGTERM or
SIGINT, then exits 0 (1 if it cannot listen). Every span batch POSTed is
logged as one line on stdout. Python 3 standard library only; asyncio, so
many keep-alive clients are served at once and a slow or hung answer to one
client never holds up another.

It stands in for a Zipkin server (none is packaged for the test machines):
it takes spans the way Zipkin's HTTP collector does, but checks every span
against the Zipkin v2 model and refuses (and records) anything Zipkin would
have to guess about, so a test can assert that the router only ever sent
well-formed spans. Only the JSON v2 encoding over HTTP is spoken (no Scribe,
Thrift, protobuf or the v1 API).

HTTP
  Request bodies: Content-Length or `Transfer-Encoding: chunked` (both at
  once: 400), at most 16 MiB (413, and the connection is closed). HTTP/1.1
  keeps the connection unless `Connection: close`; HTTP/1.0 closes unless
  `Connection: keep-alive`. Pipelined requests are answered in order.
  `Expect: 100-continue` gets `100 Continue`. A malformed request gets a
  4xx with a text message and the connection is closed. Answers that are not
  JSON are `text/plain` with a one-line (or, for invalid spans, one line per
  problem) explanation. HEAD works wherever GET does.

Collecting (what the router under test talks to)
  POST /api/v2/spans
      Content-Type must be `application/json` (a charset parameter other
      than utf-8: 415; anything else, or none: 415). `Content-Encoding: gzip`
      is decoded (other codings: 415; a broken gzip stream: 400). The body
      must be UTF-8 JSON (no NaN/Infinity, no duplicate object keys) holding
      a list of spans.
        valid batch            202 Accepted, empty body (as Zipkin answers);
                               the spans are stored. `[]` is accepted too,
                               with a warning.
        invalid JSON or spans  400 with a text body: a header line, then one
                               line per problem, `span[I].FIELD: problem`
                               (e.g. `span[1].timestamp: 1700000000000 looks
                               like epoch milliseconds...`). Nothing from the
                               batch is stored; the batch is recorded under
                               /_fixture/rejected.
        wrong content type     415, recorded under /_fixture/rejected.

Validation (each rule applies to every span of the batch)
  * top-level fields: only traceId, id, parentId, name, kind, timestamp,
    duration, localEndpoint, remoteEndpoint, tags, annotations, debug,
    shared. An unknown field (binaryAnnotations, traceIdHigh, ...) is an
    error, and so is JSON null in any field (leave the field out instead).
  * traceId (required): 16 or 32 lower-case hex characters, not all zeros.
  * id (required): 16 lower-case hex characters, not all zeros.
  * parentId: 16 lower-case hex characters, not all zeros, != id.
  * name: a string. Not lower-case, empty or absent: accepted, with a
    warning (Zipkin names are lower-case and lookups fold case).
  * kind: CLIENT, SERVER, PRODUCER or CONSUMER (exactly; "server" is wrong).
  * timestamp (required): an integer of epoch MICROseconds. Values below
    1e15 (before 2001-09-09 in microseconds) are refused, with a hint when
    they look like seconds or milliseconds; values more than one hour ahead
    of the collector's clock are refused (with a hint when they look like
    nanoseconds). Integers only: 1.5e15 or "1600000000000000" are errors.
  * duration: an integer of microseconds >= 1 (Zipkin rounds sub-microsecond
    durations up to 1; leave it out if unknown). Over one hour: a warning.
  * localEndpoint, remoteEndpoint: objects with only serviceName (string;
    not lower-case: a warning), ipv4 (dotted quad), ipv6 (IPv6 text, no zone
    or brackets), port (integer 1-65535). No localEndpoint: a warning.
  * tags: an object mapping non-empty strings to strings (numbers, booleans
    and null are errors: Zipkin v2 tags are strings).
  * annotations: a list of objects with exactly `timestamp` (epoch
    microseconds, the same rules as the span's) and `value` (a non-empty
    string).
  * debug, shared: booleans. shared on a span whose kind is not SERVER: a
    warning.
  * a span with the same traceId, id, kind and shared as one already stored:
    stored again, with a warning (a duplicate report).

Reading (Zipkin's read API shapes)
  GET /api/v2/traces           all stored traces as a list of lists of spans,
                               in order of each trace's first arrival. Query
                               parameters: serviceName (a span's local
                               serviceName), spanName, limit; others
                               (endTs, lookback, ...) are ignored.
  GET /api/v2/trace/<traceId>  that trace's spans in arrival order; 404 (text)
                               if none. Upper-case ids are folded.
  GET /api/v2/services         sorted local service names.
  GET /api/v2/spans?serviceName=S   sorted span names of that service (400
                               without serviceName).
  GET /health                  {"status": "UP"}

Inspection and control (for tests; never slowed down by the behaviour)
  GET    /_fixture/spans       every accepted span, in arrival order.
  DELETE /_fixture/spans       forgets spans, rejected batches, warnings and
                               counters (not the behaviour); 200 {"cleared":
                               true}.
  GET    /_fixture/rejected    [{"batch": ..., "error": ...}, ...]: every
                               POST /api/v2/spans refused for its content or
                               its body framing (4xx: invalid spans, not JSON,
                               wrong Content-Type, too large, a broken chunked
                               body), in arrival order. The batch is the parsed
                               JSON when it parsed, else the body as text, else
                               null. Recorded whatever the behaviour, so also
                               for batches that then got a simulated 500 or no
                               answer. A test asserts `rejected == []` to show
                               the router never sent anything invalid.
  GET    /_fixture/warnings    ["batch N span[I].FIELD: ...", ...] from
                               accepted batches (N counts accepted batches
                               from 1).
  GET    /_fixture/stats       {"batches": accepted batches, "spans": accepted
                               spans, "rejected_batches", "failed_batches":
                               POSTs answered by a simulated failure or left
                               hanging, "warnings", "post_connections": TCP
                               connections that carried at least one POST
                               /api/v2/spans, "open_connections": now (the
                               asking one included), "hung": requests now left
                               unanswered}
  GET    /_fixture/behaviour   the current behaviour.
  POST   /_fixture/behaviour   JSON {"mode": M, "delayMs": N, "status": S,
                               "times": T} (only mode is required) sets how
                               later POST /api/v2/spans are answered; 200 with
                               the new behaviour, 400 with a message if it is
                               not valid:
        ok     answer at once (delayMs must be 0 or absent).
        slow   wait delayMs (default 1000) and then answer as `ok`; the spans
               are stored when the answer is sent.
        error  wait delayMs (default 0) and answer `status` (default 500, any
               400-599) with a text body; valid spans are NOT stored.
        hang   read the request and never answer; the connection stays open
               until the client closes it or the collector stops. Spans are
               not stored.
      times: the mode applies to the next T span POSTs, then it reverts to ok.
      Invalid batches are recorded under /_fixture/rejected in every mode.

Anything else: 404 (405 with Allow for a known path and the wrong method),
with a text message; /api/v1/* says that only v2 is served.

Helpers for tests (import this file as a module)
  check_tree(spans, tolerance_us=1000, external_parents=())
      problems with the span tree of one trace, as a list of strings (empty
      when fine); see its docstring.
  validate_batch(doc, now_us=None) -> (problems, warnings)
      the validation above, on a parsed JSON document.
  Collector()
      this file as a subprocess (like harness.Backend) with a client for
      every route: .port, .url(), .endpoint, .post_spans(), .spans(),
      .traces(), .trace(), .rejected(), .warnings(), .stats(), .clear(),
      .behave(), .wait_for_spans(), .stop(), .logs(); see its docstring.
"""

import argparse
import asyncio
import atexit
import gzip
import http
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import zlib

MAX_BODY = 16 * 1024 * 1024       # request body, after gzip decoding too
HEAD_CAP = 64 * 1024              # request line + headers
MAX_HEADERS = 256
STREAM_LIMIT = HEAD_CAP + 1024
MAX_LISTED_PROBLEMS = 50          # lines in a 400 answer
REJECTED_TEXT_CAP = 64 * 1024     # a non-JSON body kept under /_fixture/rejected

US_PER_S = 1_000_000
MIN_EPOCH_US = 10 ** 15           # 2001-09-09 in microseconds
FUTURE_SLACK_US = 3600 * US_PER_S
LONG_DURATION_US = 3600 * US_PER_S
INT64_MAX = 2 ** 63 - 1

SPAN_FIELDS = ("traceId", "id", "parentId", "name", "kind", "timestamp", "duration",
               "localEndpoint", "remoteEndpoint", "tags", "annotations", "debug", "shared")
ENDPOINT_FIELDS = ("serviceName", "ipv4", "ipv6", "port")
ANNOTATION_FIELDS = ("timestamp", "value")
KINDS = ("CLIENT", "SERVER", "PRODUCER", "CONSUMER")
MODES = ("ok", "slow", "error", "hang")

LOWER_HEX_RE = re.compile(r"[0-9a-f]+")
ANY_HEX_RE = re.compile(r"[0-9a-fA-F]+")
TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
CONTROL_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,8}")


# --------------------------------------------------------------------------
# Validation of the Zipkin v2 model
# --------------------------------------------------------------------------

def _show(value, limit=80):
    """A short JSON rendering of a value for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Findings:
    """Problems (the batch is refused) and warnings (it is accepted)."""

    def __init__(self):
        self.problems = []
        self.warnings = []

    def bad(self, where, message):
        self.problems.append("%s: %s" % (where, message))

    def warn(self, where, message):
        self.warnings.append("%s: %s" % (where, message))


def _check_id(f, where, value, lengths):
    want = " or ".join(str(n) for n in lengths) + " lower-case hex characters"
    if not isinstance(value, str):
        f.bad(where, "must be a string of %s, got %s %s" % (want, _json_type(value), _show(value)))
    elif len(value) not in lengths:
        f.bad(where, "must be %s, got %d characters %s" % (want, len(value), _show(value)))
    elif not LOWER_HEX_RE.fullmatch(value):
        if ANY_HEX_RE.fullmatch(value):
            f.bad(where, "%s has upper-case hex digits; Zipkin v2 ids are lower-case"
                  % _show(value))
        else:
            f.bad(where, "%s is not hex; want %s" % (_show(value), want))
    elif value.count("0") == len(value):
        f.bad(where, "all zeros is not a valid id")
    else:
        return True
    return False


def _check_epoch_us(f, where, value, now_us):
    """An integer of epoch microseconds, plausibly now-ish."""
    if isinstance(value, bool) or not isinstance(value, int):
        hint = ""
        if isinstance(value, str) and value.strip().isdigit():
            hint = " (a JSON number, not a string)"
        f.bad(where, "must be an integer of epoch microseconds%s, got %s %s"
              % (hint, _json_type(value), _show(value)))
        return False
    if value <= 0:
        f.bad(where, "must be a positive number of epoch microseconds, got %d" % value)
        return False
    if value < MIN_EPOCH_US:
        if value >= 10 ** 11:
            unit = "epoch milliseconds"
            fix = value * 1000
        elif value >= 10 ** 8:
            unit = "epoch seconds"
            fix = value * US_PER_S
        else:
            f.bad(where, "%d is too small for epoch microseconds (before 2001)" % value)
            return False
        f.bad(where, "%d looks like %s; Zipkin v2 wants epoch microseconds (%d)"
              % (value, unit, fix))
        return False
    if value > now_us + FUTURE_SLACK_US:
        if value >= 10 ** 17:
            f.bad(where, "%d looks like epoch nanoseconds; Zipkin v2 wants epoch microseconds "
                  "(%d)" % (value, value // 1000))
        else:
            f.bad(where, "%d is %.0f s in the future of the collector's clock (more than an "
                  "hour)" % (value, (value - now_us) / US_PER_S))
        return False
    return True


def _check_endpoint(f, where, value):
    if not isinstance(value, dict):
        f.bad(where, "must be an object, got %s %s" % (_json_type(value), _show(value)))
        return
    for key in value:
        if key not in ENDPOINT_FIELDS:
            f.bad("%s.%s" % (where, key), "unknown endpoint field (allowed: %s)"
                  % ", ".join(ENDPOINT_FIELDS))
    for key in ENDPOINT_FIELDS:
        if key in value and value[key] is None:
            f.bad("%s.%s" % (where, key), "null; leave the field out instead")
    name = value.get("serviceName")
    if name is not None:
        if not isinstance(name, str):
            f.bad(where + ".serviceName", "must be a string, got %s" % _json_type(name))
        elif name == "":
            f.warn(where + ".serviceName", "empty; leave it out if unknown")
        elif name != name.lower():
            f.warn(where + ".serviceName", "%s is not lower-case" % _show(name))
    ipv4 = value.get("ipv4")
    if ipv4 is not None:
        ok = isinstance(ipv4, str)
        if ok:
            try:
                ipaddress.IPv4Address(ipv4)
            except ValueError:
                ok = False
        if not ok:
            f.bad(where + ".ipv4", "must be a dotted-quad IPv4 address like \"10.1.2.3\", got %s"
                  % _show(ipv4))
    ipv6 = value.get("ipv6")
    if ipv6 is not None:
        ok = isinstance(ipv6, str) and "%" not in ipv6 and "[" not in ipv6
        if ok:
            try:
                ipaddress.IPv6Address(ipv6)
            except ValueError:
                ok = False
        if not ok:
            f.bad(where + ".ipv6", "must be an IPv6 address like \"2001:db8::1\" (no brackets, "
                  "no zone), got %s" % _show(ipv6))
    port = value.get("port")
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            f.bad(where + ".port", "must be an integer from 1 to 65535, got %s" % _show(port))


def _check_tags(f, where, tags):
    if not isinstance(tags, dict):
        f.bad(where, "must be an object of string values, got %s" % _json_type(tags))
        return
    for key, value in tags.items():
        at = "%s[%s]" % (where, _show(key))
        if key == "":
            f.bad(at, "empty tag key")
        if isinstance(value, (bool, int, float)):
            f.bad(at, "tag values must be strings, got %s %s; send it as the string %s"
                  % (_json_type(value), _show(value), _show(json.dumps(value))))
        elif not isinstance(value, str):
            f.bad(at, "tag values must be strings, got %s" % _json_type(value))


def _check_annotations(f, where, annotations, now_us):
    if not isinstance(annotations, list):
        f.bad(where, "must be a list of {timestamp, value} objects, got %s"
              % _json_type(annotations))
        return
    for j, a in enumerate(annotations):
        at = "%s[%d]" % (where, j)
        if not isinstance(a, dict):
            f.bad(at, "must be an object {timestamp, value}, got %s" % _json_type(a))
            continue
        for key in a:
            if key not in ANNOTATION_FIELDS:
                hint = " (a Zipkin v1 annotation?)" if key == "endpoint" else ""
                f.bad("%s.%s" % (at, key), "unknown annotation field%s; allowed: timestamp, "
                      "value" % hint)
        if "timestamp" not in a:
            f.bad(at + ".timestamp", "missing")
        else:
            _check_epoch_us(f, at + ".timestamp", a["timestamp"], now_us)
        if "value" not in a:
            f.bad(at + ".value", "missing")
        elif not isinstance(a["value"], str):
            f.bad(at + ".value", "must be a string, got %s" % _json_type(a["value"]))
        elif a["value"] == "":
            f.bad(at + ".value", "empty")


def _check_span(f, where, span, now_us):
    if not isinstance(span, dict):
        f.bad(where, "must be a span object, got %s %s" % (_json_type(span), _show(span)))
        return
    looks_v1 = "binaryAnnotations" in span or "traceIdHigh" in span
    for key in span:
        if key not in SPAN_FIELDS:
            hint = " (Zipkin v1 JSON? this is the v2 API)" if looks_v1 else ""
            f.bad("%s.%s" % (where, key), "unknown span field%s" % hint)
    for key in SPAN_FIELDS:
        if key in span and span[key] is None:
            f.bad("%s.%s" % (where, key), "null; leave the field out instead")
    present = {k: v for k, v in span.items() if v is not None}

    if "traceId" not in span:
        f.bad(where + ".traceId", "missing")
    elif "traceId" in present:
        _check_id(f, where + ".traceId", present["traceId"], (16, 32))
    if "id" not in span:
        f.bad(where + ".id", "missing")
    elif "id" in present:
        _check_id(f, where + ".id", present["id"], (16,))
    if "parentId" in present:
        if (_check_id(f, where + ".parentId", present["parentId"], (16,))
                and present["parentId"] == present.get("id")):
            f.bad(where + ".parentId", "equals the span's own id")

    if "name" not in span:
        f.warn(where + ".name", "absent")
    elif "name" in present:
        name = present["name"]
        if not isinstance(name, str):
            f.bad(where + ".name", "must be a string, got %s %s" % (_json_type(name), _show(name)))
        elif name == "":
            f.warn(where + ".name", "empty; leave it out if unknown")
        elif name != name.lower():
            f.warn(where + ".name", "%s is not lower-case" % _show(name))

    if "kind" in present:
        kind = present["kind"]
        if kind not in KINDS:
            hint = ""
            if isinstance(kind, str) and kind.upper() in KINDS:
                hint = " (use %s)" % _show(kind.upper())
            f.bad(where + ".kind", "must be one of %s%s, got %s"
                  % (", ".join(KINDS), hint, _show(kind)))

    if "timestamp" not in span:
        f.bad(where + ".timestamp", "missing (epoch microseconds of the span's start)")
    elif "timestamp" in present:
        _check_epoch_us(f, where + ".timestamp", present["timestamp"], now_us)

    if "duration" in present:
        d = present["duration"]
        if isinstance(d, bool) or not isinstance(d, int):
            f.bad(where + ".duration", "must be an integer of microseconds, got %s %s"
                  % (_json_type(d), _show(d)))
        elif d < 1:
            f.bad(where + ".duration", "must be >= 1 microsecond, got %d (round sub-microsecond "
                  "durations up to 1; leave it out if unknown)" % d)
        elif d > INT64_MAX:
            f.bad(where + ".duration", "%d does not fit in an int64" % d)
        elif d > LONG_DURATION_US:
            f.warn(where + ".duration", "%d us is over an hour (nanoseconds?)" % d)

    for key in ("localEndpoint", "remoteEndpoint"):
        if key in present:
            _check_endpoint(f, where + "." + key, present[key])
    if "localEndpoint" not in span:
        f.warn(where + ".localEndpoint", "absent (Zipkin finds spans by its serviceName)")
    if "tags" in present:
        _check_tags(f, where + ".tags", present["tags"])
    if "annotations" in present:
        _check_annotations(f, where + ".annotations", present["annotations"], now_us)
    for key in ("debug", "shared"):
        if key in present and not isinstance(present[key], bool):
            f.bad(where + "." + key, "must be true or false, got %s" % _show(present[key]))
    if present.get("shared") is True and present.get("kind") != "SERVER":
        f.warn(where + ".shared", "true on a %s span (only SERVER spans are shared)"
               % (present.get("kind") or "kind-less"))


def validate_batch(doc, now_us=None):
    """Checks a parsed JSON document as a Zipkin v2 span list.

    Returns (problems, warnings), two lists of strings such as
    `span[1].timestamp: 1700000000000 looks like epoch milliseconds; ...`.
    The batch is valid when problems is empty. now_us: the clock for the
    "more than an hour in the future" rule (default: now)."""
    if now_us is None:
        now_us = int(time.time() * US_PER_S)
    f = _Findings()
    if not isinstance(doc, list):
        hint = ""
        if isinstance(doc, dict) and ("traceId" in doc or "id" in doc):
            hint = "; wrap a single span in a list: [{...}]"
        f.bad("batch", "must be a JSON list of spans, got %s%s" % (_json_type(doc), hint))
        return f.problems, f.warnings
    if not doc:
        f.warn("batch", "empty list of spans")
    for i, span in enumerate(doc):
        _check_span(f, "span[%d]" % i, span, now_us)
    return f.problems, f.warnings


# --------------------------------------------------------------------------
# Tree checks for tests
# --------------------------------------------------------------------------

def _span_label(s):
    kind = s.get("kind") or "local"
    name = s.get("name")
    return "%s span %s%s" % (kind, s.get("id"), " %s" % _show(name) if name else "")


def check_tree(spans, tolerance_us=1000, external_parents=()):
    """Checks that the spans of one trace form one well-nested tree.

    spans: a list of Zipkin v2 span dicts (e.g. from Collector.trace(id)).
    tolerance_us: how far (microseconds) a child may start before, or end
    after, its parent and still count as inside it.
    external_parents: span ids that may be named as parentId without being in
    the list (the caller's span when the router continued a trace that came
    in with B3 headers); a span whose parent is one of them counts as a root.

    Rules (each breach is one string in the returned list; [] = all fine):
      * the list is not empty, and every span has the same traceId;
      * span ids are unique, except for a shared pair: one CLIENT span and
        one SERVER span with "shared": true reusing its id (B3 single-span
        RPCs, as Finagle/Linkerd 1 report them). A pair counts as one node of
        the tree; if both halves carry a parentId they must agree;
      * every parentId names a span of the list (or an external parent), no
        span is its own ancestor, and there is exactly one root (a node
        without a parentId);
      * every span has a timestamp, and each child lies within its parent:
        child.timestamp >= parent.timestamp - tolerance_us and
        child.timestamp + child.duration <= parent.timestamp +
        parent.duration + tolerance_us (a missing duration counts as 0 for
        the child; the end is not checked if the parent has none). A child of
        a shared pair must lie within either half; the SERVER half of a pair
        must lie within the CLIENT half.

    Messages give times relative to the earliest timestamp of the trace."""
    problems = []
    if not spans:
        return ["no spans"]
    external = set(external_parents)

    trace_ids = []
    for s in spans:
        t = s.get("traceId")
        if t not in trace_ids:
            trace_ids.append(t)
    if len(trace_ids) > 1:
        problems.append("spans of %d traces in one tree: %s"
                        % (len(trace_ids), ", ".join(str(t) for t in trace_ids)))

    stamps = [s["timestamp"] for s in spans if isinstance(s.get("timestamp"), int)]
    origin = min(stamps) if stamps else 0

    def when(s):
        ts = s.get("timestamp")
        d = s.get("duration")
        if d is None:
            return "starts at +%d us, no duration" % (ts - origin)
        return "+%d..+%d us" % (ts - origin, ts - origin + d)

    for s in spans:
        if not isinstance(s.get("timestamp"), int):
            problems.append("%s has no timestamp" % _span_label(s))

    # Nodes: spans grouped by id (a shared CLIENT/SERVER pair is one node).
    nodes = {}
    order = []
    for s in spans:
        sid = s.get("id")
        if sid not in nodes:
            nodes[sid] = []
            order.append(sid)
        nodes[sid].append(s)
    parent_of = {}
    for sid in order:
        members = nodes[sid]
        if len(members) > 1:
            kinds = sorted(m.get("kind") or "local" for m in members)
            server = [m for m in members if m.get("kind") == "SERVER"]
            if not (kinds == ["CLIENT", "SERVER"] and server[0].get("shared") is True):
                problems.append(
                    "span id %s is used by %d spans (%s); only a CLIENT span and a SERVER "
                    "span with shared=true may share an id"
                    % (sid, len(members), ", ".join(kinds)))
        parents = []
        for m in members:
            p = m.get("parentId")
            if p is not None and p not in parents:
                parents.append(p)
        if len(parents) > 1:
            problems.append("the spans with id %s disagree about their parent: %s"
                            % (sid, ", ".join(parents)))
        parent_of[sid] = parents[0] if parents else None

    roots = []
    for sid in order:
        p = parent_of[sid]
        if p is None or p in external:
            roots.append(sid)
        elif p == sid:
            problems.append("%s is its own parent" % _span_label(nodes[sid][0]))
        elif p not in nodes:
            problems.append("%s has parentId %s, which is not a span of this trace"
                            % (_span_label(nodes[sid][0]), p))
    if len(roots) != 1:
        problems.append("%d root spans, want exactly 1%s" % (
            len(roots), (": " + ", ".join(_span_label(nodes[r][0]) for r in roots))
            if roots else " (every span has a parent)"))

    # Cycles: walk up from every node; a walk that revisits a node is a loop.
    reported = set()
    for sid in order:
        seen = []
        cur = sid
        while cur in nodes and cur not in seen:
            seen.append(cur)
            p = parent_of[cur]
            if p is None or p in external or p == cur:
                break
            cur = p
        else:
            if cur in seen:
                loop = frozenset(seen[seen.index(cur):])
                if len(loop) > 1 and loop not in reported:
                    reported.add(loop)
                    problems.append("parent links form a cycle: %s"
                                    % " -> ".join(seen[seen.index(cur):] + [cur]))

    def inside(child, parent):
        cs, ps = child.get("timestamp"), parent.get("timestamp")
        if not isinstance(cs, int) or not isinstance(ps, int):
            return True              # reported above as a missing timestamp
        ce = cs + (child.get("duration") or 0)
        if cs < ps - tolerance_us:
            return False
        pd = parent.get("duration")
        return pd is None or ce <= ps + pd + tolerance_us

    for sid in order:
        members = nodes[sid]
        clients = [m for m in members if m.get("kind") == "CLIENT"]
        servers = [m for m in members if m.get("kind") == "SERVER" and m.get("shared") is True]
        if len(members) == 2 and clients and servers and not inside(servers[0], clients[0]):
            problems.append("shared SERVER span %s (%s) is not within its CLIENT half (%s)"
                            % (sid, when(servers[0]), when(clients[0])))
        p = parent_of[sid]
        if p is None or p not in nodes or p == sid:
            continue
        for child in members:
            if not any(inside(child, parent) for parent in nodes[p]):
                problems.append("%s (%s) is not within its parent %s (%s; tolerance %d us)"
                                % (_span_label(child), when(child), _span_label(nodes[p][0]),
                                   "; ".join(when(x) for x in nodes[p]), tolerance_us))
    return problems


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

class Behaviour:
    def __init__(self, mode="ok", delay_ms=0, status=500, times=None):
        self.mode, self.delay_ms, self.status, self.times = mode, delay_ms, status, times

    def to_json(self):
        return {"mode": self.mode, "delayMs": self.delay_ms, "status": self.status,
                "times": self.times}

    @staticmethod
    def parse(doc):
        """A Behaviour from a POSTed document, or raises ValueError."""
        if not isinstance(doc, dict):
            raise ValueError("want a JSON object like {\"mode\": \"slow\", \"delayMs\": 500}")
        unknown = sorted(set(doc) - {"mode", "delayMs", "status", "times"})
        if unknown:
            raise ValueError("unknown field(s) %s; allowed: mode, delayMs, status, times"
                             % ", ".join(unknown))
        mode = doc.get("mode")
        if mode not in MODES:
            raise ValueError("mode must be one of %s, got %s" % (", ".join(MODES), _show(mode)))

        def integer(key, lo, hi, default):
            v = doc.get(key)
            if v is None:
                return default
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError("%s must be an integer from %d to %d, got %s"
                                 % (key, lo, hi, _show(v)))
            return v

        delay = integer("delayMs", 0, 600_000, 1000 if mode == "slow" else 0)
        if mode in ("ok", "hang") and delay:
            raise ValueError("delayMs applies to the slow and error modes only")
        status = integer("status", 400, 599, 500)
        if "status" in doc and mode != "error":
            raise ValueError("status applies to the error mode only")
        times = integer("times", 1, 1_000_000, None)
        if times is not None and mode == "ok":
            raise ValueError("times applies to the slow, error and hang modes only")
        return Behaviour(mode, delay, status, times)


class State:
    def __init__(self):
        self.behaviour = Behaviour()
        self.tasks = set()
        self.open_connections = 0
        self.hung = 0
        self.clear()

    def clear(self):
        self.generation = getattr(self, "generation", 0) + 1
        self.spans = []
        self.traces = {}            # traceId -> [span], insertion-ordered
        self.seen_keys = set()
        self.rejected = []
        self.warnings = []
        self.batches = 0
        self.rejected_batches = 0
        self.failed_batches = 0
        self.post_connections = 0

    def take_behaviour(self):
        """The behaviour for one span POST (counting down `times`)."""
        b = self.behaviour
        if b.mode != "ok" and b.times is not None:
            b.times -= 1
            if b.times <= 0:
                self.behaviour = Behaviour()
        return b

    def store(self, spans, warnings):
        self.batches += 1
        n = self.batches
        for i, s in enumerate(spans):
            key = (s["traceId"], s["id"], s.get("kind"), s.get("shared") is True)
            if key in self.seen_keys:
                warnings.append("span[%d]: duplicate of a span already stored (same traceId, "
                                "id, kind and shared)" % i)
            self.seen_keys.add(key)
            self.spans.append(s)
            self.traces.setdefault(s["traceId"], []).append(s)
        self.warnings.extend("batch %d %s" % (n, w) for w in warnings)

    def reject(self, batch, error):
        self.rejected_batches += 1
        self.rejected.append({"batch": batch, "error": error})

    def stats(self):
        return {"batches": self.batches, "spans": len(self.spans),
                "rejected_batches": self.rejected_batches,
                "failed_batches": self.failed_batches, "warnings": len(self.warnings),
                "post_connections": self.post_connections,
                "open_connections": self.open_connections, "hung": self.hung}


# --------------------------------------------------------------------------
# HTTP/1.1
# --------------------------------------------------------------------------

class HttpError(Exception):
    """A request answered with `status` and `message`; the connection closes."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class Gone(Exception):
    """The client went away in the middle of a request."""


class Request:
    def __init__(self):
        self.method = self.target = self.path = ""
        self.query = {}
        self.minor = 1
        self.headers = []
        self.chunked = False
        self.length = 0
        self.keep_alive = True

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def all_headers(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def tokens(self, name):
        out = []
        for v in self.all_headers(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def q(self, name):
        values = self.query.get(name)
        return values[0] if values else None


async def _read_line(reader, what):
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise HttpError(431 if what == "header" else 400, "%s line too long" % what)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise Gone()
        return None
    line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line


async def read_request(reader):
    """The next request's head, or None at a clean end of the connection."""
    size = 0
    for _ in range(10):                     # empty lines before a request are ignored
        line = await _read_line(reader, "header")
        if line is None:
            return None
        size += len(line) + 2
        if line:
            break
    else:
        raise HttpError(400, "only empty lines")
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts) or not TOKEN_RE.fullmatch(parts[0]):
        raise HttpError(400, "malformed request line %r" % line[:100].decode("latin-1"))
    m = re.fullmatch(rb"HTTP/1\.([0-9])", parts[2])
    if not m:
        if re.fullmatch(rb"HTTP/[0-9](\.[0-9])?", parts[2]):
            raise HttpError(505, "only HTTP/1.x is spoken here")
        raise HttpError(400, "malformed HTTP version")
    if re.search(rb"[\x00-\x20\x7f-\xff]", parts[1]):
        raise HttpError(400, "malformed request target")
    req = Request()
    req.method = parts[0].decode("ascii")
    req.target = parts[1].decode("ascii")
    req.minor = int(m.group(1))
    target = req.target
    if target.startswith(("http://", "https://")):
        u = urllib.parse.urlsplit(target)
        target = (u.path or "/") + ("?" + u.query if u.query else "")
    if not target.startswith("/"):
        raise HttpError(400, "request target must be a path: %r" % req.target[:100])
    path, _, query = target.partition("?")
    req.path = urllib.parse.unquote(path)
    req.query = urllib.parse.parse_qs(query, keep_blank_values=True)

    while True:
        line = await _read_line(reader, "header")
        if line is None:
            raise Gone()
        size += len(line) + 2
        if size > HEAD_CAP:
            raise HttpError(431, "request head larger than %d bytes" % HEAD_CAP)
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete header line folding")
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN_RE.fullmatch(name):
            raise HttpError(400, "malformed header line %r" % line[:100].decode("latin-1"))
        value = value.strip(b" \t")
        if CONTROL_RE.search(value):
            raise HttpError(400, "control character in header %s" % name.decode("ascii"))
        req.headers.append((name.decode("ascii"), value.decode("latin-1")))
        if len(req.headers) > MAX_HEADERS:
            raise HttpError(431, "more than %d header lines" % MAX_HEADERS)

    lengths = req.all_headers("content-length")
    if req.all_headers("transfer-encoding"):
        if lengths:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if req.tokens("transfer-encoding") != ["chunked"]:
            raise HttpError(501, "only the chunked transfer coding is supported")
        req.chunked = True
    elif lengths:
        values = {v.strip() for v in ",".join(lengths).split(",")}
        if len(values) != 1 or not all(v.isdigit() and v.isascii() and len(v) < 19
                                       for v in values):
            raise HttpError(400, "malformed Content-Length %r" % ", ".join(lengths))
        req.length = int(values.pop())
    connection = req.tokens("connection")
    if req.minor >= 1:
        req.keep_alive = "close" not in connection
    else:
        req.keep_alive = "keep-alive" in connection and "close" not in connection
    return req


async def read_body(reader, req, writer):
    """The whole request body (at most MAX_BODY bytes, else HttpError 413)."""
    if (req.minor >= 1 and "100-continue" in req.tokens("expect")
            and (req.chunked or req.length)):
        if req.length > MAX_BODY:
            raise HttpError(413, "body of %d bytes is over the %d byte limit"
                            % (req.length, MAX_BODY))
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    try:
        if not req.chunked:
            if req.length > MAX_BODY:
                raise HttpError(413, "body of %d bytes is over the %d byte limit"
                                % (req.length, MAX_BODY))
            return await reader.readexactly(req.length) if req.length else b""
        body = bytearray()
        while True:
            line = await _read_line(reader, "chunk size")
            if line is None:
                raise Gone()
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not CHUNK_SIZE_RE.fullmatch(size_text):
                raise HttpError(400, "malformed chunk size line")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > MAX_BODY:
                raise HttpError(413, "chunked body over the %d byte limit" % MAX_BODY)
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise HttpError(400, "chunk data not followed by CRLF")
        trailer_bytes = 0
        while True:                          # trailers: read and dropped
            line = await _read_line(reader, "trailer")
            if line is None:
                raise Gone()
            trailer_bytes += len(line) + 2
            if trailer_bytes > HEAD_CAP:
                raise HttpError(400, "trailer section too large")
            if not line:
                return bytes(body)
    except asyncio.IncompleteReadError:
        raise Gone()


def _phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status %d" % status


async def send(writer, req, status, body=b"", content_type=None, extra=()):
    lines = ["HTTP/1.1 %d %s" % (status, _phrase(status))]
    lines += ["%s: %s" % kv for kv in extra]
    if content_type and body:
        lines.append("Content-Type: " + content_type)
    lines.append("Content-Length: %d" % len(body))
    if not req.keep_alive:
        lines.append("Connection: close")
    elif req.minor == 0:
        lines.append("Connection: keep-alive")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if req.method != "HEAD":
        writer.write(body)
    await writer.drain()


async def send_text(writer, req, status, text, extra=()):
    if not text.endswith("\n"):
        text += "\n"
    await send(writer, req, status, text.encode("utf-8"), "text/plain; charset=utf-8", extra)


async def send_json(writer, req, doc, status=200):
    await send(writer, req, status, json.dumps(doc).encode("utf-8"), "application/json")


# --------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------

def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _no_duplicate_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate key %s in one object" % _show(k))
        out[k] = v
    return out


def parse_json(body):
    """Strict JSON from bytes; raises ValueError with a readable message."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("body is not UTF-8 (%s)" % e.reason)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ValueError("body is not JSON: %s" % e)


def _content_problem(req):
    """(status, message) if Content-Type/-Encoding are not acceptable."""
    ctype = req.header("content-type")
    if ctype is None:
        return 415, "no Content-Type; this collector takes Content-Type: application/json"
    media, _, params = ctype.partition(";")
    if media.strip().lower() != "application/json":
        return 415, ("Content-Type %r is not supported; this collector takes "
                     "application/json (Zipkin v2 JSON)" % ctype)
    for p in params.split(";"):
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset" and v.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return 415, "charset %r is not supported; JSON is UTF-8" % v.strip()
    codings = req.tokens("content-encoding")
    if codings not in ([], ["identity"], ["gzip"]):
        return 415, ("Content-Encoding %r is not supported (gzip or none)"
                     % ", ".join(req.all_headers("content-encoding")))
    return None


def _gunzip(data):
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, MAX_BODY + 1)
    except zlib.error as e:
        raise ValueError("body is not valid gzip (%s)" % e)
    if len(out) > MAX_BODY:
        raise OverflowError()
    if not d.eof:
        raise ValueError("gzip stream is truncated")
    if d.unused_data:
        raise ValueError("%d bytes after the end of the gzip stream" % len(d.unused_data))
    return out


def _body_as_text(body):
    text = body[:REJECTED_TEXT_CAP].decode("utf-8", errors="replace")
    if len(body) > REJECTED_TEXT_CAP:
        text += "...(%d bytes in all)" % len(body)
    return text


def evaluate(req, body, now_us):
    """Judges a span POST: (status, message, batch, spans, warnings); spans is
    None unless the batch is valid (status 202)."""
    problem = _content_problem(req)
    if problem:
        return problem[0], problem[1], _body_as_text(body), None, []
    if "gzip" in req.tokens("content-encoding"):
        try:
            body = _gunzip(body)
        except OverflowError:
            return 413, "gzip body inflates to over %d bytes" % MAX_BODY, None, None, []
        except ValueError as e:
            return 400, str(e), None, None, []
    try:
        doc = parse_json(body)
    except ValueError as e:
        return 400, str(e), _body_as_text(body), None, []
    problems, warnings = validate_batch(doc, now_us)
    if problems:
        n = len(doc) if isinstance(doc, list) else 1
        lines = ["invalid Zipkin v2 span batch: %d problem%s in %d span%s; nothing from this "
                 "batch was stored" % (len(problems), "" if len(problems) == 1 else "s",
                                       n, "" if n == 1 else "s")]
        lines += problems[:MAX_LISTED_PROBLEMS]
        if len(problems) > MAX_LISTED_PROBLEMS:
            lines.append("... and %d more" % (len(problems) - MAX_LISTED_PROBLEMS))
        return 400, "\n".join(lines), doc, None, []
    return 202, "", doc, doc, warnings


def log(text):
    print(text, flush=True)


async def route_post_spans(state, conn, req, reader, writer):
    if conn["counted_in"] != state.generation:
        conn["counted_in"] = state.generation
        state.post_connections += 1
    try:
        body = await read_body(reader, req, writer)
    except HttpError as e:          # answered (and the connection closed) by the caller
        state.reject(None, "%d %s: %s" % (e.status, _phrase(e.status), e.message))
        log("POST /api/v2/spans: %d %s" % (e.status, e.message))
        raise
    behaviour = state.take_behaviour()
    status, message, batch, spans, warnings = evaluate(req, body, int(time.time() * US_PER_S))
    if spans is None:
        state.reject(batch, message)
        log("POST /api/v2/spans: %d %s" % (status, message.replace("\n", " | ")[:300]))

    if behaviour.mode == "hang":
        state.failed_batches += 1
        state.hung += 1
        log("POST /api/v2/spans: left hanging (behaviour hang)")
        try:
            while await reader.read(65536):     # until the client gives up
                pass
        finally:
            state.hung -= 1
        return False
    if behaviour.delay_ms:
        await asyncio.sleep(behaviour.delay_ms / 1000.0)
    if behaviour.mode == "error":
        state.failed_batches += 1
        log("POST /api/v2/spans: simulated %d" % behaviour.status)
        await send_text(writer, req, behaviour.status,
                        "simulated collector failure (behaviour mode \"error\"); spans not stored")
        return req.keep_alive
    if spans is None:
        await send_text(writer, req, status, message)
        return req.keep_alive
    state.store(spans, warnings)
    log("POST /api/v2/spans: 202 %d span%s%s" % (len(spans), "" if len(spans) == 1 else "s",
                                                ", %d warnings" % len(warnings) if warnings else ""))
    await send(writer, req, 202)
    return req.keep_alive


def _local_service(s):
    ep = s.get("localEndpoint")
    return ep.get("serviceName") if isinstance(ep, dict) else None


async def route_traces(state, req, writer):
    service = req.q("serviceName")
    span_name = req.q("spanName")
    limit = req.q("limit")
    if limit is not None:
        if not (limit.isdigit() and limit.isascii()) or int(limit) < 1:
            await send_text(writer, req, 400, "limit must be a positive integer")
            return
        limit = int(limit)
    out = []
    for spans in state.traces.values():
        if service and not any((_local_service(s) or "").lower() == service.lower()
                               for s in spans):
            continue
        if span_name and not any((s.get("name") or "").lower() == span_name.lower()
                                 for s in spans):
            continue
        out.append(spans)
    if limit is not None:
        out = out[:limit]
    await send_json(writer, req, out)


async def route_trace(state, req, writer, trace_id):
    tid = trace_id.lower()
    if len(tid) not in (16, 32) or not LOWER_HEX_RE.fullmatch(tid):
        await send_text(writer, req, 400, "trace id must be 16 or 32 hex characters")
        return
    spans = state.traces.get(tid)
    if not spans:
        await send_text(writer, req, 404, "trace %s not found" % tid)
        return
    await send_json(writer, req, spans)


async def route_behaviour(state, req, writer, body):
    if req.method == "GET" or req.method == "HEAD":
        await send_json(writer, req, state.behaviour.to_json())
        return
    try:
        state.behaviour = Behaviour.parse(parse_json(body))
    except ValueError as e:
        await send_text(writer, req, 400, "behaviour: %s" % e)
        return
    log("behaviour: %s" % json.dumps(state.behaviour.to_json()))
    await send_json(writer, req, state.behaviour.to_json())


ROUTES = {                              # exact paths -> allowed methods
    "/api/v2/spans": ("POST", "GET", "HEAD"),
    "/api/v2/traces": ("GET", "HEAD"),
    "/api/v2/services": ("GET", "HEAD"),
    "/health": ("GET", "HEAD"),
    "/_fixture/spans": ("GET", "HEAD", "DELETE"),
    "/_fixture/rejected": ("GET", "HEAD"),
    "/_fixture/warnings": ("GET", "HEAD"),
    "/_fixture/stats": ("GET", "HEAD"),
    "/_fixture/behaviour": ("GET", "HEAD", "POST"),
}


async def dispatch(state, conn, req, reader, writer):
    """Serves one request; True to keep the connection open."""
    path = req.path
    if path == "/api/v2/spans" and req.method == "POST":
        return await route_post_spans(state, conn, req, reader, writer)
    body = await read_body(reader, req, writer)
    methods = ROUTES.get(path)
    if path.startswith("/api/v2/trace/") and path.count("/") == 4:
        methods = ("GET", "HEAD")
    if methods is None:
        if path.startswith("/api/v1/"):
            await send_text(writer, req, 404, "the Zipkin v1 API is not served here; POST "
                            "JSON v2 spans to /api/v2/spans")
        else:
            await send_text(writer, req, 404, "no route %s; see the docstring of "
                            "zipkin_collector.py (POST /api/v2/spans, GET /api/v2/traces, "
                            "/api/v2/trace/<id>, /_fixture/...)" % path)
        return req.keep_alive
    if req.method not in methods:
        await send_text(writer, req, 405, "%s takes %s, not %s"
                        % (path, ", ".join(methods), req.method),
                        extra=[("Allow", ", ".join(methods))])
        return req.keep_alive

    if path == "/api/v2/spans":
        service = req.q("serviceName")
        if not service:
            await send_text(writer, req, 400, "GET /api/v2/spans needs ?serviceName=")
        else:
            names = sorted({s.get("name") for s in state.spans
                            if (_local_service(s) or "").lower() == service.lower()
                            and s.get("name")})
            await send_json(writer, req, names)
    elif path == "/api/v2/traces":
        await route_traces(state, req, writer)
    elif path.startswith("/api/v2/trace/"):
        await route_trace(state, req, writer, path[len("/api/v2/trace/"):])
    elif path == "/api/v2/services":
        await send_json(writer, req, sorted({_local_service(s) for s in state.spans
                                             if _local_service(s)}))
    elif path == "/health":
        await send_json(writer, req, {"status": "UP"})
    elif path == "/_fixture/spans":
        if req.method == "DELETE":
            state.clear()
            log("cleared")
            await send_json(writer, req, {"cleared": True})
        else:
            await send_json(writer, req, state.spans)
    elif path == "/_fixture/rejected":
        await send_json(writer, req, state.rejected)
    elif path == "/_fixture/warnings":
        await send_json(writer, req, state.warnings)
    elif path == "/_fixture/stats":
        await send_json(writer, req, state.stats())
    elif path == "/_fixture/behaviour":
        await route_behaviour(state, req, writer, body)
    return req.keep_alive


async def handle_connection(state, reader, writer):
    task = asyncio.current_task()
    state.tasks.add(task)
    state.open_connections += 1
    conn = {"counted_in": None}     # the State generation it was counted in
    try:
        while True:
            req = None
            try:
                req = await read_request(reader)
                if req is None:
                    break
                if not await dispatch(state, conn, req, reader, writer):
                    break
            except HttpError as e:
                if req is None:
                    req = Request()
                req.keep_alive = False
                await send_text(writer, req, e.status, "%d %s: %s"
                                % (e.status, _phrase(e.status), e.message))
                break
    except (Gone, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    except Exception:                  # a bug in this file: report, drop the connection
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
    finally:
        state.open_connections -= 1
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
    state = State()
    server = await asyncio.start_server(
        lambda r, w: handle_connection(state, r, w), args.host, args.port,
        limit=STREAM_LIMIT, backlog=512, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    log("listening on %s:%d" % (args.host, port))

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
    p = argparse.ArgumentParser(description="Strict Zipkin v2 collector for Switchyard tests.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    p.add_argument("--port-file", help="write the bound port here (atomically)")
    args = p.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as e:
        print("zipkin_collector.py: cannot listen on %s:%d: %s" % (args.host, args.port, e),
              file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------
# Client side: the collector as a subprocess, for tests
# --------------------------------------------------------------------------

class CollectorError(Exception):
    """The collector did not start, or answered a fixture call unexpectedly."""


_STARTED = []


def _kill_leftovers():
    for c in _STARTED:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
        shutil.rmtree(c.tmpdir, ignore_errors=True)


atexit.register(_kill_leftovers)


class Collector:
    """This file running as a subprocess on 127.0.0.1:<ephemeral port>.

        with Collector() as z:
            config = "... zipkin host 127.0.0.1 port %d ..." % z.port
            ...
            spans = z.wait_for_spans(2, timeout=5)
            assert z.rejected() == []
            for trace in z.traces():
                assert check_tree(trace) == []

    The constructor waits (up to ready_timeout s) for the port file and
    raises CollectorError, with the output, if the process exits or is
    late. Every client call opens one HTTP connection with `timeout` s per
    socket operation and raises CollectorError on an unexpected status.
    The process is killed at interpreter exit if still running."""

    def __init__(self, host="127.0.0.1", ready_timeout=10.0, python=None, timeout=10.0):
        self.host = host
        self.timeout = timeout
        self.port = None
        self.tmpdir = tempfile.mkdtemp(prefix="switchyard-zipkin-")
        self.port_file = os.path.join(self.tmpdir, "port")
        self.stdout_path = os.path.join(self.tmpdir, "stdout.txt")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.txt")
        cmd = [python or sys.executable, os.path.abspath(__file__), "--host", host,
               "--port", "0", "--port-file", self.port_file]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        self.pid = self.proc.pid
        _STARTED.append(self)
        deadline = time.monotonic() + ready_timeout
        while self.port is None:
            try:
                with open(self.port_file, encoding="ascii") as f:
                    self.port = int(f.read().strip())
                break
            except (FileNotFoundError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                what = ("exited with %s" % self.proc.returncode if self.proc.poll() is not None
                        else "reported no port within %.0f s" % ready_timeout)
                self.kill()
                raise CollectorError("zipkin collector %s:\n%s" % (what, self.logs()))
            time.sleep(0.02)

    # -- addresses ---------------------------------------------------------
    @property
    def endpoint(self):
        """"host:port" of the collector."""
        return "%s:%d" % (self.host, self.port)

    def url(self, path="/api/v2/spans"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    # -- raw requests ------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=None):
        """One request on a new connection: (status, [(name, value)], body)."""
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout or self.timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _json(self, method, path, body=None, want=200):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, _, data = self.request(method, path, body=body, headers=headers)
        if status != want:
            raise CollectorError("%s %s answered %d: %s"
                                 % (method, path, status, data[:500].decode("utf-8", "replace")))
        return json.loads(data)

    def post_spans(self, spans, gzip_body=False, content_type="application/json",
                   timeout=None):
        """POSTs spans (a list, or raw bytes/str) to /api/v2/spans as a client
        would: (status, body text)."""
        if isinstance(spans, (bytes, bytearray)):
            body = bytes(spans)
        elif isinstance(spans, str):
            body = spans.encode("utf-8")
        else:
            body = json.dumps(spans).encode("utf-8")
        headers = {"Content-Type": content_type} if content_type else {}
        if gzip_body:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        status, _, data = self.request("POST", "/api/v2/spans", body=body, headers=headers,
                                       timeout=timeout)
        return status, data.decode("utf-8", "replace")

    # -- inspection --------------------------------------------------------
    def spans(self):
        """Every accepted span, in arrival order."""
        return self._json("GET", "/_fixture/spans")

    def traces(self, **query):
        """GET /api/v2/traces (query: serviceName=, spanName=, limit=)."""
        qs = urllib.parse.urlencode(query)
        return self._json("GET", "/api/v2/traces" + ("?" + qs if qs else ""))

    def trace(self, trace_id):
        """The spans of one trace, or None if there are none."""
        status, _, data = self.request("GET", "/api/v2/trace/%s" % trace_id)
        if status == 404:
            return None
        if status != 200:
            raise CollectorError("GET /api/v2/trace/%s answered %d" % (trace_id, status))
        return json.loads(data)

    def rejected(self):
        """[{"batch", "error"}] of every refused POST."""
        return self._json("GET", "/_fixture/rejected")

    def warnings(self):
        return self._json("GET", "/_fixture/warnings")

    def stats(self):
        return self._json("GET", "/_fixture/stats")

    def clear(self):
        """Forgets spans, rejections, warnings and counters."""
        self._json("DELETE", "/_fixture/spans")

    def behave(self, mode="ok", delay_ms=None, status=None, times=None):
        """Sets the behaviour (see the module docstring); returns it."""
        doc = {"mode": mode}
        if delay_ms is not None:
            doc["delayMs"] = delay_ms
        if status is not None:
            doc["status"] = status
        if times is not None:
            doc["times"] = times
        return self._json("POST", "/_fixture/behaviour", body=json.dumps(doc))

    def wait_for(self, predicate, timeout=10.0, interval=0.02, what="condition"):
        """Polls predicate(self) until it returns something truthy (returned)
        or `timeout` s pass (CollectorError, with the last stats)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise CollectorError("%s not met within %.1f s; stats %s, rejected %s"
                                     % (what, timeout, self.stats(),
                                        _show(self.rejected(), 1000)))
            time.sleep(interval)

    def wait_for_spans(self, count, timeout=10.0, trace_id=None):
        """Waits until at least `count` spans (of trace_id, if given) were
        accepted; returns them all (CollectorError on timeout)."""
        def enough(z):
            spans = z.spans()
            if trace_id is not None:
                spans = [s for s in spans if s.get("traceId") == trace_id]
            return spans if len(spans) >= count else None
        return self.wait_for(enough, timeout,
                             what="%d span(s)%s" % (count, " of trace %s" % trace_id
                                                    if trace_id else ""))

    # -- process -----------------------------------------------------------
    def logs(self):
        """stdout then stderr of the collector, as text."""
        return self.stdout() + self.stderr()

    def stdout(self):
        return self._read(self.stdout_path)

    def stderr(self):
        return self._read(self.stderr_path)

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM, SIGKILL after `grace` s; the exit code (0 = clean)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return "Collector(port=%s)" % self.port


if __name__ == "__main__":
    sys.exit(main())
