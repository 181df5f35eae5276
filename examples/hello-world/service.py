#!/usr/bin/env python3
"""A tiny HTTP service for the hello-world example: answers every request
with "Hello from NAME" and what the router told it (l5d-dst-service)."""

import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("Hello from %s! (you asked for %s via %s)\n" % (
            NAME, self.headers.get("l5d-dst-service", "?"), self.headers.get("Via", "no proxy"))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    NAME, PORT = sys.argv[1], int(sys.argv[2])
    http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
