"""An OpenAI-compatible server that echoes every credential it was sent back in its error bodies, as real
servers do in their 4xx messages: the Authorization header, every other header, the request path with its
query string, and the Basic auth password decoded. It records the paths it was asked for."""

from __future__ import annotations

import base64
import json

from .loopback import JsonHandler, LoopbackServer


class EchoServer(LoopbackServer):
    def __init__(self, status: int = 400) -> None:
        self.status = status
        self.paths: list[str] = []
        server = self

        class Handler(JsonHandler):
            def _echo(self) -> bytes:
                said: list[str] = [f"{name}={value}" for name, value in self.headers.items()]
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    said.append("basic " + base64.b64decode(auth[6:]).decode(errors="replace"))
                said.append(f"path {self.path}")
                return json.dumps({"error": {"message": "; ".join(said)}}).encode()

            def do_GET(self) -> None:
                server.paths.append(self.path)
                self.send_json(200, b'{"data": [{"id": "echo"}]}')

            def do_POST(self) -> None:
                server.paths.append(self.path)
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_json(server.status, self._echo())

        super().__init__(Handler)

    def posts(self) -> list[str]:
        return [p for p in self.paths if p.split("?")[0].endswith("/completions")]
