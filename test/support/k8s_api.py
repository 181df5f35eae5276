#!/usr/bin/env python3
"""A fixture of the Kubernetes API server, for Switchyard's tests: the read
side of the built-in resources Switchyard watches, and reads and writes of the
l5d.io DTab custom resource (Namerd's io.l5d.k8s dtab storage).

Usage: k8s_api.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
                  [--state FILE] [--token T] [--history K]
                  [--bookmark-interval-ms N] [--no-crds]
                  [--tls-cert FILE --tls-key FILE]

Binds HOST:PORT (port 0 = an ephemeral port), writes the bound port as one
line to FILE (through FILE.tmp and a rename, so a reader never sees a partial
file), prints `listening on HOST:PORT` and serves HTTP/1.1 (plain, or over
TLS, below) until SIGTERM or SIGINT, then exits 0. Python 3 standard library
only; asyncio, one thread, so any number of watch streams can be open at once.

Importable too: `K8sApiServer(...)` runs the same server on its own event
loop in a background thread (`start()`, `stop()`, `port`, `url(path)`, and
thread-safe methods for every control operation below).

TLS: --tls-cert FILE --tls-key FILE (both or neither; K8sApiServer(...,
  tls_cert=, tls_key=)) serve HTTPS, as the real API server does in a
  cluster: FILE is a PEM certificate chain (the server's certificate first)
  and its PEM key; TLS 1.2 or newer, no client certificates asked for.
  Everything below (the control API too, watches, faults; "refuse" reopens
  the listener with TLS) is the same over TLS, and url() gives https://
  URLs. test/support/certs.py makes a CA and a server certificate for
  127.0.0.1/localhost. A failed handshake ends only that connection: one
  openssl reports (a client that rejects the certificate, speaks plain
  HTTP or sends garbage) writes one line to stderr, `k8s_api.py: TLS
  handshake failed: REASON`, and counts in /_fixture/state's
  "tlsHandshakeFailures"; a client that leaves mid-handshake, or is cut
  after 10 s without finishing it, is not logged. A bad FILE: exit 2.

Resources (all namespaced; JSON only)
  endpoints       core v1 Endpoints        /api/v1/...
  pods            core v1 Pod              /api/v1/...
  services        core v1 Service          /api/v1/...
  endpointslices  discovery.k8s.io/v1      /apis/discovery.k8s.io/v1/...
  dtabs           l5d.io/v1alpha1 DTab     /apis/l5d.io/v1alpha1/...
                  (a custom resource, list kind DTabList: see "Custom
                  resources" below)

Paths (PREFIX is /api/v1, /apis/discovery.k8s.io/v1 or /apis/l5d.io/v1alpha1,
R a resource above)
  GET PREFIX/namespaces/<ns>/R            list (or watch, see below)
  GET PREFIX/R                            list across all namespaces
  GET PREFIX/namespaces/<ns>/R/<name>     get one object (`watch` is ignored
                                          here, as by the real server)
  GET PREFIX/watch/namespaces/<ns>/R[/<name>], PREFIX/watch/R
                                          the deprecated watch paths (always a
                                          watch; the named form watches one
                                          object: Linkerd 1 uses it)
  POST   PREFIX/namespaces/<ns>/R         create    } custom resources
  PUT    PREFIX/namespaces/<ns>/R/<name>  update    } only (below)
  DELETE PREFIX/namespaces/<ns>/R/<name>  delete    }
  GET /version, /healthz, /livez, /readyz
  HEAD is served like GET without a body. Other methods on API paths: 405
  Status reason MethodNotAllowed (the built-in resources are read-only to
  clients, tests write them through the control API; on dtabs: PATCH, PUT or
  DELETE of a collection (deletecollection), POST to a named path or to
  PREFIX/R, any write to a /watch/ path). Unknown API paths: 404 Status "the
  server could not find the requested resource"; paths outside /api, /apis:
  404 `404 page not found`.

Objects
  Stored as given, with the real server's light defaulting: kind/apiVersion,
  metadata {name, namespace, uid, resourceVersion, creationTimestamp, labels,
  ...} in the server's key order (empty labels/annotations dropped); ports get
  `protocol: TCP`; Services get targetPort (= port), type ClusterIP, an
  allocated clusterIP/clusterIPs (10.96.x.y), sessionAffinity, ipFamilies,
  ipFamilyPolicy, internalTrafficPolicy and `status: {loadBalancer: {}}`.
  Empty lists disappear the way the real server's encoding makes them: an
  Endpoints with no addresses has no `subsets` key (and a subset no
  `addresses`/`notReadyAddresses`); an EndpointSlice with no endpoints has
  `"endpoints": null` (likewise `"ports": null`). Writing an object identical
  to the stored one is a no-op: no new resourceVersion, no event. Custom
  resources: below.

resourceVersion
  One global revision counter (like etcd's): every create, update and delete
  takes the next integer; an object's metadata.resourceVersion is the
  revision of its last change; a list's is the current revision. The last K
  changes (--history, default 1000) are kept as the watch history; the
  revision just before the oldest kept event is the "compacted" revision.

Lists
  {"kind": "<Kind>List", "apiVersion", "metadata": {"resourceVersion"},
   "items": [...]}; items carry no kind/apiVersion, as in real lists; sorted
  by "<namespace>/<name>" (etcd key order).
  labelSelector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`,
  `k notin (a,b)`, `k>n`, `k<n`, comma-joined (all must hold); a bad one: 400.
  fieldSelector: `f=v`, `f==v`, `f!=v`, comma-joined, backslash escapes;
  fields metadata.name and metadata.namespace everywhere, plus for pods
  spec.nodeName, spec.restartPolicy, spec.schedulerName,
  spec.serviceAccountName, spec.hostNetwork, status.phase, status.podIP,
  status.nominatedNodeName, and for services spec.clusterIP, spec.type;
  another field: 400 "field label not supported: F".
  resourceVersion: "", "0", or N (with the default NotOlderThan semantics)
  all serve the current state, however old N is. resourceVersionMatch=Exact
  with N serves the state at N, or 410 Expired if N is compacted.
  limit/continue: pages in key order with metadata.continue (base64 of
  {"v":"meta.k8s.io/v1","rv":RV,"start":"<key>\\u0000"}) and
  remainingItemCount; every page is the consistent snapshot at the first
  page's revision (410 Expired once compacted); as from the real watch
  cache, `limit` is ignored when resourceVersion=0.
  Responses over 128 KiB are gzip-compressed when the request has
  `Accept-Encoding: gzip` (as the real server does); watches never are.

Errors are Status objects, e.g. for a missing object:
  {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
   "message":"endpoints \\"x\\" not found","reason":"NotFound",
   "details":{"name":"x","kind":"endpoints"},"code":404}
  (endpointslices: message `endpointslices.discovery.k8s.io "x" not found`,
  details also carry "group":"discovery.k8s.io").

Watches: `watch=1|true` on a list path, or a /watch/ path
  200, Content-Type: application/json, Transfer-Encoding: chunked (an
  HTTP/1.0 request gets the stream unchunked, ended by closing), headers sent
  at once; then one event per line, one chunk per event:
      {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}
  Objects in events carry kind and apiVersion.
  * resourceVersion absent or "0": ADDED for every current matching object
    (key order), then every change.
  * resourceVersion=N: every change after N, replayed from the history; N in
    the future: changes after N. N older than the compacted revision M: one
    ERROR event with {"kind":"Status","apiVersion":"v1","metadata":{},
    "status":"Failure","message":"too old resource version: N (M)",
    "reason":"Expired","code":410}, then the stream ends (terminating chunk).
  * labelSelector/fieldSelector apply to events as in the real watch cache:
    an object that starts matching comes as ADDED, one that stops matching
    as DELETED (its previous content with the event's resourceVersion), a
    deleted object as DELETED with the deletion's resourceVersion. A single
    object is watched with fieldSelector=metadata.name=<name>.
  * allowWatchBookmarks=true: every bookmark interval (--bookmark-interval-ms,
    default 1000; control API below) a
    {"type":"BOOKMARK","object":{"kind":K,"apiVersion":V,
     "metadata":{"resourceVersion":"<current revision>"}}}; never lower than
    any event already sent on the stream.
  * sendInitialEvents=true (with resourceVersionMatch=NotOlderThan and
    allowWatchBookmarks=true, as the real server requires): ADDED for the
    current objects, then a BOOKMARK whose metadata carries the annotation
    "k8s.io/initial-events-end": "true", then changes.
  * timeoutSeconds=N: the stream ends cleanly (terminating chunk; the
    connection stays usable) after N seconds. Without it a watch stays open.
  * A client that closes its end is noticed at once and forgotten.

Custom resources: dtabs.l5d.io (group l5d.io, version v1alpha1, kind DTab)
  Served while its CustomResourceDefinition is installed (the default;
  --no-crds, K8sApiServer(crds=False) and /_fixture/crds change that): until
  then every /apis/l5d.io/... path answers 404 "the server could not find
  the requested resource", as a cluster without the CRD does. Uninstalling
  deletes every DTab (a DELETED event and a revision each) and then ends
  their watches cleanly (terminating chunk); the control API refuses to
  write DTabs (400) while it is uninstalled, and so does --state (exit 2).
  Objects: {"apiVersion": "l5d.io/v1alpha1", "kind": "DTab", "metadata":
  {...}, "dentries": [{"prefix", "dst"}], ...}; top-level fields are kept as
  given (no schema, no pruning). The server sets metadata uid,
  creationTimestamp, resourceVersion and generation (1 on create; +1 on an
  update that changes anything outside metadata; the same for control-API
  writes). Encoded as the real server encodes unstructured objects: every
  object's keys sorted (Go's map encoding); list items keep kind/apiVersion
  and the list's metadata always has "continue" ("" on the last page).
  Reads, selectors (fields metadata.name, metadata.namespace), paging,
  watches and bookmarks as for every resource; writes, like reads, need the
  token, meet the down modes and are in the request log.
  Client writes (body JSON; Content-Type absent or application/json, or
  application/yaml when the body is JSON; another: 415 UnsupportedMediaType;
  ?dryRun: 400, not supported; no managedFields are kept) answer as the real
  server does, its checks in its order; Status messages as the real ones.
  Every write goes through the one store: a revision and a watch event each.
  * POST .../namespaces/<ns>/dtabs -> 201 and the stored object.
    A body that is not a JSON object: 400 BadRequest ("couldn't get
    version/kind; json parse error: ..."); apiVersion other than
    l5d.io/v1alpha1: 400 "the API version in the data (V) does not match the
    expected API version (l5d.io/v1alpha1)"; missing kind/apiVersion are
    filled in, another kind: 422 (kind: Invalid value: "K": must be DTab);
    metadata.namespace other than <ns>: 400 "the namespace of the provided
    object does not match the namespace sent on the request"; uid,
    creationTimestamp, deletionTimestamp, selfLink are wiped; generateName
    without a name: name = generateName + 5 random characters. Then
    validation, 422 Invalid, details {name, group "l5d.io", kind "DTab",
    causes [{reason, message, field}]}, message `DTab.l5d.io "N" is invalid:
    <field>: <error>` ([a, b] for several): no name -> `metadata.name:
    Required value: name or generateName is required`; a name that is not a
    DNS subdomain (<= 253 characters of [a-z0-9]([-a-z0-9]*[a-z0-9])?
    (\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*) -> `metadata.name: Invalid value:
    "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case
    alphanumeric characters, '-' or '.', and must start and end with an
    alphanumeric character (e.g. 'example.com', regex used for validation is
    '...')`; a namespace that is not a DNS label likewise (metadata.namespace).
    A non-zero integer metadata.resourceVersion: 500 (reason left out, Go's
    StatusReasonUnknown) "resourceVersion should not be set on objects to be
    created" (the etcd3 store's error; "0" or a non-integer is ignored).
    Name taken: 409 AlreadyExists `dtabs.l5d.io "N" already exists`.
  * PUT .../namespaces/<ns>/dtabs/<name> -> 200 and the stored object.
    Decoding and apiVersion as for POST; body metadata.name absent: 400 "the
    name of the object (<name> based on URL) was undeterminable: name must be
    provided", different: 400 "the name of the object (B) does not match the
    name on the URL (<name>)"; metadata.namespace different: 400 "the
    namespace of the object (B) does not match the namespace on the request
    (<ns>)". No such object: 404 NotFound (no create on update). A body uid
    other than the object's: 409 Conflict (the storage precondition: "...
    StorageError: invalid object, Code: 4, Key: /registry/l5d.io/dtabs/<ns>/
    <name>, ..., Precondition failed: UID in precondition: ..."). No (or "0")
    metadata.resourceVersion: 422 Invalid `dtabs.l5d.io "N" is invalid:
    metadata.resourceVersion: Invalid value: 0x0: must be specified for an
    update` (details kind "dtabs"); not an integer: 500 "strconv.ParseUint:
    ..."; not the stored one: 409 Conflict `Operation cannot be fulfilled on
    dtabs.l5d.io "N": the object has been modified; please apply your changes
    to the latest version and try again`. Then validation as for POST. uid,
    creationTimestamp are kept, generation as above; an identical object is
    the no-op above (200, the stored object unchanged, no event).
  * DELETE .../namespaces/<ns>/dtabs/<name> -> 200 and, as the real server
    answers for custom resources (the generic store without
    ReturnDeletedObject), a Success Status, not the object:
      {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",
       "details":{"name":N,"group":"l5d.io","kind":"dtabs","uid":U}}
    and a DELETED event (the last state, the deletion's resourceVersion).
    An optional body, DeleteOptions {"kind":"DeleteOptions","apiVersion":
    "v1","preconditions":{"resourceVersion":"R","uid":"U"}} (other fields
    ignored; finalizers and grace periods are not modelled: the object goes
    at once). No such object: 404 NotFound. A precondition that does not
    hold: 409 Conflict from rest.BeforeDelete, details {name, group
    "l5d.io", kind "DTab"}: `Operation cannot be fulfilled on DTab.l5d.io
    "N": the ResourceVersion in the precondition (R) does not match the
    ResourceVersion in record (M). The object might have been modified` (uid:
    `the UID in the precondition (U) does not match the UID in record (V).
    The object might have been deleted and then recreated`).
  * PATCH: 405 MethodNotAllowed (not served).

--token T: API paths (not /version, /healthz, /livez, /readyz, /_fixture/)
  need `Authorization: Bearer T`, else 401
  {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
   "message":"Unauthorized","reason":"Unauthorized","code":401}.

--state FILE: initial objects, loaded in order at start (each takes a
  revision; DTabs only with the CRD installed): a JSON list of objects, or
  {"objects": [...], "services": [<service specs as for PUT /_fixture/service>]}.

Control API (never affected by faults or the token; JSON in, JSON out; a bad
request gets 400 {"error": "..."})
  GET    /_fixture/state           {"resourceVersion", "compactedResourceVersion",
                                    "historySize", "historyEvents", "objects",
                                    "watchers", "down", "bookmarkIntervalMs",
                                    "watchChunkBytes", "token", "crds", "tls",
                                    "tlsHandshakeFailures"}
  GET    /_fixture/objects         {"resourceVersion", "items": [every object]}
  PUT    /_fixture/objects         an object, a list of objects, or
                                   {"items": [...]}: create or replace each
                                   (ADDED/MODIFIED to watchers);
                                   -> {"resourceVersion", "results":
                                   [{"changed": bool, "object": {...}}]}
  DELETE /_fixture/objects/<kind>/<ns>/<name>
                                   kind as Kind, kind or resource name
                                   (Endpoints, endpoints, endpointslice,
                                   pods, ...); DELETED to watchers;
                                   -> {"resourceVersion", "object"}; 404 if absent
  PUT    /_fixture/service         {"namespace", "name", "ports": [{"name",
                                   "port", "targetPort"?, "protocol"?}],
                                   "endpoints": [{"ip", "nodeName"?, "ready"?
                                   (true), "serving"?, "terminating"? (false),
                                   "pod"? (name), "hostname"?, "zone"?}],
                                   "labels"?, "selector"? ({"app": name}),
                                   "clusterIP"?, "pods"? (false)}
                                   writes, as the real controllers would, the
                                   Service, then the Endpoints (ready ->
                                   addresses, not ready -> notReadyAddresses,
                                   terminating -> left out; ports = target
                                   ports), then the EndpointSlice
                                   "<name>-<5 stable chars>" (label
                                   kubernetes.io/service-name); with
                                   "pods": true first a Running Pod per
                                   endpoint (labels = selector). One revision
                                   per object that changed. -> {"resourceVersion",
                                   "service", "endpoints", "endpointSlice", "pods"}
  DELETE /_fixture/service/<ns>/<name>
                                   deletes its EndpointSlices, Endpoints and
                                   Service (pods stay) -> {"resourceVersion",
                                   "deleted": n}
  POST   /_fixture/drop-watches    {"reset"?: false} closes every open watch
                                   connection mid-stream (no terminating
                                   chunk; with reset, by a TCP RST)
                                   -> {"dropped": n}
  POST   /_fixture/compact         {"resourceVersion"?: R (default: now),
                                   "historySize"?: K}: forget history up to R
                                   (watches from before R then get 410);
                                   historySize sets K from now on
                                   -> the state document
  POST   /_fixture/down            {"seconds"?: S (default: until /up),
                                   "mode"?: "close"|"503"|"refuse" ("503")}:
                                   drops every open watch, then for S seconds
                                   API requests are answered 503 Status
                                   (reason ServiceUnavailable), or, "close",
                                   the connection is closed without an answer
                                   once the request head is read, or,
                                   "refuse", the listening socket itself is
                                   closed (connections refused, every open
                                   connection cut, the control API too) and
                                   reopened on the same port after S seconds
                                   (S required).
  POST   /_fixture/up              ends a down period now
  POST   /_fixture/bookmarks       {"intervalMs": N}  (0 disables bookmarks)
  POST   /_fixture/watch-chunks    {"maxBytes": N}: split each watch event
                                   line into chunks of at most N bytes
                                   (0: one chunk per event, the default)
  POST   /_fixture/inject          {"event": {...}} or {"raw": "text"}, and
                                   "resource"?: R: send that event (or that
                                   raw line, newline added) to every open
                                   watch (of R) -> {"watchers": n}
  POST   /_fixture/token           {"token": T or null}: change the required
                                   bearer token (null: none required)
  POST   /_fixture/crds            {"installed": true|false}: install or
                                   remove the custom resources' CRD (see
                                   "Custom resources") -> {"installed",
                                   "deleted": n objects, "watchesEnded": n}
  GET    /_fixture/crds            {"installed"}
  GET    /_fixture/requests[?since=SEQ]
                                   {"next": SEQ, "requests": [{"seq", "time",
                                   "method", "path", "query" (raw), "params"
                                   (first value of each), "watch", "status"
                                   (null if closed without an answer),
                                   "authorization", "userAgent"}]}: API
                                   requests (the newest 10000)
  DELETE /_fixture/requests        clears that log
  GET    /_fixture/watchers        {"watchers": n, "streams": [{"id",
                                   "resource", "namespace", "path", "query",
                                   "events"}]}

HTTP/1.1: keep-alive (HTTP/1.0: only with `Connection: keep-alive`),
pipelining, Content-Length or chunked request bodies, `Expect:
100-continue`; Content-Length on every response but watch streams. A
malformed request gets 400 and the connection is closed.
"""

