"""An HTTP server on 127.0.0.1 in a daemon thread, used as a context manager by the test servers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

S = TypeVar("S", bound="LoopbackServer")


class JsonHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, no request log, and `send_json` for the OpenAI-shaped test servers."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:
        pass

    def send_json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """`body` is already encoded, so a test can send malformed JSON on purpose."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 drops SYNs when 64+ clients connect at once: 1 s+ retransmits


class LoopbackServer:
    """Serves `handler` on a free loopback port; `url` is its base URL (``http://127.0.0.1:PORT`` + `path`)."""

    def __init__(self, handler: Callable[..., BaseHTTPRequestHandler], path: str = "/v1") -> None:
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self: S) -> S:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
