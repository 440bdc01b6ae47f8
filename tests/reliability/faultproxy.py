"""A small fault-injecting HTTP proxy in front of the moto server (stdlib only).

Each rule matches a method and a path substring and fires a number of times: an S3 error
status with its XML code, a connection cut mid-body (RST), a body shorter than its
Content-Length, a body whose Content-Length was rewritten to match a truncation, or a signal
sent to this process just as the request arrives.
"""

from __future__ import annotations

import http.client
import os
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


@dataclass
class Rule:
    method: str
    path: str  # substring of the request path (path-style: /bucket/key?query)
    kind: str  # "status" | "cut" | "short" | "lie" | "signal" (status = the signal number)
    times: int = 1
    status: int = 503
    code: str = "SlowDown"
    hits: int = 0


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.rules: list[Rule] = []
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, **kw: Any) -> Rule:
        rule = Rule(**kw)
        with self.lock:
            self.rules.append(rule)
        return rule

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _match(self, method: str, path: str) -> Rule | None:
        with self.lock:
            self.requests.append((method, path))
            for rule in self.rules:
                if rule.method == method and rule.path in path and rule.hits < rule.times:
                    rule.hits += 1
                    return rule
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rule = self._match(h.command, h.path)
        if rule is not None and rule.kind == "signal":  # to this process, then served as usual
            os.kill(os.getpid(), rule.status)
            rule = None
        if rule is not None and rule.kind == "status":
            xml = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{rule.code}</Code>"
                f"<Message>injected</Message></Error>"
            ).encode()
            h.send_response(rule.status)
            h.send_header("Content-Type", "application/xml")
            h.send_header("Content-Length", str(len(xml)))
            h.end_headers()
            h.wfile.write(xml)
            return
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP | {"expect"}}
        conn.request(h.command, h.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        half = data[: len(data) // 2]
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in HOP or k.lower() == "content-length":
                continue
            h.send_header(k, v)
        if rule is not None and rule.kind == "lie":
            h.send_header("Content-Length", str(len(half)))
            h.end_headers()
            h.wfile.write(half)
            return
        size = resp.getheader("Content-Length") if h.command == "HEAD" else None
        h.send_header("Content-Length", size or str(len(data)))
        h.end_headers()
        if rule is None or h.command == "HEAD":
            h.wfile.write(data)
            return
        h.wfile.write(half)
        h.wfile.flush()
        if rule.kind == "cut":  # RST, as a dropped connection looks
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
        h.connection.close()