import argparse
import asyncio
import base64
import binascii
import collections
import copy
import email.utils
import gzip
import hashlib
import http
import json
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

HEADER_CAP = 64 * 1024
BODY_CAP = 64 * 1024 * 1024
LOG_CAP = 10000
GZIP_THRESHOLD = 128 * 1024
DEFAULT_HISTORY = 1000
DEFAULT_BOOKMARK_MS = 1000
VERSION_INFO = {
    "major": "1", "minor": "30", "gitVersion": "v1.30.0-switchyard-fixture",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.22.0", "compiler": "gc",
    "platform": "linux/amd64",
}
UNAUTHENTICATED_PATHS = {"/version", "/healthz", "/livez", "/readyz"}

TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
LABEL_KEY_RE = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"   # the one Kubernetes names use


# --------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------

def _dig(obj, *path):
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def _field_text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field(*path):
    return lambda obj: _field_text(_dig(obj, *path))


META_FIELDS = {
    "metadata.name": _field("metadata", "name"),
    "metadata.namespace": _field("metadata", "namespace"),
}
POD_FIELDS = dict(META_FIELDS, **{
    "spec.nodeName": _field("spec", "nodeName"),
    "spec.restartPolicy": _field("spec", "restartPolicy"),
    "spec.schedulerName": _field("spec", "schedulerName"),
    "spec.serviceAccountName": _field("spec", "serviceAccountName"),
    "spec.hostNetwork": lambda o: "true" if _dig(o, "spec", "hostNetwork") else "false",
    "status.phase": _field("status", "phase"),
    "status.podIP": _field("status", "podIP"),
    "status.nominatedNodeName": _field("status", "nominatedNodeName"),
})
SERVICE_FIELDS = dict(META_FIELDS, **{
    "spec.clusterIP": _field("spec", "clusterIP"),
    "spec.type": _field("spec", "type"),
})


class Resource:
    def __init__(self, plural, singular, kind, group, version, fields, body_keys, custom=False):
        self.plural = plural
        self.singular = singular
        self.kind = kind
        self.group = group
        self.version = version
        self.api_version = group + "/" + version if group else version
        self.list_kind = kind + "List"
        self.fields = fields
        self.body_keys = body_keys      # top-level keys after metadata, in Go order
        self.qualified = plural + "." + group if group else plural
        # a custom resource (a CRD's): writable by clients, present only while
        # the CRD is installed, served as unstructured JSON (sorted keys)
        self.custom = custom
        self.group_kind = kind + "." + group if group else kind


RESOURCES = {r.plural: r for r in [
    Resource("endpoints", "endpoints", "Endpoints", "", "v1", META_FIELDS, ["subsets"]),
    Resource("pods", "pod", "Pod", "", "v1", POD_FIELDS, ["spec", "status"]),
    Resource("services", "service", "Service", "", "v1", SERVICE_FIELDS, ["spec", "status"]),
    Resource("endpointslices", "endpointslice", "EndpointSlice", "discovery.k8s.io", "v1",
             META_FIELDS, ["addressType", "endpoints", "ports"]),
    Resource("dtabs", "dtab", "DTab", "l5d.io", "v1alpha1", META_FIELDS, [], custom=True),
]}
KINDS = {r.kind: r for r in RESOURCES.values()}
API_GROUPS = {"": "v1", "discovery.k8s.io": "v1", "l5d.io": "v1alpha1"}


def resource_by_name(text):
    """A resource from a kind or resource name in any common spelling."""
    t = (text or "").lower()
    for r in RESOURCES.values():
        if t in (r.plural, r.singular, r.kind.lower()) or t + "s" == r.plural:
            return r
    return None


def resource_of(obj):
    """The resource of an object by its kind and apiVersion (ValueError if
    unknown or inconsistent)."""
    if not isinstance(obj, dict):
        raise ValueError("an object must be a JSON object")
    kind = obj.get("kind")
    for r in RESOURCES.values():
        if r.kind == kind:
            api_version = obj.get("apiVersion", r.api_version)
            if api_version != r.api_version:
                raise ValueError("%s has apiVersion %s, not %r" % (kind, r.api_version, api_version))
            return r
    raise ValueError("unsupported kind %r (one of %s)"
                     % (kind, ", ".join(sorted(r.kind for r in RESOURCES.values()))))


# --------------------------------------------------------------------------
# Status objects, JSON
# --------------------------------------------------------------------------

def status_object(code, reason, message, details=None):
    """A failure Status; reason None is Go's StatusReasonUnknown (""), which
    the real encoding leaves out."""
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message}
    if reason is not None:
        s["reason"] = reason
    if details is not None:
        s["details"] = details
    s["code"] = code
    return s


def _details(name, group, kind, **more):
    """StatusDetails as Go encodes them (empty fields left out)."""
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    d.update(more)
    return d


def go_quote(text):
    """Go's %q of a string (close enough: JSON string syntax)."""
    return json.dumps(text, ensure_ascii=False)


def field_invalid(path, value, detail):
    """A field.Invalid error: (type, field, body). value: a str (shown as Go's
    %q) or a GoText (shown as it is)."""
    shown = go_quote(value) if isinstance(value, str) else value.text
    return ("FieldValueInvalid", path, "Invalid value: %s: %s" % (shown, detail))


class GoText:
    """A field error's bad value shown verbatim (e.g. uint64 0 is `0x0`)."""

    def __init__(self, text):
        self.text = text


def field_required(path, detail=""):
    return ("FieldValueRequired", path, "Required value" + (": " + detail if detail else ""))


def invalid_status(group_kind, group, kind, name, errors):
    """apierrors.NewInvalid: 422 Invalid, one cause per field error."""
    texts = []
    for _, path, body in errors:
        t = "%s: %s" % (path, body)
        if t not in texts:
            texts.append(t)
    agg = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    causes = [{"reason": t, "message": body, "field": path} for t, path, body in errors]
    return status_object(422, "Invalid", '%s %s is invalid: %s' % (group_kind, go_quote(name), agg),
                         _details(name, group, kind, causes=causes))


