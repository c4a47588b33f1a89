#!/usr/bin/env python3
"""A scriptable HTTP receiver for the alert-channel tests (standard library only).

    python3 tests/receiver.py [PORT]

Listens on 127.0.0.1 (PORT, or a free one) and prints the port on the first line of stdout.
Every request to any path other than the control endpoints is recorded and answered as
scripted for its path (200 with {"ok": true} when nothing is scripted):

    POST /_script    {"path": "/x", "responses": [R, ...]}
                     R = {"status": 500}
                       | {"status": 429, "headers": {"Retry-After": "3"}, "body": "slow down"}
                       | {"hang_seconds": 30}   (answers 200 after that long, if still connected)
                       | {"status": 302, "headers": {"Location": "http://127.0.0.1:1/"}}
                     Responses are used in order; the last one repeats.
    GET  /_requests  [{"method", "path", "query", "headers" (lower-case names), "body",
                       "json" (the parsed body or null)}, ...] oldest first.
                     With ?secret=S each request also gets "signature_valid": true | false,
                     the Streamwatch-Signature header checked here with Python's hmac, an
                     implementation independent of the server's.
    POST /_reset     forgets the requests and the scripts.
"""

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: the sender opens up to 32 connections at
    # once, and the overflow was dropped and retried by TCP seconds later (seen in the
    # notification benchmark as requests timing out).
    request_queue_size = 256


LOCK = threading.Lock()
REQUESTS = []
SCRIPTS = {}


def verify(secret, headers, body):
    """Whether `Streamwatch-Signature: t=<t>,v1=<hex>` is HMAC-SHA256(secret, "<t>.<body>")."""
    header = headers.get("streamwatch-signature")
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep the test output quiet
        pass

    def _send(self, status, body=b"", headers=None, content_type="application/json"):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def _handle(self, method):
        url = urlsplit(self.path)
        body = self._body()
        if url.path == "/_script" and method == "POST":
            spec = json.loads(body)
            with LOCK:
                SCRIPTS[spec["path"]] = list(spec["responses"]) or [{"status": 200}]
            return self._send(204)
        if url.path == "/_reset" and method == "POST":
            with LOCK:
                REQUESTS.clear()
                SCRIPTS.clear()
            return self._send(204)
        if url.path == "/_requests" and method == "GET":
            secret = parse_qs(url.query).get("secret", [None])[0]
            with LOCK:
                out = []
                for r in REQUESTS:
                    item = {k: v for k, v in r.items() if k != "raw"}
                    if secret is not None:
                        item["signature_valid"] = verify(secret, r["headers"], r["raw"])
                    out.append(item)
            return self._send(200, json.dumps(out).encode())

        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = headers[name] + ", " + value if name in headers else value
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        with LOCK:
            REQUESTS.append(
                {
                    "method": method,
                    "path": url.path,
                    "query": url.query,
                    "headers": headers,
                    "body": text,
                    "json": parsed,
                    "raw": body,
                }
            )
            script = SCRIPTS.get(url.path)
            response = (script.pop(0) if len(script) > 1 else script[0]) if script else {}
        if response.get("hang_seconds"):
            time.sleep(float(response["hang_seconds"]))
        status = int(response.get("status", 200))
        payload = response.get("body")
        payload = (
            json.dumps({"ok": status < 300}) if payload is None else str(payload)
        ).encode()
        try:
            self._send(status, payload, response.get("headers"))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = Server(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
