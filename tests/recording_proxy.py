"""A loopback HTTP proxy in front of a real server that records every prompt it forwards.

Lets a test assert exactly what a run asked a real engine for (e.g. that a resumed run re-sends nothing
that was finished), without instrumenting the engine.
"""

from __future__ import annotations

import json
import threading

import httpx

from .loopback import JsonHandler, LoopbackServer


class RecordingProxy(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        """`upstream`: the real server's base URL, e.g. ``http://127.0.0.1:8000/v1``."""
        self.prompts: list[str] = []
        self._lock = threading.Lock()
        proxy = self
        base = upstream.rstrip("/").removesuffix("/v1")

        class Handler(JsonHandler):
            def _relay(self, response: httpx.Response) -> None:
                try:
                    self.send_json(response.status_code, response.content)
                except (BrokenPipeError, ConnectionResetError):  # the client was killed meanwhile
                    self.close_connection = True

            def do_GET(self) -> None:
                self._relay(httpx.get(base + self.path, timeout=30))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                prompt = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
                with proxy._lock:
                    proxy.prompts.append(prompt)
                try:
                    response = httpx.post(
                        base + self.path, content=raw, headers={"Content-Type": "application/json"}, timeout=600
                    )
                except httpx.TransportError:
                    self.close_connection = True
                    return
                self._relay(response)

        super().__init__(Handler)