def conflict_status(qualified, group, kind, name, why):
    """apierrors.NewConflict: 409 Conflict."""
    return status_object(409, "Conflict", "Operation cannot be fulfilled on %s %s: %s"
                         % (qualified, go_quote(name), why), _details(name, group, kind))


def already_exists_status(res, name):
    return status_object(409, "AlreadyExists", "%s %s already exists"
                         % (res.qualified, go_quote(name)), _details(name, res.group, res.plural))


OPTIMISTIC_LOCK_MSG = ("the object has been modified; please apply your changes to the latest "
                       "version and try again")


def not_found_status(res, name):
    details = {"name": name}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.plural
    return status_object(404, "NotFound", '%s "%s" not found' % (res.qualified, name), details)


def expired_status(rv, compacted):
    return status_object(410, "Expired", "too old resource version: %d (%d)" % (rv, compacted))


NO_SUCH_RESOURCE = status_object(404, "NotFound", "the server could not find the requested resource",
                                 {})
METHOD_NOT_ALLOWED = status_object(
    405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
UNAUTHORIZED = status_object(401, "Unauthorized", "Unauthorized")


class ApiError(Exception):
    """Answered with a Status object."""

    def __init__(self, status):
        super().__init__(status["message"])
        self.status = status


def bad_request(message):
    return ApiError(status_object(400, "BadRequest", message))


def to_json(obj, pretty=False):
    if pretty:
        return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------

def _split_top_level(text):
    """Splits a label selector at commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


_SET_TERM = re.compile(r"\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*")
_CMP_TERM = re.compile(r"\s*([^\s!=<>]+)\s*(==|=|!=|>|<)\s*(\S*)\s*")


def _check_key(key):
    if not LABEL_KEY_RE.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
        raise bad_request("unable to parse requirement: invalid label key %r" % key)


def _check_value(value):
    if len(value) > 63 or not LABEL_VALUE_RE.fullmatch(value):
        raise bad_request("unable to parse requirement: invalid label value %r" % value)


def parse_label_selector(text):
    """A list of (key, op, values) requirements; ApiError (400) if malformed."""
    reqs = []
    if not text or not text.strip():
        return reqs
    for term in _split_top_level(text):
        t = term.strip()
        if not t:
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        m = _SET_TERM.fullmatch(t)
        if m:
            key, op = m.group(1), m.group(2)
            values = [v.strip() for v in m.group(3).split(",")]
            _check_key(key)
            for v in values:
                _check_value(v)
            reqs.append((key, op, set(values)))
            continue
        if t.startswith("!"):
            key = t[1:].strip()
            _check_key(key)
            reqs.append((key, "!", None))
            continue
        m = _CMP_TERM.fullmatch(t)
        if m:
            key, op, value = m.group(1), m.group(2), m.group(3)
            _check_key(key)
            if op in (">", "<"):
                if not re.fullmatch(r"-?[0-9]+", value):
                    raise bad_request("unable to parse requirement: for 'gt', 'lt' operators, "
                                      "the value must be an integer")
                reqs.append((key, op, int(value)))
            else:
                _check_value(value)
                reqs.append((key, "!=" if op == "!=" else "=", value))
            continue
        _check_key(t)
        reqs.append((t, "exists", None))
    return reqs


def labels_match(reqs, obj):
    labels = _dig(obj, "metadata", "labels") or {}
    for key, op, arg in reqs:
        present = key in labels
        value = labels.get(key)
        if op == "=":
            ok = present and value == arg
        elif op == "!=":
            ok = not present or value != arg
        elif op == "in":
            ok = present and value in arg
        elif op == "notin":
            ok = not present or value not in arg
        elif op == "exists":
            ok = present
        elif op == "!":
            ok = not present
        else:   # > <
            try:
                n = int(value) if present else None
            except ValueError:
                n = None
            ok = n is not None and (n > arg if op == ">" else n < arg)
        if not ok:
            return False
    return True


def _split_unescaped(text, sep):
    parts, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text):
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(res, text):
    """A list of (getter, op, value); ApiError (400) if malformed or a field
    is not supported for the resource."""
    reqs = []
    if not text or not text.strip():
        return reqs
    for term in _split_unescaped(text, ","):
        # find the first unescaped operator
        i, op, key, value = 0, None, None, None
        while i < len(term):
            ch = term[i]
            if ch == "\\":
                i += 2
                continue
            if term.startswith("!=", i) or term.startswith("==", i):
                op, key, value = term[i:i + 2], term[:i], term[i + 2:]
                break
            if ch == "=":
                op, key, value = "=", term[:i], term[i + 1:]
                break
            i += 1
        if op is None:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (text, term))
        key = _unescape(key.strip())
        value = _unescape(value)
        getter = res.fields.get(key)
        if getter is None:
            raise bad_request('field label not supported: %s' % key)
        reqs.append((getter, "!=" if op == "!=" else "=", value))
    return reqs


def fields_match(reqs, obj):
    for getter, op, value in reqs:
        if (getter(obj) == value) != (op == "="):
            return False
    return True


def parse_bool(params, name, default=False):
    text = params.get(name)
    if text is None or text == "":
        return default
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise bad_request('%s: Invalid value: "%s": not a boolean' % (name, text))


def parse_rv(text, what="resourceVersion"):
    if not re.fullmatch(r"[0-9]{1,18}", text or ""):
        raise bad_request('%s: Invalid value: "%s": must be an integer' % (what, text))
    return int(text)


# --------------------------------------------------------------------------
# Object normalisation (the real server's defaulting and encoding)
# --------------------------------------------------------------------------

META_ORDER = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
              "generation", "creationTimestamp", "deletionTimestamp",
              "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
              "finalizers", "managedFields"]
ADDRESS_ORDER = ["ip", "hostname", "nodeName", "targetRef"]
REF_ORDER = ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"]
EP_PORT_ORDER = ["name", "port", "protocol", "appProtocol"]
SLICE_PORT_ORDER = ["name", "protocol", "port", "appProtocol"]
SLICE_EP_ORDER = ["addresses", "conditions", "hostname", "targetRef", "deprecatedTopology",
                  "nodeName", "zone", "hints"]
COND_ORDER = ["ready", "serving", "terminating"]
SVC_SPEC_ORDER = ["ports", "selector", "clusterIP", "clusterIPs", "type", "externalIPs",
                  "sessionAffinity", "loadBalancerIP", "externalName", "externalTrafficPolicy",
                  "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"]
SVC_PORT_ORDER = ["name", "protocol", "appProtocol", "port", "targetPort", "nodePort"]


def ordered(d, order):
    if not isinstance(d, dict):
        return d
    out = {k: d[k] for k in order if k in d}
    for k, v in d.items():
        if k not in out:
            out[k] = v
    return out


def _port_list(ports, order):
    out = []
    for p in ports or []:
        if isinstance(p, dict):
            p = dict(p)
            p.setdefault("protocol", "TCP")
            p = ordered(p, order)
        out.append(p)
    return out


def _addresses(addrs):
    out = []
    for a in addrs or []:
        if isinstance(a, dict):
            a = ordered(a, ADDRESS_ORDER)
            if isinstance(a.get("targetRef"), dict):
                a["targetRef"] = ordered(a["targetRef"], REF_ORDER)
        out.append(a)
    return out


def _normalise_endpoints(obj):
    subsets = []
    for s in obj.get("subsets") or []:
        if not isinstance(s, dict):
            continue
        s = dict(s)
        for key in ("addresses", "notReadyAddresses"):
            if s.get(key):
                s[key] = _addresses(s[key])
            else:
                s.pop(key, None)
        if s.get("ports"):
            s["ports"] = _port_list(s["ports"], EP_PORT_ORDER)
        else:
            s.pop("ports", None)
        subsets.append(ordered(s, ["addresses", "notReadyAddresses", "ports"]))
    if subsets:
        obj["subsets"] = subsets
    else:
        obj.pop("subsets", None)


def _normalise_slice(obj):
    obj.setdefault("addressType", "IPv4")
    eps = []
    for e in obj.get("endpoints") or []:
        if isinstance(e, dict):
            e = ordered(e, SLICE_EP_ORDER)
            if isinstance(e.get("conditions"), dict):
                e["conditions"] = ordered(e["conditions"], COND_ORDER)
            if isinstance(e.get("targetRef"), dict):
                e["targetRef"] = ordered(e["targetRef"], REF_ORDER)
        eps.append(e)
    obj["endpoints"] = eps or None
    obj["ports"] = _port_list(obj.get("ports"), SLICE_PORT_ORDER) or None


def _normalise_service(obj, old, allocate_ip):
    spec = dict(obj.get("spec") or {})
    ports = []
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p = dict(p)
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
            p = ordered(p, SVC_PORT_ORDER)
        ports.append(p)
    if ports:
        spec["ports"] = ports
    spec.setdefault("type", "ClusterIP")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            old_ip = _dig(old, "spec", "clusterIP") if old else None
            spec["clusterIP"] = old_ip or allocate_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec["clusterIP"] != "None":
            family = "IPv6" if ":" in spec["clusterIP"] else "IPv4"
            spec.setdefault("ipFamilies", [family])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("sessionAffinity", "None")
    obj["spec"] = ordered(spec, SVC_SPEC_ORDER)
    obj.setdefault("status", {"loadBalancer": {}})


def normalise(obj, res, old, allocate_ip):
    """A stored copy of `obj`: kind/apiVersion, metadata in order, defaults.
    resourceVersion is left for the caller."""
    obj = copy.deepcopy(obj)
    meta = dict(obj.get("metadata") or {})
    obj["kind"] = res.kind
    obj["apiVersion"] = res.api_version
    for key in ("labels", "annotations"):
        if not meta.get(key):
            meta.pop(key, None)
    if old is not None:
        meta["uid"] = old["metadata"]["uid"]
        meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
    else:
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
    meta.pop("resourceVersion", None)
    meta.pop("selfLink", None)
    if res.custom:
        # customResourceStrategy: generation 1 on create; on update the old
        # one, plus 1 if anything but metadata changed
        if old is None:
            meta["generation"] = 1
        else:
            gen = old["metadata"].get("generation", 1)
            body = {k: v for k, v in obj.items() if k != "metadata"}
            old_body = {k: v for k, v in old.items() if k != "metadata"}
            meta["generation"] = gen if body == old_body else gen + 1
        obj["metadata"] = meta
        return sort_keys(obj)
    obj["metadata"] = ordered(meta, META_ORDER)
    if res.plural == "endpoints":
        _normalise_endpoints(obj)
    elif res.plural == "endpointslices":
        _normalise_slice(obj)
    elif res.plural == "services":
        _normalise_service(obj, old, allocate_ip)
    elif res.plural == "pods":
        obj.setdefault("spec", {})
        obj.setdefault("status", {})
    return ordered(obj, ["kind", "apiVersion", "metadata"] + res.body_keys)


def sort_keys(value):
    """`value` with every object's keys sorted, as Go encodes the
    map[string]interface{} of an unstructured (custom resource) object."""
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value


def with_rv(obj, rv):
    """A shallow copy of `obj` whose metadata.resourceVersion is rv."""
    out = dict(obj)
    meta = dict(obj["metadata"])
    meta["resourceVersion"] = str(rv)
    res = KINDS.get(obj.get("kind"))
    if res is not None and res.custom:
        out["metadata"] = {k: meta[k] for k in sorted(meta)}
    else:
        out["metadata"] = ordered(meta, META_ORDER)
    return out


def list_item(obj):
    """An object as it appears in a list: no kind, no apiVersion (a custom
    resource's items, unstructured, keep them)."""
    res = KINDS.get(obj.get("kind"))
    if res is not None and res.custom:
        return obj
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


# ---- name validation (k8s.io/apimachinery/pkg/util/validation) -------------

DNS_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
DNS_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN_RE = re.compile(DNS_SUBDOMAIN_FMT)
DNS_LABEL_RE = re.compile(DNS_LABEL_FMT)
DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '%s')" % DNS_SUBDOMAIN_FMT)
DNS_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '%s')" % DNS_LABEL_FMT)


def _mask_trailing_dash(name):
    # apimachinery's maskTrailingDash, as it is
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def dns_subdomain_errors(name, prefix=False):
    """NameIsDNSSubdomain: the messages for an invalid name (none if valid)."""
    if prefix:
        name = _mask_trailing_dash(name)
    errs = []
    if len(name) > 253:
        errs.append("must be no more than 253 characters")
    if not DNS_SUBDOMAIN_RE.fullmatch(name):
        errs.append(DNS_SUBDOMAIN_MSG)
    return errs


