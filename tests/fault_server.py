"""A deterministic OpenAI-compatible chat server on 127.0.0.1 that injects faults on request.

The last user message decides the behaviour. ``FAULT:<plan>`` in the prompt names a sequence of replies,
one per attempt, e.g. ``FAULT:429,429,ok`` or ``FAULT:400``; the last entry repeats. Replies:
``ok`` (answers ``The answer is \\boxed{<n>}`` with n taken from ``ANSWER:<n>``), ``429`` (with
Retry-After: 0), ``429slow`` (no Retry-After), ``500``, ``503``, ``400``, ``badjson``, ``empty``,
``reset`` (closes the socket without a reply), ``hang`` (sleeps past any sane client timeout), ``ra1``
(429 with Retry-After: 1), ``think`` (the answer after inline ``<think>`` reasoning that boxes a decoy),
``reasoning`` (the reasoning in ``reasoning_content``, apart from the answer), ``length`` (cut off).
Both ``/chat/completions`` and ``/completions`` are served. Every request is counted per prompt, and the
last request's headers are kept, so tests can assert what was sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from typing import Any

from .loopback import JsonHandler, LoopbackServer


class FaultServer(LoopbackServer):
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.headers: dict[str, str] = {}
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                self.send_json(200, json.dumps({"data": [{"id": "fault-model"}]}).encode())

            def _reply(self, chat: bool, text: str, finish: str = "stop", reasoning: str | None = None) -> None:
                if chat:
                    message = {"role": "assistant", "content": text}
                    if reasoning is not None:
                        message["reasoning_content"] = reasoning
                    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
                else:
                    choice = {"index": 0, "text": text, "finish_reason": finish}
                reply = {"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
                self.send_json(200, json.dumps(reply).encode())

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                chat = self.path.endswith("/chat/completions")
                prompt = body["messages"][-1]["content"] if chat else body["prompt"]
                with server._lock:
                    attempt = server.requests[prompt]
                    server.requests[prompt] += 1
                    server.paths[self.path] += 1
                    server.headers = dict(self.headers.items())
                    server.bodies.append(body)
                plan = re.search(r"FAULT:([\w,]+)", prompt)
                steps = plan.group(1).split(",") if plan else ["ok"]
                step = steps[min(attempt, len(steps) - 1)]
                answer = re.search(r"ANSWER:(\S+)", prompt)
                boxed = f"\\boxed{{{answer.group(1) if answer else 0}}}"
                if step == "ok":
                    self._reply(chat, f"The answer is {boxed}")
                elif step == "think":
                    self._reply(chat, f"<think>Maybe \\boxed{{99}}? No.</think>The answer is {boxed}")
                elif step == "reasoning":
                    self._reply(chat, f"The answer is {boxed}", reasoning="Maybe \\boxed{99}? No.")
                elif step == "length":
                    self._reply(chat, "The answer is", finish="length")
                elif step in ("429", "500", "503", "400"):
                    headers = {"Retry-After": "0"} if step == "429" else {}
                    self.send_json(int(step), b'{"error": "injected"}', headers)
                elif step == "ra1":
                    self.send_json(429, b'{"error": "injected"}', {"Retry-After": "1"})
                elif step == "429slow":
                    self.send_json(429, b'{"error": "injected"}')
                elif step == "badjson":
                    self.send_json(200, b'{"choices": [')
                elif step == "empty":
                    reply = {"choices": [{"message": {"content": ""}, "finish_reason": "stop"}]}
                    self.send_json(200, json.dumps(reply).encode())
                elif step == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif step == "hang":
                    time.sleep(5)
                    self.send_json(200, b"{}")

        super().__init__(Handler)
