"""A scripted OpenAI-compatible chat server on 127.0.0.1, for judge tests.

The test passes ``script(body, attempt) -> reply text | int status``: it sees the request body and how
many times this exact prompt was asked before, and returns the judge's text (or an HTTP error status).
Usage is reported as characters (prompt_tokens = prompt length, completion_tokens = reply length), so cost
and budget arithmetic is exact. Every request body is kept for assertions.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from .loopback import JsonHandler, LoopbackServer

Script = Callable[[dict[str, Any], int], "str | int | tuple[str, str]"]
_ANSWER = re.compile(r"\[助手的(?:答案|回答)开始\]\n(.*)\n\[助手的(?:答案|回答)结束\]", re.DOTALL)


def judged_answer(body: dict[str, Any]) -> str:
    """The assistant answer embedded in a judge prompt."""
    match = _ANSWER.search(body["messages"][-1]["content"])
    assert match is not None, "not a judge prompt"
    return match.group(1)


class ScriptedServer(LoopbackServer):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.asked: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(JsonHandler):
            def _send(self, status: int, payload: Any) -> None:
                self.send_json(status, json.dumps(payload).encode())

            def do_GET(self) -> None:
                self._send(200, {"data": [{"id": "scripted"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with server._lock:
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                    attempt = server.asked[prompt]
                    server.asked[prompt] += 1
                reply = server.script(body, attempt)
                if isinstance(reply, int):
                    self._send(reply, {"error": {"message": "scripted failure"}})
                    return
                finish = "stop"
                if isinstance(reply, tuple):  # (text, finish_reason): a reply cut at max_tokens, say
                    reply, finish = reply
                self._send(
                    200,
                    {
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": finish}
                        ],
                        "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(reply)},
                    },
                )

        super().__init__(Handler)