def dns_label_errors(name):
    """ValidateNamespaceName (IsDNS1123Label)."""
    errs = []
    if len(name) > 63:
        errs.append("must be no more than 63 characters")
    if not DNS_LABEL_RE.fullmatch(name):
        errs.append(DNS_LABEL_MSG)
    return errs


def obj_key(obj):
    return "%s/%s" % (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


# --------------------------------------------------------------------------
# Store and history
# --------------------------------------------------------------------------

class Event:
    __slots__ = ("rv", "resource", "type", "obj", "prev")

    def __init__(self, rv, resource, type_, obj, prev):
        self.rv = rv
        self.resource = resource     # plural
        self.type = type_            # ADDED | MODIFIED | DELETED
        self.obj = obj               # new state (DELETED: last state, the deletion's rv)
        self.prev = prev             # state before (None for ADDED)


class Store:
    def __init__(self, history_size):
        self.rv = 0
        self.objects = {}            # (plural, namespace, name) -> object
        self.history = collections.deque()
        self.compacted = 0           # watches from before this revision are expired
        self.history_size = max(0, history_size)
        self.listeners = []
        self._next_ip = 10

    def _allocate_ip(self):
        used = {_dig(o, "spec", "clusterIP") for (p, _, _), o in self.objects.items()
                if p == "services"}
        while True:
            n = self._next_ip
            self._next_ip += 1
            ip = "10.96.%d.%d" % (n // 250, n % 250 + 1)
            if ip not in used:
                return ip

    def get(self, plural, ns, name):
        return self.objects.get((plural, ns, name))

    def put(self, obj):
        """Creates or replaces; returns (stored object, changed)."""
        res = resource_of(obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) \
                or not meta.get("name"):
            raise ValueError("metadata.name is required")
        meta = dict(meta)
        meta.setdefault("namespace", "default")
        if not isinstance(meta["namespace"], str) or not NAME_RE.fullmatch(meta["namespace"]):
            raise ValueError("bad metadata.namespace %r" % (meta["namespace"],))
        if "/" in meta["name"]:
            raise ValueError("bad metadata.name %r" % meta["name"])
        obj = dict(obj, metadata=meta)
        key = (res.plural, meta["namespace"], meta["name"])
        old = self.objects.get(key)
        new = normalise(obj, res, old, self._allocate_ip)
        if old is not None:
            if with_rv(new, old["metadata"]["resourceVersion"]) == old:
                return old, False
        self.rv += 1
        new = with_rv(new, self.rv)
        self.objects[key] = new
        self._record(Event(self.rv, res.plural, "MODIFIED" if old else "ADDED", new, old))
        return new, True

    def delete(self, plural, ns, name):
        old = self.objects.pop((plural, ns, name), None)
        if old is None:
            return None
        self.rv += 1
        gone = with_rv(old, self.rv)
        self._record(Event(self.rv, plural, "DELETED", gone, old))
        return gone

    def _record(self, ev):
        self.history.append(ev)
        self._trim()
        for fn in list(self.listeners):
            fn(ev)

    def _trim(self):
        while len(self.history) > self.history_size:
            self.compacted = max(self.compacted, self.history.popleft().rv)

    def compact(self, upto=None, history_size=None):
        if history_size is not None:
            self.history_size = max(0, int(history_size))
        upto = self.rv if upto is None else min(int(upto), self.rv)
        if upto > self.compacted:
            self.compacted = upto
        while self.history and self.history[0].rv <= self.compacted:
            self.history.popleft()
        self._trim()

    def events_since(self, rv, plural):
        """Events of `plural` after rv, or None if rv is compacted."""
        if rv < self.compacted:
            return None
        return [ev for ev in self.history if ev.rv > rv and ev.resource == plural]

    def snapshot(self, plural, rv=None):
        """{key: object} of `plural` at revision rv (now if None), or None if
        rv is compacted."""
        objs = {k: v for k, v in self.objects.items() if k[0] == plural}
        if rv is None or rv >= self.rv:
            return objs
        if rv < self.compacted:
            return None
        for ev in reversed(self.history):
            if ev.rv <= rv:
                break
            if ev.resource != plural:
                continue
            key = (plural, ev.obj["metadata"].get("namespace", ""), ev.obj["metadata"]["name"])
            if ev.prev is None:
                objs.pop(key, None)
            else:
                objs[key] = ev.prev
        return objs


# --------------------------------------------------------------------------
# Convenience: a Service with its Endpoints and EndpointSlice
# --------------------------------------------------------------------------

def _stable_suffix(text, n=5):
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(RAND_ALPHABET[b % len(RAND_ALPHABET)] for b in digest[:n])


def _stable_uid(text):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "switchyard-k8s-fixture:" + text))


def slice_name(service):
    return "%s-%s" % (service, _stable_suffix(service))


def service_objects(spec, store):
    """The objects PUT /_fixture/service writes, in order:
    (pods, service, endpoints, slice)."""
    if not isinstance(spec, dict):
        raise ValueError("a service spec must be a JSON object")
    ns = spec.get("namespace", "default")
    name = spec.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError("a service spec needs a name (a DNS label), got %r" % (name,))
    labels = dict(spec.get("labels") or {})
    selector = dict(spec.get("selector") or {"app": name})
    ports = spec.get("ports") or []
    endpoints = spec.get("endpoints") or []
    if not isinstance(ports, list) or not isinstance(endpoints, list):
        raise ValueError("ports and endpoints must be lists")

    svc_ports, target_ports = [], []
    for p in ports:
        if not isinstance(p, dict) or not isinstance(p.get("port"), int):
            raise ValueError("each port needs an integer port: %r" % (p,))
        target = p.get("targetPort", p["port"])
        if not isinstance(target, int):
            raise ValueError("targetPort must be an integer here: %r" % (p,))
        proto = p.get("protocol", "TCP")
        sp = {"protocol": proto, "port": p["port"], "targetPort": target}
        tp = {"port": target, "protocol": proto}
        if p.get("name") is not None:
            sp["name"] = p["name"]
            tp["name"] = p["name"]
        svc_ports.append(ordered(sp, SVC_PORT_ORDER))
        target_ports.append(tp)

    svc_meta = {"name": name, "namespace": ns}
    if labels:
        svc_meta["labels"] = labels
    svc_spec = {"ports": svc_ports, "selector": selector}
    if spec.get("clusterIP"):
        svc_spec["clusterIP"] = spec["clusterIP"]
    service = {"kind": "Service", "apiVersion": "v1", "metadata": svc_meta, "spec": svc_spec}
    old_svc = store.get("services", ns, name)
    svc_uid = old_svc["metadata"]["uid"] if old_svc else _stable_uid("svc/%s/%s" % (ns, name))
    svc_meta["uid"] = svc_uid

    make_pods = bool(spec.get("pods"))
    pods, ready, not_ready, slice_eps = [], [], [], []
    family = "IPv4"
    for i, e in enumerate(endpoints):
        if not isinstance(e, dict) or not isinstance(e.get("ip"), str):
            raise ValueError("each endpoint needs an ip: %r" % (e,))
        if ":" in e["ip"]:
            family = "IPv6"
        pod_name = e.get("pod") or "%s-%s" % (name, _stable_suffix("%s/%s/%d" % (ns, name, i)))
        old_pod = store.get("pods", ns, pod_name)
        pod_uid = old_pod["metadata"]["uid"] if old_pod else _stable_uid(
            "pod/%s/%s" % (ns, pod_name))
        is_ready = bool(e.get("ready", True))
        terminating = bool(e.get("terminating", False))
        serving = bool(e.get("serving", is_ready))
        ref = {"kind": "Pod", "namespace": ns, "name": pod_name, "uid": pod_uid}
        addr = {"ip": e["ip"]}
        if e.get("hostname"):
            addr["hostname"] = e["hostname"]
        if e.get("nodeName"):
            addr["nodeName"] = e["nodeName"]
        addr["targetRef"] = ref
        if not terminating:
            (ready if is_ready else not_ready).append(addr)
        sep = {"addresses": [e["ip"]],
               "conditions": {"ready": is_ready and not terminating, "serving": serving,
                              "terminating": terminating}}
        if e.get("hostname"):
            sep["hostname"] = e["hostname"]
        sep["targetRef"] = dict(ref)
        if e.get("nodeName"):
            sep["nodeName"] = e["nodeName"]
        if e.get("zone"):
            sep["zone"] = e["zone"]
        slice_eps.append(sep)
        if make_pods:
            pod_spec = {"containers": [{"name": "app", "image": "example/app:1"}]}
            if e.get("nodeName"):
                pod_spec["nodeName"] = e["nodeName"]
            status = {"phase": "Running",
                      "conditions": [{"type": "Ready", "status": "True" if is_ready else "False"}],
                      "podIP": e["ip"], "podIPs": [{"ip": e["ip"]}]}
            if e.get("hostIP"):
                status["hostIP"] = e["hostIP"]
            pod_meta = {"name": pod_name, "namespace": ns, "uid": pod_uid,
                        "labels": dict(selector)}
            if terminating:
                pod_meta["deletionTimestamp"] = (_dig(old_pod, "metadata", "deletionTimestamp")
                                                 or now_rfc3339())
                pod_meta["deletionGracePeriodSeconds"] = 30
            pods.append({"kind": "Pod", "apiVersion": "v1", "metadata": pod_meta,
                         "spec": pod_spec, "status": status})

    ready.sort(key=lambda a: a["ip"])
    not_ready.sort(key=lambda a: a["ip"])
    ep_meta = {"name": name, "namespace": ns}
    if labels:
        ep_meta["labels"] = dict(labels)
    subsets = []
    if ready or not_ready:
        subset = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if target_ports:
            subset["ports"] = target_ports
        subsets.append(subset)
    endpoints_obj = {"kind": "Endpoints", "apiVersion": "v1", "metadata": ep_meta,
                     "subsets": subsets}

    sname = slice_name(name)
    slice_labels = dict(labels)
    slice_labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
    slice_labels["kubernetes.io/service-name"] = name
    slice_obj = {
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": sname, "generateName": name + "-", "namespace": ns,
                     "labels": slice_labels,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name,
                                          "uid": svc_uid, "controller": True,
                                          "blockOwnerDeletion": True}]},
        "addressType": family,
        "endpoints": slice_eps,
        "ports": [ordered(dict(p), SLICE_PORT_ORDER) for p in target_ports],
    }
    stale_pods = []
    if make_pods:
        keep = {p["metadata"]["name"] for p in pods}
        for (plural, pns, pname), pod in store.objects.items():
            if plural == "pods" and pns == ns and pname not in keep and \
                    labels_match([(k, "=", v) for k, v in selector.items()], pod):
                stale_pods.append(pname)
    return pods, stale_pods, service, endpoints_obj, slice_obj


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------

