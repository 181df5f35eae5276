#!/usr/bin/env python3
"""Throwaway TLS certificates for Switchyard's tests, made with openssl(1).

Usage: certs.py [--ip IP ...] [--dns NAME ...] [--other-ca] DIR

Writes into DIR a self-signed CA (ca.crt, ca.key) and a server certificate
signed by it (server.crt, server.key): EC P-256 keys, SHA-256, valid 1 day,
the server's subjectAltName covering every --ip (default 127.0.0.1) and
--dns (default localhost), basicConstraints CA:FALSE, extendedKeyUsage
serverAuth. With --other-ca it writes only a second, unrelated CA
(other-ca.crt, other-ca.key), for checking that a client refuses a server
certificate its CA did not sign. Prints the paths as one JSON object.

Importable too:
    make_ca_and_server_cert(directory, ips=("127.0.0.1",), dns=("localhost",))
        -> {"ca": ca.crt, "cert": server.crt, "key": server.key}
    make_other_ca(directory) -> {"ca": other-ca.crt, "key": other-ca.key}
    make_ca(directory, name="ca", common_name=...) -> {"ca", "key"}
    make_server_cert(directory, ca, ips, dns, name="server") -> {"ca", "cert", "key"}
Each raises CertError (with openssl's stderr) if openssl fails. Python 3
standard library only; needs the openssl command (OpenSSL 3; $OPENSSL, else
the one on PATH, else /usr/bin/openssl).
"""

import argparse
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys

DAYS = 1

# Our own minimal config, so the system openssl.cnf's x509 extensions (and
# any local changes to it) never add to or clash with the ones below.
_REQ_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = %(cn)s
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

_SERVER_EXTENSIONS = """\
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = %(san)s
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


class CertError(Exception):
    pass


def openssl_path():
    return (os.environ.get("OPENSSL") or shutil.which("openssl") or "/usr/bin/openssl")


def _run(*args):
    cmd = [openssl_path()] + list(args)
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CertError("cannot run %s: %s" % (cmd[0], e))
    if r.returncode != 0:
        raise CertError("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                                r.stderr.decode("utf-8", "replace").strip()))


def _write(path, text):
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


def _cn(text):
    # the config's CN value: no characters that openssl's config syntax or
    # the DN parser would take for anything but text
    return "".join(ch for ch in text if ch.isalnum() or ch in "-._ ") or "switchyard-test"


def make_ca(directory, name="ca", common_name="switchyard-test-ca"):
    """A self-signed CA: NAME.crt and NAME.key in directory."""
    os.makedirs(directory, exist_ok=True)
    crt = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    cnf = os.path.join(directory, name + ".cnf")
    _write(cnf, _REQ_CONFIG % {"cn": _cn(common_name)})
    try:
        _run("req", "-x509", "-config", cnf, "-extensions", "v3_ca",
             "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", crt, "-days", str(DAYS), "-sha256",
             "-set_serial", "0x" + secrets.token_hex(16))
    finally:
        _remove(cnf)
    os.chmod(key, 0o600)
    return {"ca": crt, "key": key}


def make_server_cert(directory, ca, ips=("127.0.0.1",), dns=("localhost",), name="server"):
    """NAME.crt and NAME.key in directory, signed by ca ({"ca", "key"} as
    make_ca returns). Returns {"ca", "cert", "key"}."""
    ips = [str(ipaddress.ip_address(ip)) for ip in ips]     # ValueError if not an IP
    dns = [str(d) for d in dns]
    if not ips and not dns:
        raise ValueError("a server certificate needs at least one IP or DNS name")
    for d in dns:
        if not d or any(ch in d for ch in ",\n\r =:"):
            raise ValueError("bad DNS name %r" % d)
    os.makedirs(directory, exist_ok=True)
    crt = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    cnf = os.path.join(directory, name + ".cnf")
    ext = os.path.join(directory, name + ".ext")
    san = ",".join(["IP:" + ip for ip in ips] + ["DNS:" + d for d in dns])
    _write(cnf, _REQ_CONFIG % {"cn": _cn(dns[0] if dns else ips[0])})
    _write(ext, _SERVER_EXTENSIONS % {"san": san})
    try:
        _run("req", "-new", "-config", cnf,
             "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr)
        _run("x509", "-req", "-in", csr, "-CA", ca["ca"], "-CAkey", ca["key"],
             "-set_serial", "0x" + secrets.token_hex(16), "-days", str(DAYS), "-sha256",
             "-extfile", ext, "-extensions", "v3_server", "-out", crt)
    finally:
        for path in (csr, cnf, ext):
            _remove(path)
    os.chmod(key, 0o600)
    return {"ca": ca["ca"], "cert": crt, "key": key}


def make_ca_and_server_cert(directory, ips=("127.0.0.1",), dns=("localhost",)):
    """ca.crt/ca.key and server.crt/server.key in directory.
    Returns {"ca": ca.crt, "cert": server.crt, "key": server.key}."""
    ca = make_ca(directory)
    return make_server_cert(directory, ca, ips, dns)


def make_other_ca(directory):
    """A second CA, unrelated to make_ca_and_server_cert's: other-ca.crt and
    other-ca.key. Returns {"ca": other-ca.crt, "key": other-ca.key}."""
    return make_ca(directory, "other-ca", "switchyard-test-other-ca")


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def main(argv=None):
    p = argparse.ArgumentParser(description="Test CA and server certificate (openssl).")
    p.add_argument("directory")
    p.add_argument("--ip", action="append", help="subjectAltName IP (default 127.0.0.1)")
    p.add_argument("--dns", action="append", help="subjectAltName DNS name (default localhost)")
    p.add_argument("--other-ca", action="store_true",
                   help="write only a second, unrelated CA (other-ca.crt, other-ca.key)")
    args = p.parse_args(argv)
    try:
        if args.other_ca:
            paths = make_other_ca(args.directory)
        else:
            paths = make_ca_and_server_cert(
                args.directory,
                ("127.0.0.1",) if args.ip is None else args.ip,
                ("localhost",) if args.dns is None else args.dns)
    except (CertError, ValueError, OSError) as e:
        print("certs.py: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(paths), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
