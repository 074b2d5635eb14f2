"""An OpenAI-compatible chat server on 127.0.0.1 that sends what a broken or hostile server would.

Each distinct prompt gets the next kind of `kinds` (in order of first arrival) and keeps it on every retry,
until `heal()` makes every reply ``ok``. Kinds: ``ok``, ``surrogate`` (content with a lone ``\\ud800``),
``usage_lots`` / ``usage_list`` / ``usage_inf`` (usage counts "lots", a list, 1e400), ``deep`` ("[" × 100000),
``null`` (content null with finish_reason stop and 5 completion tokens), ``big`` (a 3 MB reply), ``gzip`` (a
256 KiB gzip body inflating to 256 MiB), ``slow`` (0.4 s, then ok). ``auth`` = "Bearer X" or "Basic ..." makes
every POST without exactly that Authorization header a 401 (``status`` picks 403); ``models_status`` is what
GET /models answers. Counts of POSTs and the Authorization headers seen are kept for assertions.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from functools import cache

from .loopback import JsonHandler, LoopbackServer


def _reply(content: str, usage: str = '{"prompt_tokens": 3, "completion_tokens": 5}') -> bytes:
    choice = {"message": {"content": content}, "finish_reason": "stop"}
    return ('{"choices": [' + json.dumps(choice) + '], "usage": ' + usage + "}").encode()


def _gzip_bomb(inflated_mib: int = 256) -> bytes:
    """A valid gzip body of about 256 KiB that inflates to a 256 MiB reply, built without holding it."""
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    head, tail = _reply("@").split(b"@")
    parts = [out.compress(head)]
    block = b"a" * (1 << 20)
    parts += [out.compress(block) for _ in range(inflated_mib)]
    parts += [out.compress(tail), out.flush()]
    return b"".join(parts)


BODIES: dict[str, bytes] = {
    "ok": _reply("The answer is \\boxed{7}"),
    "surrogate": _reply("The answer is \\boxed{7} \ud800 tail"),  # json.dumps writes the escape "\\ud800"
    "usage_lots": _reply("The answer is \\boxed{7}", '{"prompt_tokens": "lots", "completion_tokens": 5}'),
    "usage_list": _reply("The answer is \\boxed{7}", '{"prompt_tokens": [1, 2], "completion_tokens": {"a": 1}}'),
    "usage_inf": _reply("The answer is \\boxed{7}", '{"prompt_tokens": 1e400, "completion_tokens": -3}'),
    "deep": b"[" * 100_000,
    "null": b'{"choices": [{"message": {"content": null}, "finish_reason": "stop"}], '
    b'"usage": {"completion_tokens": 5}}',
    "big": _reply("b" * (3 << 20)),
}


@cache
def _bomb() -> bytes:
    return _gzip_bomb()


class HostileServer(LoopbackServer):
    def __init__(self, kinds: list[str], auth: str | None = None, status: int = 401, models_status: int = 200) -> None:
        self.kinds, self.auth, self.status, self.models_status = kinds, auth, status, models_status
        self.assigned: dict[str, str] = {}
        self.posts = 0
        self.gets = 0
        self.seen_auth: list[str | None] = []
        self.healed = False
        self._lock = threading.Lock()
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                server.gets += 1
                self.send_json(server.models_status, b'{"data": [{"id": "hostile"}], "error": "models says no"}')

            def do_POST(self) -> None:
                try:
                    self._post()
                except (BrokenPipeError, ConnectionResetError):  # a client killed mid-request (kill -9 tests)
                    self.close_connection = True

            def _post(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with server._lock:
                    server.posts += 1
                    server.seen_auth.append(self.headers.get("Authorization"))
                    kind = server.assigned.setdefault(prompt, server.kinds[len(server.assigned) % len(server.kinds)])
                if server.auth is not None and self.headers.get("Authorization") != server.auth:
                    self.send_json(server.status, b'{"error": {"message": "invalid API key\\nfor this\\tproject"}}')
                    return
                if server.healed:
                    kind = "ok"
                if kind == "gzip":
                    self.send_json(200, _bomb(), {"Content-Encoding": "gzip"})
                    return
                if kind == "slow":
                    time.sleep(0.4)
                    kind = "ok"
                self.send_json(200, BODIES[kind])

        super().__init__(Handler)

    def heal(self) -> None:
        self.healed = True