class BadHttp(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Conn:
    """A client connection with a pushback buffer, so a watch can keep
    reading (to notice the client leaving) without losing a pipelined
    request."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.task = None
        self.watcher = None

    @property
    def closing(self):
        return self.writer.transport is None or self.writer.transport.is_closing()

    async def fill(self):
        data = await self.reader.read(65536)
        if not data:
            return False
        self.buf += data
        return True

    async def read_head(self):
        while True:
            while self.buf[:2] == b"\r\n":
                del self.buf[:2]
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > HEADER_CAP:
                raise BadHttp(431, "request header section too large")
            if not await self.fill():
                if self.buf:
                    raise ConnectionResetError("EOF inside a request head")
                return None

    async def read_exact(self, n):
        while len(self.buf) < n:
            if not await self.fill():
                raise ConnectionResetError("EOF inside a request body")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def read_line(self, cap):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > cap:
                raise BadHttp(400, "line too long")
            if not await self.fill():
                raise ConnectionResetError("EOF inside a request body")

    def write(self, data):
        if not self.closing:
            self.writer.write(data)

    async def drain(self):
        if self.closing:
            raise ConnectionResetError("connection closed")
        await self.writer.drain()

    def abort(self, reset=False):
        transport = self.writer.transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
        transport.abort()


class Request:
    def __init__(self, method, target, minor, headers):
        self.method = method
        self.target = target
        self.minor = minor
        self.headers = headers
        if target.startswith(("http://", "https://")):
            parts = urllib.parse.urlsplit(target)
            path, query = parts.path or "/", parts.query
        else:
            path, _, query = target.partition("?")
        self.raw_path = path
        self.path = urllib.parse.unquote(path)
        self.query = query
        self.params = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            self.params.setdefault(k, v)
        conn_tokens = self.tokens("connection")
        if minor >= 1:
            self.keep_alive = "close" not in conn_tokens
        else:
            self.keep_alive = "keep-alive" in conn_tokens
        self.body = b""
        self.log = None

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def tokens(self, name):
        name = name.lower()
        out = []
        for k, v in self.headers:
            if k.lower() == name:
                out.extend(t.strip().lower() for t in v.split(",") if t.strip())
        return out


async def read_request(conn):
    head = await conn.read_head()
    if head is None:
        return None
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadHttp(400, "malformed request line")
    method, target, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise BadHttp(400, "malformed method")
    m = re.fullmatch(rb"HTTP/([0-9])\.([0-9])", version)
    if not m:
        raise BadHttp(400, "malformed HTTP version")
    if m.group(1) != b"1":
        raise BadHttp(505, "HTTP version not supported")
    headers = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise BadHttp(400, "obsolete line folding")
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN_RE.fullmatch(name):
            raise BadHttp(400, "malformed header line")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    req = Request(method.decode("ascii"), target.decode("latin-1"), int(m.group(2)), headers)

    te = req.tokens("transfer-encoding")
    lengths = [v.strip() for k, v in headers if k.lower() == "content-length"]
    if te and lengths:
        raise BadHttp(400, "both Transfer-Encoding and Content-Length")
    if te:
        if te != ["chunked"]:
            raise BadHttp(501, "unsupported transfer coding")
        if req.minor >= 1 and "100-continue" in req.tokens("expect"):
            conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = bytearray()
        while True:
            line = await conn.read_line(4096)
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
                raise BadHttp(400, "bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                total = 0
                while True:
                    trailer = await conn.read_line(HEADER_CAP)
                    total += len(trailer)
                    if not trailer:
                        break
                    if total > HEADER_CAP:
                        raise BadHttp(431, "trailers too large")
                break
            if len(body) + size > BODY_CAP:
                raise BadHttp(413, "request body too large")
            body += await conn.read_exact(size)
            if await conn.read_exact(2) != b"\r\n":
                raise BadHttp(400, "chunk not followed by CRLF")
        req.body = bytes(body)
    elif lengths:
        if len(set(lengths)) != 1 or not re.fullmatch(r"[0-9]{1,15}", lengths[0]):
            raise BadHttp(400, "bad Content-Length")
        n = int(lengths[0])
        if n > BODY_CAP:
            raise BadHttp(413, "request body too large")
        if n and req.minor >= 1 and "100-continue" in req.tokens("expect"):
            conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        req.body = await conn.read_exact(n) if n else b""
    return req


def response_head(status, headers):
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _date():
    return email.utils.formatdate(usegmt=True)


# --------------------------------------------------------------------------
# Watches
# --------------------------------------------------------------------------

class Watcher:
    _ids = 0

    def __init__(self, conn, res, namespace, name, labels, fields, bookmarks, start_rv,
                 path, query):
        Watcher._ids += 1
        self.id = Watcher._ids
        self.conn = conn
        self.res = res
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.fields = fields
        self.bookmarks = bookmarks
        self.start_rv = start_rv
        self.path = path
        self.query = query
        self.queue = asyncio.Queue()
        self.events = 0
        self.last_rv = start_rv

    def matches(self, obj):
        meta = obj["metadata"]
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.name is not None and meta.get("name") != self.name:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)

    def convert(self, ev):
        """(type, object) as this watcher sees `ev`, or None (the real watch
        cache's rules for selector transitions)."""
        cur = ev.type != "DELETED" and self.matches(ev.obj)
        old = ev.prev is not None and self.matches(ev.prev)
        if cur and not old:
            return "ADDED", ev.obj
        if cur and old:
            return "MODIFIED", ev.obj
        if old:
            return "DELETED", with_rv(ev.prev, ev.rv)
        return None

    def offer(self, ev):
        if ev.resource != self.res.plural or ev.rv <= self.start_rv:
            return
        conv = self.convert(ev)
        if conv is not None:
            self.queue.put_nowait(("event",) + conv + (ev.rv,))

    def bookmark(self, rv, annotations=None):
        rv = max(rv, self.last_rv)
        self.last_rv = rv
        meta = {"resourceVersion": str(rv)}
        if annotations:
            meta["annotations"] = annotations
        obj = {"kind": self.res.kind, "apiVersion": self.res.api_version, "metadata": meta}
        if self.res.custom:
            obj = sort_keys(obj)
        self.queue.put_nowait(("raw-event", {"type": "BOOKMARK", "object": obj}))

    def describe(self):
        return {"id": self.id, "resource": self.res.plural, "namespace": self.namespace,
                "path": self.path, "query": self.query, "events": self.events}


# --------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------

TLS_HANDSHAKE_TIMEOUT = 10     # seconds; a client that never finishes is cut


def server_ssl_context(cert, key, on_handshake_error=None):
    """An SSLContext serving cert/key (PEM files), TLS 1.2 or newer. If given,
    on_handshake_error(exc) is called (on the loop's thread) for each
    handshake that fails with an ssl.SSLError (asyncio itself reports those
    only in debug mode)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if on_handshake_error is not None:
        class ReportingSSLObject(ssl.SSLObject):
            def do_handshake(self):
                try:
                    return super().do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    raise
                except ssl.SSLError as e:
                    try:
                        on_handshake_error(e)
                    except Exception:      # a report must never break the handshake path
                        pass
                    raise
        ctx.sslobject_class = ReportingSSLObject
    return ctx


def tls_error_text(exc):
    """One line for a handshake error: openssl's reason, or verify message."""
    text = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) \
        or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())
    if text == "HTTP_REQUEST":
        text += " (a plain HTTP request to the TLS port)"
    return text


# --------------------------------------------------------------------------
# The fixture
# --------------------------------------------------------------------------

