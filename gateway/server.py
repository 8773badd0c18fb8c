"""The gateway's HTTP endpoints (stdlib http.server, one thread per connection)."""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controlplane.lib.signing import SIGNATURE_HEADER
from gateway.app import MAX_CONFIG_BYTES, Gateway

logger = logging.getLogger("gateway.http")


def make_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "reference-gateway/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            logger.debug("%s - %s", self.address_string(), format % args)

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: dict[str, Any]) -> None:
            self._send(status, json.dumps(data).encode())

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(gateway.metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._json(200, {"status": "ok", "applied_revision": gateway.active.revision})
            elif path == "/status":
                self._json(200, gateway.status())
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0].rstrip("/") != "/config":
                self._json(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_CONFIG_BYTES:
                self.close_connection = True
                self._json(413, {"status": "rejected", "error": "body missing or too large"})
                return
            body = self.rfile.read(length)
            status, answer = gateway.handle_push(body, self.headers.get(SIGNATURE_HEADER))
            self._json(status, answer)

    return Handler


def make_server(gateway: Gateway) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(
        (gateway.config.listen_host, gateway.config.listen_port), make_handler(gateway)
    )
    server.daemon_threads = True
    return server