class Fixture:
    """All state; every method runs on the event loop's thread."""

    def __init__(self, host="127.0.0.1", port=0, token=None, history=DEFAULT_HISTORY,
                 bookmark_interval_ms=DEFAULT_BOOKMARK_MS, tls_cert=None, tls_key=None,
                 crds=True):
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        self.host = host
        self.port = port
        self.token = token
        self.crds = bool(crds)       # the custom resources' CRDs are installed
        self.tls_handshake_failures = 0
        self.ssl_context = None
        if tls_cert is not None:           # OSError/ssl.SSLError for a bad file
            self.ssl_context = server_ssl_context(tls_cert, tls_key,
                                                  self._on_handshake_error)
        self.store = Store(history)
        self.store.listeners.append(self._on_event)
        self.watchers = set()
        self.conns = set()
        self.tasks = set()
        self.server = None
        self.bookmark_ms = bookmark_interval_ms
        self.bookmark_changed = None
        self.bookmark_task = None
        self.chunk_bytes = 0
        self.requests = collections.deque(maxlen=LOG_CAP)
        self.request_seq = 0
        self.down_mode = None
        self.down_until = None       # loop time, or None = until /up
        self.down_timer = None
        self.closed = False

    # ---- lifecycle -------------------------------------------------------

    async def start(self):
        self.bookmark_changed = asyncio.Event()
        await self._listen()
        self.bookmark_task = asyncio.get_running_loop().create_task(self._bookmark_loop())

    async def _listen(self):
        tls = {}
        if self.ssl_context is not None:
            tls = {"ssl": self.ssl_context, "ssl_handshake_timeout": TLS_HANDSHAKE_TIMEOUT}
        self.server = await asyncio.start_server(
            self._on_connection, self.host, self.port, backlog=1024, reuse_address=True,
            limit=HEADER_CAP + 1024, **tls)
        self.port = self.server.sockets[0].getsockname()[1]

    def _on_handshake_error(self, exc):
        self.tls_handshake_failures += 1
        print("k8s_api.py: TLS handshake failed: %s" % tls_error_text(exc),
              file=sys.stderr, flush=True)

    async def close(self):
        self.closed = True
        if self.server is not None:
            self.server.close()
        if self.down_timer is not None:
            self.down_timer.cancel()
        if self.bookmark_task is not None:
            self.bookmark_task.cancel()
        for conn in list(self.conns):
            conn.abort()
        tasks = list(self.tasks) + ([self.bookmark_task] if self.bookmark_task else [])
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.server is not None:
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass

    def load_state(self, doc):
        if isinstance(doc, dict):
            objects = doc.get("objects") or doc.get("items") or []
            services = doc.get("services") or []
        elif isinstance(doc, list):
            objects, services = doc, []
        else:
            raise ValueError("state must be a list of objects or {objects, services}")
        for obj in objects:
            self._check_installed(resource_of(obj))
            self.store.put(obj)
        for spec in services:
            self.put_service(spec)

    # ---- store operations -----------------------------------------------

    def _on_event(self, ev):
        for w in list(self.watchers):
            w.offer(ev)

    def _check_installed(self, res):
        if res.custom and not self.crds:
            raise ValueError("%s: the CustomResourceDefinition %s is not installed "
                             "(POST /_fixture/crds {\"installed\": true})"
                             % (res.kind, res.qualified))

    def put_objects(self, objs):
        # validate everything first so a bad list changes nothing
        for obj in objs:
            self._check_installed(resource_of(obj))
        results = []
        for obj in objs:
            stored, changed = self.store.put(obj)
            results.append({"changed": changed, "object": stored})
        return {"resourceVersion": str(self.store.rv), "results": results}

    def delete_object(self, kind, ns, name):
        res = resource_by_name(kind)
        if res is None:
            raise ValueError("unknown kind %r" % kind)
        gone = self.store.delete(res.plural, ns, name)
        if gone is None:
            return None
        return {"resourceVersion": str(self.store.rv), "object": gone}

    def put_service(self, spec):
        pods, stale, service, endpoints, slice_obj = service_objects(spec, self.store)
        out_pods = [self.store.put(p)[0] for p in pods]
        ns = service["metadata"]["namespace"]
        for name in stale:
            self.store.delete("pods", ns, name)
        svc = self.store.put(service)[0]
        ep = self.store.put(endpoints)[0]
        sl = self.store.put(slice_obj)[0]
        return {"resourceVersion": str(self.store.rv), "service": svc, "endpoints": ep,
                "endpointSlice": sl, "pods": out_pods}

    def delete_service(self, ns, name):
        n = 0
        for (plural, sns, sname), obj in list(self.store.objects.items()):
            if plural == "endpointslices" and sns == ns and \
                    _dig(obj, "metadata", "labels", "kubernetes.io/service-name") == name:
                self.store.delete(plural, sns, sname)
                n += 1
        for plural in ("endpoints", "services"):
            if self.store.delete(plural, ns, name) is not None:
                n += 1
        return {"resourceVersion": str(self.store.rv), "deleted": n}

    def compact(self, upto=None, history_size=None):
        self.store.compact(upto, history_size)
        return self.state()

    def set_crds(self, installed):
        """Installs or removes the CRDs of the custom resources (dtabs). On
        removal, as when a CRD is deleted, every custom object is deleted
        (DELETED to watchers, a revision each), then the custom resources'
        watches end cleanly, and their paths answer 404 from then on."""
        if not isinstance(installed, bool):
            raise ValueError("installed must be true or false")
        deleted = ended = 0
        if self.crds and not installed:
            self.crds = False
            for key in sorted(k for k in self.store.objects if RESOURCES[k[0]].custom):
                self.store.delete(*key)
                deleted += 1
            for w in list(self.watchers):
                if w.res.custom:
                    self.watchers.discard(w)
                    w.queue.put_nowait(("end",))
                    ended += 1
        self.crds = installed
        return {"installed": self.crds, "deleted": deleted, "watchesEnded": ended}

    def state(self):
        return {"resourceVersion": str(self.store.rv),
                "compactedResourceVersion": str(self.store.compacted),
                "historySize": self.store.history_size,
                "historyEvents": len(self.store.history),
                "objects": len(self.store.objects),
                "watchers": len(self.watchers),
                "down": self._down_state(),
                "bookmarkIntervalMs": self.bookmark_ms,
                "watchChunkBytes": self.chunk_bytes,
                "token": self.token is not None,
                "crds": self.crds,
                "tls": self.ssl_context is not None,
                "tlsHandshakeFailures": self.tls_handshake_failures}

    def all_objects(self):
        items = sorted(self.store.objects.values(),
                       key=lambda o: (o["kind"], obj_key(o)))
        return {"resourceVersion": str(self.store.rv), "items": items}

    # ---- faults ---------------------------------------------------------

    def drop_watches(self, reset=False):
        n = 0
        for w in list(self.watchers):
            self.watchers.discard(w)
            w.conn.abort(reset)
            w.queue.put_nowait(("drop",))
            n += 1
        return {"dropped": n}

    def _down_state(self):
        if not self._is_down():
            return None
        left = None
        if self.down_until is not None:
            left = max(0.0, self.down_until - asyncio.get_running_loop().time())
        return {"mode": self.down_mode, "secondsLeft": left}

    def _is_down(self):
        if self.down_mode is None:
            return False
        if self.down_until is not None and asyncio.get_running_loop().time() >= self.down_until:
            if self.down_mode != "refuse":
                self.down_mode = None
                return False
        return True

    def set_down(self, seconds=None, mode="503"):
        if mode not in ("close", "503", "refuse"):
            raise ValueError("mode must be close, 503 or refuse")
        if seconds is not None:
            seconds = float(seconds)
            if seconds < 0:
                raise ValueError("seconds must be >= 0")
        if mode == "refuse" and seconds is None:
            raise ValueError("refuse needs seconds (the control API is down too)")
        loop = asyncio.get_running_loop()
        self._up_now()
        self.drop_watches()
        self.down_mode = mode
        self.down_until = None if seconds is None else loop.time() + seconds
        if seconds is not None:
            self.down_timer = loop.call_later(seconds, self._timer_up)
        return {"down": self._down_state()}

    def _refuse_now(self):
        """Closes the listener and cuts every connection (run after the
        answer to /down has been sent)."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.conns):
            conn.abort()

    def _timer_up(self):
        self.down_timer = None
        if self.down_mode == "refuse":
            self.down_mode = None
            self.down_until = None
            t = asyncio.get_running_loop().create_task(self._relisten())
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)
        else:
            self.down_mode = None
            self.down_until = None

    async def _relisten(self):
        deadline = time.monotonic() + 10
        while not self.closed:
            try:
                await self._listen()
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    print("k8s_api.py: cannot listen again on port %d: %s" % (self.port, e),
                          file=sys.stderr, flush=True)
                    return
                await asyncio.sleep(0.05)

    def _up_now(self):
        if self.down_timer is not None:
            self.down_timer.cancel()
            self.down_timer = None
        was_refusing = self.down_mode == "refuse" and self.server is None
        self.down_mode = None
        self.down_until = None
        if was_refusing:
            t = asyncio.get_running_loop().create_task(self._relisten())
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    def set_bookmark_interval(self, ms):
        ms = int(ms)
        if ms < 0:
            raise ValueError("intervalMs must be >= 0")
        self.bookmark_ms = ms
        self.bookmark_changed.set()
        return {"intervalMs": ms}

    def set_chunk_bytes(self, n):
        n = int(n)
        if n < 0:
            raise ValueError("maxBytes must be >= 0")
        self.chunk_bytes = n
        return {"maxBytes": n}

    def inject(self, event=None, raw=None, resource=None):
        if (event is None) == (raw is None):
            raise ValueError("give exactly one of event, raw")
        res = None
        if resource is not None:
            res = resource_by_name(resource)
            if res is None:
                raise ValueError("unknown resource %r" % resource)
        n = 0
        for w in list(self.watchers):
            if res is not None and w.res is not res:
                continue
            if event is not None:
                w.queue.put_nowait(("raw-event", event))
            else:
                w.queue.put_nowait(("raw-line", str(raw)))
            n += 1
        return {"watchers": n}

    def set_token(self, token):
        if token is not None and not isinstance(token, str):
            raise ValueError("token must be a string or null")
        self.token = token or None
        return {"token": self.token is not None}

    def request_log(self, since=0):
        return {"next": self.request_seq + 1,
                "requests": [r for r in self.requests if r["seq"] >= since]}

    def clear_requests(self):
        self.requests.clear()
        return {"next": self.request_seq + 1}

    def watcher_info(self):
        return {"watchers": len(self.watchers),
                "streams": [w.describe() for w in sorted(self.watchers, key=lambda w: w.id)]}

    async def _bookmark_loop(self):
        while True:
            self.bookmark_changed.clear()
            if self.bookmark_ms <= 0:
                await self.bookmark_changed.wait()
                continue
            try:
                await asyncio.wait_for(self.bookmark_changed.wait(), self.bookmark_ms / 1000)
                continue                     # the interval changed: start over
            except asyncio.TimeoutError:
                pass
            for w in list(self.watchers):
                if w.bookmarks:
                    w.bookmark(self.store.rv)

    # ---- connections ----------------------------------------------------

    async def _on_connection(self, reader, writer):
        conn = Conn(reader, writer)
        conn.task = asyncio.current_task()
        self.conns.add(conn)
        self.tasks.add(conn.task)
        try:
            while True:
                try:
                    req = await read_request(conn)
                except BadHttp as e:
                    body = (e.message + "\n").encode()
                    conn.write(response_head(e.status, [
                        ("Content-Type", "text/plain; charset=utf-8"),
                        ("Content-Length", str(len(body))), ("Connection", "close"),
                        ("Date", _date())]) + body)
                    await conn.drain()
                    break
                if req is None:
                    break
                keep = await self._dispatch(conn, req)
                if not keep or conn.closing:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, OSError):
            pass
        except Exception:
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        finally:
            self.conns.discard(conn)
            self.tasks.discard(conn.task)
            try:
                writer.close()
            except Exception:
                pass

    async def _send(self, conn, req, status, body, content_type="application/json",
                    extra=(), close=False, api=True):
        headers = []
        if api:
            headers.append(("Audit-Id", str(uuid.uuid4())))
            headers.append(("Cache-Control", "no-cache, private"))
        if content_type:
            headers.append(("Content-Type", content_type))
        headers.append(("Date", _date()))
        headers.extend(extra)
        if (body and len(body) > GZIP_THRESHOLD and api and req.method == "GET"
                and "gzip" in [t.split(";")[0].strip() for t in req.tokens("accept-encoding")]):
            body = gzip.compress(body, 5)
            headers.append(("Content-Encoding", "gzip"))
            headers.append(("Vary", "Accept-Encoding"))
        headers.append(("Content-Length", str(len(body))))
        keep = req.keep_alive and not close
        if not keep:
            headers.append(("Connection", "close"))
        elif req.minor == 0:
            headers.append(("Connection", "keep-alive"))
        if req.log is not None:
            req.log["status"] = status
        conn.write(response_head(status, headers) + (b"" if req.method == "HEAD" else body))
        await conn.drain()
        return keep

    async def _send_json(self, conn, req, status, doc, **kw):
        pretty = False
        try:
            pretty = parse_bool(req.params, "pretty")
        except ApiError:
            pass
        return await self._send(conn, req, status, to_json(doc, pretty), **kw)

    async def _dispatch(self, conn, req):
        if req.path == "/_fixture" or req.path.startswith("/_fixture/"):
            return await self._control(conn, req)
        self.request_seq += 1
        req.log = {"seq": self.request_seq, "time": time.time(), "method": req.method,
                   "path": req.path, "query": req.query, "params": dict(req.params),
                   "watch": False, "status": None,
                   "authorization": req.header("authorization"),
                   "userAgent": req.header("user-agent")}
        self.requests.append(req.log)
        if self._is_down():
            if self.down_mode == "503":
                return await self._send_json(conn, req, 503, status_object(
                    503, "ServiceUnavailable",
                    "the server is currently unable to handle the request (fixture: down)"))
            return False                 # close: no answer at all
        try:
            return await self._api(conn, req)
        except ApiError as e:
            return await self._send_json(conn, req, e.status["code"], e.status)

    # ---- API ------------------------------------------------------------

    async def _api(self, conn, req):
        path = req.path
        if path in ("/healthz", "/livez", "/readyz"):
            return await self._send(conn, req, 200, b"ok", "text/plain; charset=utf-8")
        if path == "/version":
            return await self._send(conn, req, 200, (json.dumps(VERSION_INFO, indent=2) +
                                                     "\n").encode())
        if self.token is not None:
            auth = req.header("authorization", "")
            scheme, _, cred = auth.partition(" ")
            if scheme.lower() != "bearer" or cred.strip() != self.token:
                return await self._send_json(conn, req, 401, UNAUTHORIZED)
        segs = [s for s in path.split("/") if s != ""]
        if len(segs) >= 2 and segs[0] == "api" and segs[1] == "v1":
            group, rest = "", segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis" and API_GROUPS.get(segs[1]) == segs[2]:
            group, rest = segs[1], segs[3:]
        elif segs and segs[0] in ("api", "apis"):
            raise ApiError(NO_SUCH_RESOURCE)
        else:
            return await self._send(conn, req, 404, b"404 page not found\n",
                                    "text/plain; charset=utf-8", extra=[
                                        ("X-Content-Type-Options", "nosniff")])
        watch_path = False
        if rest[:1] == ["watch"]:
            watch_path, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            raise ApiError(NO_SUCH_RESOURCE)
        res = RESOURCES.get(rest[0])
        if res is None or res.group != group or (res.custom and not self.crds):
            raise ApiError(NO_SUCH_RESOURCE)
        name = rest[1] if len(rest) == 2 else None
        if name is not None and namespace is None:
            raise ApiError(NO_SUCH_RESOURCE)
        if req.method not in ("GET", "HEAD"):
            if not res.custom or watch_path:
                raise ApiError(METHOD_NOT_ALLOWED)
            if req.method == "POST" and name is None:
                status, doc = self.api_create(res, namespace, req)
            elif req.method == "PUT" and name is not None:
                status, doc = self.api_update(res, namespace, name, req)
            elif req.method == "DELETE" and name is not None:
                status, doc = self.api_delete(res, namespace, name, req)
            else:                         # PATCH, deletecollection, ...: not served
                raise ApiError(METHOD_NOT_ALLOWED)
            return await self._send_json(conn, req, status, doc)

        if watch_path or (name is None and req.method == "GET" and
                          parse_bool(req.params, "watch")):
            req.log["watch"] = True
            return await self._watch(conn, req, res, namespace, name)
        if name is not None:
            obj = self.store.get(res.plural, namespace, name)
            if obj is None:
                raise ApiError(not_found_status(res, name))
            return await self._send_json(conn, req, 200, obj)
        return await self._list(conn, req, res, namespace)

    # ---- client writes (custom resources only) -------------------------

    @staticmethod
    def _write_body(req, what):
        """The request body as a JSON object (ApiError as the real decoder
        would answer). what: "object" or "options"."""
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if ctype not in ("", "application/json", "application/yaml"):
            accepted = ("application/json, application/yaml" if what == "object" else
                        "application/json, application/yaml, application/vnd.kubernetes.protobuf")
            raise ApiError(status_object(
                415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                "accepted media types include: " + accepted))
        try:
            doc = json.loads(req.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            if what == "object":
                raise bad_request("couldn't get version/kind; json parse error: %s" % e)
            raise bad_request("json parse error: %s" % e)
        if not isinstance(doc, dict):
            if what == "object":
                raise bad_request(
                    "couldn't get version/kind; json parse error: json: cannot unmarshal %s "
                    "into Go value of type struct { APIVersion string "
                    r'"json:\"apiVersion,omitempty\""; Kind string "json:\"kind,omitempty\"" }'
                    % _json_type(doc))
            raise bad_request("json: cannot unmarshal %s into Go value of type "
                              "v1.DeleteOptions" % _json_type(doc))
        return doc

    @staticmethod
    def _no_dry_run(req):
        if "dryRun" in req.params:
            raise bad_request("dryRun is not supported by the fixture")

    def _decode_custom(self, req, res):
        """(body, metadata) of a create/update body; 400 for a wrong
        apiVersion, as the real handler's AcceptsGroupVersion check."""
        self._no_dry_run(req)
        body = self._write_body(req, "object")
        api_version = body.get("apiVersion")
        if api_version not in (None, "", res.api_version):
            raise bad_request("the API version in the data (%s) does not match the expected API "
                              "version (%s)" % (api_version, res.api_version))
        meta = body.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata: must be a JSON object, got %s" % _json_type(meta))
        body = dict(body, metadata=dict(meta), apiVersion=res.api_version)
        body.setdefault("kind", res.kind)
        if body["kind"] in (None, ""):
            body["kind"] = res.kind
        return body, body["metadata"]

    @staticmethod
    def _meta_str(meta, key):
        value = meta.get(key)
        return value if isinstance(value, str) else ""

    def _validate_custom(self, res, obj, namespace):
        """customResourceValidator.Validate (type meta, then ObjectMeta with
        NameIsDNSSubdomain): a list of field errors."""
        errs = []
        if obj.get("kind") != res.kind:
            errs.append(field_invalid("kind", str(obj.get("kind")), "must be " + res.kind))
        if errs:
            return errs
        meta = obj["metadata"]
        name = self._meta_str(meta, "name")
        gen_name = self._meta_str(meta, "generateName")
        if gen_name:
            for msg in dns_subdomain_errors(gen_name, prefix=True):
                errs.append(field_invalid("metadata.generateName", gen_name, msg))
        if not name:
            errs.append(field_required("metadata.name", "name or generateName is required"))
        else:
            for msg in dns_subdomain_errors(name):
                errs.append(field_invalid("metadata.name", name, msg))
        if not namespace:
            errs.append(field_required("metadata.namespace"))
        else:
            for msg in dns_label_errors(namespace):
                errs.append(field_invalid("metadata.namespace", namespace, msg))
        return errs

    def _etcd_key(self, res, namespace, name):
        return "/registry/%s/%s/%s/%s" % (res.group, res.plural, namespace, name)

    def api_create(self, res, namespace, req):
        """POST .../namespaces/<ns>/<custom resource>: (status, doc), or ApiError."""
        obj, meta = self._decode_custom(req, res)
        body_ns = self._meta_str(meta, "namespace")
        if body_ns and namespace and body_ns != namespace:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        # WipeObjectMetaSystemFields, then the request's namespace
        for key in ("creationTimestamp", "uid", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        if namespace:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not self._meta_str(meta, "name") and self._meta_str(meta, "generateName"):
            meta["name"] = meta["generateName"] + "".join(
                RAND_ALPHABET[b % len(RAND_ALPHABET)] for b in os.urandom(5))
        name = self._meta_str(meta, "name")
        errs = self._validate_custom(res, obj, namespace)
        if errs:
            raise ApiError(invalid_status(res.group_kind, res.group, res.kind, name, errs))
        rv_text = meta.get("resourceVersion")
        if isinstance(rv_text, str) and re.fullmatch(r"[0-9]{1,20}", rv_text) \
                and int(rv_text) != 0:
            # etcd3 store: storage.ErrResourceVersionSetOnCreate, a plain error: 500
            raise ApiError(status_object(
                500, None, "resourceVersion should not be set on objects to be created"))
        if self.store.get(res.plural, namespace, name) is not None:
            raise ApiError(already_exists_status(res, name))
        stored, _ = self.store.put(obj)
        return 201, stored

    def api_update(self, res, namespace, name, req):
        """PUT .../namespaces/<ns>/<custom resource>/<name>."""
        obj, meta = self._decode_custom(req, res)
        body_name = self._meta_str(meta, "name")
        body_ns = self._meta_str(meta, "namespace")
        if not body_name:
            raise bad_request("the name of the object (%s based on URL) was undeterminable: "
                              "name must be provided" % name)
        if body_name != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL "
                              "(%s)" % (body_name, name))
        if body_ns and body_ns != namespace:
            raise bad_request("the namespace of the object (%s) does not match the namespace "
                              "on the request (%s)" % (body_ns, namespace))
        meta["namespace"] = namespace
        old = self.store.get(res.plural, namespace, name)
        if old is None:                   # no create on update for custom resources
            raise ApiError(not_found_status(res, name))
        uid = self._meta_str(meta, "uid")
        if uid and uid != old["metadata"]["uid"]:
            # the storage precondition from the body's uid
            raise ApiError(conflict_status(
                res.qualified, res.group, res.plural, name,
                "StorageError: invalid object, Code: 4, Key: %s, ResourceVersion: 0, "
                "AdditionalErrorMsg: Precondition failed: UID in precondition: %s, UID in "
                "object meta: %s" % (self._etcd_key(res, namespace, name), uid,
                                     old["metadata"]["uid"])))
        rv = meta.get("resourceVersion")
        rv_text = rv if isinstance(rv, str) else ""
        if rv_text and not re.fullmatch(r"[0-9]{1,20}", rv_text):
            # APIObjectVersioner's strconv error, a plain error: 500
            raise ApiError(status_object(
                500, None, "strconv.ParseUint: parsing %s: invalid syntax" % go_quote(rv_text)))
        if not rv_text or int(rv_text) == 0:
            raise ApiError(invalid_status(
                res.qualified, res.group, res.plural, name,
                [field_invalid("metadata.resourceVersion", GoText("0x0"),
                               "must be specified for an update")]))
        if int(rv_text) != int(old["metadata"]["resourceVersion"]):
            raise ApiError(conflict_status(res.qualified, res.group, res.plural, name,
                                           OPTIMISTIC_LOCK_MSG))
        errs = self._validate_custom(res, obj, namespace)
        if errs:
            raise ApiError(invalid_status(res.group_kind, res.group, res.kind, name, errs))
        stored, _ = self.store.put(obj)   # identical: the stored object, no event
        return 200, stored

    def api_delete(self, res, namespace, name, req):
        """DELETE .../namespaces/<ns>/<custom resource>/<name>."""
        self._no_dry_run(req)
        pre_uid = pre_rv = None
        if req.body.strip():
            opts = self._write_body(req, "options")
            if opts.get("kind") not in (None, "", "DeleteOptions"):
                raise bad_request("decoded object cannot be converted to DeleteOptions")
            pre = opts.get("preconditions")
            if pre is not None:
                if not isinstance(pre, dict):
                    raise bad_request("json: cannot unmarshal %s into Go struct field "
                                      "DeleteOptions.preconditions of type v1.Preconditions"
                                      % _json_type(pre))
                pre_uid, pre_rv = pre.get("uid"), pre.get("resourceVersion")
                for key, value in (("uid", pre_uid), ("resourceVersion", pre_rv)):
                    if value is not None and not isinstance(value, str):
                        raise bad_request(
                            "json: cannot unmarshal %s into Go struct field Preconditions."
                            "preconditions.%s of type string" % (_json_type(value), key))
        old = self.store.get(res.plural, namespace, name)
        if old is None:
            raise ApiError(not_found_status(res, name))
        om = old["metadata"]
        # rest.BeforeDelete's early precondition check (Group/Kind, not resource)
        if pre_uid is not None and pre_uid != om["uid"]:
            raise ApiError(conflict_status(
                res.group_kind, res.group, res.kind, name,
                "the UID in the precondition (%s) does not match the UID in record (%s). The "
                "object might have been deleted and then recreated" % (pre_uid, om["uid"])))
        if pre_rv is not None and pre_rv != om["resourceVersion"]:
            raise ApiError(conflict_status(
                res.group_kind, res.group, res.kind, name,
                "the ResourceVersion in the precondition (%s) does not match the "
                "ResourceVersion in record (%s). The object might have been modified"
                % (pre_rv, om["resourceVersion"])))
        self.store.delete(res.plural, namespace, name)
        # the generic store's finalizeDelete (ReturnDeletedObject is false for
        # custom resources): a Success Status, details.kind being the resource
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": _details(name, res.group, res.plural, uid=om["uid"])}

    async def _list(self, conn, req, res, namespace):
        p = req.params
        labels = parse_label_selector(p.get("labelSelector", ""))
        fields = parse_field_selector(res, p.get("fieldSelector", ""))
        rv_text = p.get("resourceVersion", "")
        match = p.get("resourceVersionMatch", "")
        cont = p.get("continue", "")
        limit = 0
        if p.get("limit"):
            limit = parse_rv(p["limit"], "limit")
        if match not in ("", "Exact", "NotOlderThan"):
            raise bad_request('resourceVersionMatch: Unsupported value: "%s"' % match)
        if match and rv_text == "":
            raise bad_request("resourceVersionMatch is forbidden unless resourceVersion "
                              "is provided")
        if match == "Exact" and rv_text == "0":
            raise bad_request('resourceVersionMatch "Exact" is forbidden for '
                              'resourceVersion "0"')
        if cont and rv_text not in ("",):
            raise bad_request("specifying resource version is not allowed when using continue")
        if rv_text not in ("", "0"):
            parse_rv(rv_text)
        start = ""
        snap_rv = None
        if cont:
            try:
                raw = base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4))
                tok = json.loads(raw)
                if tok.get("v") != "meta.k8s.io/v1":
                    raise ValueError("version")
                snap_rv = int(tok["rv"])
                start = str(tok["start"])
            except (ValueError, KeyError, TypeError, binascii.Error, AttributeError):
                raise bad_request("continue key is not valid: the continue token is malformed")
            if snap_rv <= 0:
                raise bad_request("continue key is not valid: incorrect encoded start "
                                  "resourceVersion (version meta.k8s.io/v1)")
        elif match == "Exact":
            snap_rv = int(rv_text)
        if rv_text == "0":
            limit = 0                     # served from the watch cache: no paging
        objs = self.store.snapshot(res.plural, snap_rv)
        if objs is None:
            if cont:
                raise ApiError(status_object(
                    410, "Expired", "The provided continue parameter is too old to display a "
                    "consistent list result. You can start a new list without the continue "
                    "parameter, or use the continue value from the response."))
            raise ApiError(expired_status(snap_rv, self.store.compacted))
        list_rv = snap_rv if snap_rv is not None else self.store.rv
        items = []
        for (plural, ns, name), obj in objs.items():
            if namespace is not None and ns != namespace:
                continue
            if not labels_match(labels, obj) or not fields_match(fields, obj):
                continue
            key = "%s/%s" % (ns, name)
            if start and key < start:
                continue
            items.append((key, obj))
        items.sort(key=lambda kv: kv[0])
        meta = {"resourceVersion": str(list_rv)}
        if limit and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            token = json.dumps({"v": "meta.k8s.io/v1", "rv": list_rv,
                                "start": items[-1][0] + "\x00"}, separators=(",", ":"))
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
            meta["remainingItemCount"] = rest
        doc = {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta,
               "items": [list_item(o) for _, o in items]}
        if res.custom:
            # an UnstructuredList: metadata.continue is always there
            meta.setdefault("continue", "")
            doc = sort_keys(doc)
        return await self._send_json(conn, req, 200, doc)

    async def _watch(self, conn, req, res, namespace, name):
        p = req.params
        labels = parse_label_selector(p.get("labelSelector", ""))
        fields = parse_field_selector(res, p.get("fieldSelector", ""))
        bookmarks = parse_bool(p, "allowWatchBookmarks")
        timeout = None
        if p.get("timeoutSeconds"):
            timeout = parse_rv(p["timeoutSeconds"], "timeoutSeconds") or None
        rv_text = p.get("resourceVersion", "")
        match = p.get("resourceVersionMatch", "")
        send_initial = None
        if "sendInitialEvents" in p:
            send_initial = parse_bool(p, "sendInitialEvents")
            if send_initial and (match != "NotOlderThan" or not bookmarks):
                raise bad_request("sendInitialEvents requires resourceVersionMatch="
                                  "NotOlderThan and allowWatchBookmarks=true")
        if match and send_initial is None:
            raise bad_request("resourceVersionMatch is forbidden for watch")
        rv = None
        if rv_text not in ("", "0"):
            rv = parse_rv(rv_text)

        store = self.store
        initial = []
        expired = None
        end_bookmark = False
        if send_initial or (send_initial is None and rv is None):
            start_rv = store.rv
            end_bookmark = bool(send_initial)
            w = Watcher(conn, res, namespace, name, labels, fields, bookmarks, start_rv,
                        req.path, req.query)
            for key, obj in sorted(((obj_key(o), o) for o in
                                    store.snapshot(res.plural).values()), key=lambda kv: kv[0]):
                if w.matches(obj):
                    initial.append(("event", "ADDED", obj, 0))
        else:
            if rv is None:                # sendInitialEvents=false, no rv: from now
                rv = store.rv
            w = Watcher(conn, res, namespace, name, labels, fields, bookmarks,
                        max(rv, store.rv), req.path, req.query)
            w.last_rv = rv
            events = store.events_since(rv, res.plural)
            if events is None:
                expired = expired_status(rv, store.compacted)
            else:
                for ev in events:
                    conv = w.convert(ev)
                    if conv is not None:
                        initial.append(("event",) + conv + (ev.rv,))

        # register before the first await, so no change can slip between the
        # snapshot above and the live events
        if expired is None:
            for item in initial:
                w.queue.put_nowait(item)
            if end_bookmark:
                w.bookmark(store.rv, {"k8s.io/initial-events-end": "true"})
            self.watchers.add(w)
        conn.watcher = w
        chunked = req.minor >= 1
        keep = req.keep_alive and chunked
        headers = [("Audit-Id", str(uuid.uuid4())), ("Cache-Control", "no-cache, private"),
                   ("Content-Type", "application/json"), ("Date", _date())]
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        if not keep:
            headers.append(("Connection", "close"))
        req.log["status"] = 200
        loop = asyncio.get_running_loop()
        monitor = None
        timer = None
        try:
            conn.write(response_head(200, headers))
            await conn.drain()
            if expired is not None:
                await self._write_line(conn, chunked, to_json({"type": "ERROR",
                                                              "object": expired}))
                if chunked:
                    conn.write(b"0\r\n\r\n")
                    await conn.drain()
                return keep
            monitor = loop.create_task(self._watch_client(conn, w))
            if timeout:
                timer = loop.call_later(timeout, w.queue.put_nowait, ("timeout",))
            while True:
                item = await w.queue.get()
                kind = item[0]
                if kind == "event":
                    _, type_, obj, ev_rv = item
                    if ev_rv:
                        w.last_rv = max(w.last_rv, ev_rv)
                    data = to_json({"type": type_, "object": obj})
                elif kind == "raw-event":
                    data = to_json(item[1])
                elif kind == "raw-line":
                    data = item[1].encode("utf-8") + b"\n"
                elif kind in ("timeout", "end"):
                    if chunked:
                        conn.write(b"0\r\n\r\n")
                        await conn.drain()
                    return keep
                else:                     # eof, drop
                    return False
                w.events += 1
                await self._write_line(conn, chunked, data)
        finally:
            self.watchers.discard(w)
            conn.watcher = None
            if timer is not None:
                timer.cancel()
            if monitor is not None:
                monitor.cancel()
                try:
                    await monitor
                except (asyncio.CancelledError, Exception):
                    pass

    async def _write_line(self, conn, chunked, data):
        if not chunked:
            conn.write(data)
        else:
            step = self.chunk_bytes or len(data)
            out = bytearray()
            for i in range(0, len(data), step):
                piece = data[i:i + step]
                out += b"%x\r\n" % len(piece) + piece + b"\r\n"
            conn.write(bytes(out))
        await conn.drain()

    async def _watch_client(self, conn, w):
        """Reads while a watch streams: EOF (or an error) ends the watch; any
        bytes are kept for the next request on the connection."""
        try:
            while True:
                data = await conn.reader.read(65536)
                if not data:
                    break
                conn.buf += data
                if len(conn.buf) > HEADER_CAP * 4:
                    break
        except (ConnectionError, OSError):
            pass
        w.queue.put_nowait(("eof",))

    # ---- control API ----------------------------------------------------

    async def _control(self, conn, req):
        after = None
        try:
            body = {}
            if req.body.strip():
                try:
                    body = json.loads(req.body)
                except ValueError as e:
                    raise ValueError("body is not JSON: %s" % e)
            route = req.path[len("/_fixture/"):].strip("/")
            parts = route.split("/") if route else []
            m = req.method
            status, doc = 200, None
            head = parts[0] if parts else ""

            def want(*methods):
                if m not in methods:
                    raise _MethodError()

            if head == "state" and len(parts) == 1:
                want("GET")
                doc = self.state()
            elif head == "objects" and len(parts) == 1:
                want("GET", "PUT", "POST")
                if m == "GET":
                    doc = self.all_objects()
                else:
                    objs = body.get("items") if isinstance(body, dict) and "items" in body \
                        and "kind" not in body else body
                    if not isinstance(objs, list):
                        objs = [objs]
                    doc = self.put_objects(objs)
            elif head == "objects" and len(parts) == 4:
                want("DELETE")
                doc = self.delete_object(parts[1], parts[2], parts[3])
                if doc is None:
                    status, doc = 404, {"error": "no %s %s/%s" % (parts[1], parts[2], parts[3])}
            elif head == "service" and len(parts) == 1:
                want("PUT", "POST")
                doc = self.put_service(body)
            elif head == "service" and len(parts) == 3:
                want("DELETE")
                doc = self.delete_service(parts[1], parts[2])
            elif head == "drop-watches" and len(parts) == 1:
                want("POST")
                doc = self.drop_watches(bool(_opt(body, "reset", False)))
            elif head == "compact" and len(parts) == 1:
                want("POST")
                upto = _opt(body, "resourceVersion", None)
                doc = self.compact(None if upto is None else int(upto),
                                   _opt(body, "historySize", None))
            elif head == "down" and len(parts) == 1:
                want("POST")
                mode = str(_opt(body, "mode", "503"))
                doc = self.set_down(_opt(body, "seconds", None), mode)
                if mode == "refuse":
                    after = self._refuse_now
            elif head == "up" and len(parts) == 1:
                want("POST")
                self._up_now()
                doc = {"down": None}
            elif head == "bookmarks" and len(parts) == 1:
                want("POST", "PUT")
                doc = self.set_bookmark_interval(_opt(body, "intervalMs", DEFAULT_BOOKMARK_MS))
            elif head == "watch-chunks" and len(parts) == 1:
                want("POST", "PUT")
                doc = self.set_chunk_bytes(_opt(body, "maxBytes", 0))
            elif head == "inject" and len(parts) == 1:
                want("POST")
                doc = self.inject(_opt(body, "event", None), _opt(body, "raw", None),
                                  _opt(body, "resource", None))
            elif head == "token" and len(parts) == 1:
                want("POST", "PUT")
                doc = self.set_token(_opt(body, "token", None))
            elif head == "crds" and len(parts) == 1:
                want("GET", "POST", "PUT")
                if m == "GET":
                    doc = {"installed": self.crds}
                else:
                    doc = self.set_crds(_opt(body, "installed", None))
            elif head == "requests" and len(parts) == 1:
                want("GET", "DELETE")
                if m == "GET":
                    doc = self.request_log(int(req.params.get("since", "0") or 0))
                else:
                    doc = self.clear_requests()
            elif head == "watchers" and len(parts) == 1:
                want("GET")
                doc = self.watcher_info()
            else:
                status, doc = 404, {"error": "no control route %s" % req.path}
        except _MethodError:
            status, doc = 405, {"error": "method %s not allowed on %s" % (req.method, req.path)}
        except (ValueError, TypeError, KeyError) as e:
            status, doc = 400, {"error": str(e) or type(e).__name__}
        keep = await self._send(conn, req, status, to_json(doc), api=False,
                                close=after is not None)
        if after is not None:
            after()
            return False
        return keep


class _MethodError(Exception):
    pass


def _json_type(value):
    """How Go's encoding/json names a JSON value's type in its errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _opt(body, key, default):
    if body is None:
        return default
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body.get(key, default)


# --------------------------------------------------------------------------
# In-process use
# --------------------------------------------------------------------------

class K8sApiServer:
    """The fixture on its own event loop in a daemon thread.

        with K8sApiServer(token="t") as api:
            api.put_service({"namespace": "ns", "name": "web", ...})
            urlopen(api.url("/api/v1/namespaces/ns/endpoints/web"))

    With tls_cert and tls_key (PEM files, both or neither) it serves HTTPS
    and url() gives https:// URLs; `tls` tells which.

    Every control operation is a method here too (run on the loop thread,
    result returned): put_objects, put_object, delete_object, put_service,
    delete_service, drop_watches, compact, set_down, up,
    set_bookmark_interval, set_chunk_bytes, inject, set_token, set_crds,
    request_log, clear_requests, watcher_info, state, all_objects.

    crds=False starts without the custom resources' CRDs (their paths 404
    until set_crds(True))."""

    def __init__(self, host="127.0.0.1", port=0, token=None, history=DEFAULT_HISTORY,
                 bookmark_interval_ms=DEFAULT_BOOKMARK_MS, state=None, tls_cert=None,
                 tls_key=None, crds=True):
        self.fixture = Fixture(host, port, token, history, bookmark_interval_ms,
                               tls_cert, tls_key, crds)
        self.initial_state = state
        self.loop = None
        self.thread = None
        self._stopped = None

    @property
    def port(self):
        return self.fixture.port

    @property
    def host(self):
        return self.fixture.host

    @property
    def tls(self):
        return self.fixture.ssl_context is not None

    def url(self, path="/"):
        return "%s://%s:%d%s" % ("https" if self.tls else "http", self.host, self.port, path)

    def start(self, timeout=10):
        ready = threading.Event()
        error = []

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self._stopped = asyncio.Event()
            try:
                if self.initial_state is not None:
                    self.fixture.load_state(self.initial_state)
                self.loop.run_until_complete(self.fixture.start())
            except BaseException as e:     # noqa: B036 - reported to start()
                error.append(e)
                ready.set()
                self.loop.close()
                return
            ready.set()
            try:
                self.loop.run_until_complete(self._stopped.wait())
                self.loop.run_until_complete(self.fixture.close())
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=run, name="k8s-api-fixture", daemon=True)
        self.thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("k8s api fixture did not start within %s s" % timeout)
        if error:
            raise error[0]
        return self

    def stop(self, timeout=10):
        if self.thread is None or not self.thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self._stopped.set)
        self.thread.join(timeout)

    def __enter__(self):
        if self.thread is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def call(self, fn, *args, timeout=10):
        """Runs fn(*args) on the loop's thread; returns its result."""
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def put_objects(self, objs):
        return self.call(self.fixture.put_objects, list(objs))

    def put_object(self, obj):
        return self.call(self.fixture.put_objects, [obj])["results"][0]

    def delete_object(self, kind, ns, name):
        return self.call(self.fixture.delete_object, kind, ns, name)

    def put_service(self, spec):
        return self.call(self.fixture.put_service, spec)

    def delete_service(self, ns, name):
        return self.call(self.fixture.delete_service, ns, name)

    def drop_watches(self, reset=False):
        return self.call(self.fixture.drop_watches, reset)

    def compact(self, resource_version=None, history_size=None):
        return self.call(self.fixture.compact, resource_version, history_size)

    def set_down(self, seconds=None, mode="503"):
        def go():
            out = self.fixture.set_down(seconds, mode)
            if mode == "refuse":
                self.fixture._refuse_now()
            return out
        return self.call(go)

    def up(self):
        return self.call(self.fixture._up_now)

    def set_bookmark_interval(self, ms):
        return self.call(self.fixture.set_bookmark_interval, ms)

    def set_chunk_bytes(self, n):
        return self.call(self.fixture.set_chunk_bytes, n)

    def inject(self, event=None, raw=None, resource=None):
        return self.call(self.fixture.inject, event, raw, resource)

    def set_token(self, token):
        return self.call(self.fixture.set_token, token)

    def set_crds(self, installed):
        return self.call(self.fixture.set_crds, bool(installed))

    def request_log(self, since=0):
        return self.call(self.fixture.request_log, since)

    def clear_requests(self):
        return self.call(self.fixture.clear_requests)

    def watcher_info(self):
        return self.call(self.fixture.watcher_info)

    def state(self):
        return self.call(self.fixture.state)

    def all_objects(self):
        return self.call(self.fixture.all_objects)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


async def serve(fixture, args, state_doc):
    if state_doc is not None:
        fixture.load_state(state_doc)
    await fixture.start()
    if args.port_file:
        write_port_file(args.port_file, fixture.port)
    print("listening on %s:%d" % (args.host, fixture.port), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await fixture.close()


def main(argv=None):
    p = argparse.ArgumentParser(description="Kubernetes API server fixture.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    p.add_argument("--port-file", help="write the bound port here (atomically)")
    p.add_argument("--state", help="JSON file of initial objects")
    p.add_argument("--token", help="require Authorization: Bearer TOKEN on API paths")
    p.add_argument("--history", type=int, default=DEFAULT_HISTORY,
                   help="watch history size in events (default %d)" % DEFAULT_HISTORY)
    p.add_argument("--bookmark-interval-ms", type=int, default=DEFAULT_BOOKMARK_MS,
                   help="bookmark interval (0 = none; default %d)" % DEFAULT_BOOKMARK_MS)
    p.add_argument("--tls-cert", metavar="FILE",
                   help="serve HTTPS with this PEM certificate chain (needs --tls-key)")
    p.add_argument("--tls-key", metavar="FILE", help="the PEM key of --tls-cert")
    p.add_argument("--no-crds", action="store_true",
                   help="start without the custom resources' CRDs (dtabs.l5d.io answers 404 "
                        "until POST /_fixture/crds {\"installed\": true})")
    args = p.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    state_doc = None
    if args.state:
        try:
            with open(args.state, encoding="utf-8") as f:
                state_doc = json.load(f)
        except (OSError, ValueError) as e:
            print("k8s_api.py: cannot read --state %s: %s" % (args.state, e), file=sys.stderr)
            return 2
    try:
        fixture = Fixture(args.host, args.port, args.token, args.history,
                          args.bookmark_interval_ms, args.tls_cert, args.tls_key,
                          crds=not args.no_crds)
    except (OSError, ValueError) as e:      # ssl.SSLError is an OSError
        print("k8s_api.py: cannot load --tls-cert %s / --tls-key %s: %s"
              % (args.tls_cert, args.tls_key, e), file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(fixture, args, state_doc))
    except OSError as e:
        print("k8s_api.py: cannot listen on %s:%d: %s" % (args.host, args.port, e),
              file=sys.stderr)
        return 1
    except ValueError as e:
        print("k8s_api.py: bad state: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
