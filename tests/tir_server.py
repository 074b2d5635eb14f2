"""A scripted OpenAI-compatible chat server that answers tool-integrated items in steps, as a TIR model does.

Each item (recognised by its question) follows a script chosen by the test: it writes a program, reads the
output the harness appended to its reply (the assistant turn it is asked to continue), and goes on from what
it read, until it boxes an answer. The server checks what the protocol promises on every request (the stop
sequence, the continued assistant turn, ``continue_final_message``) and records every request, so a test
can check each item step by step. `gate` holds continuation requests until it is set (a run to be killed
mid-chain). With ``prefill=False`` it is a server that cannot continue a chat turn (OpenAI's API): it refuses
``continue_final_message`` as OpenAI does, and takes continuations on ``/completions`` as a ChatML prompt.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .loopback import JsonHandler, LoopbackServer

OUTPUT = re.compile(r"```output\n(.*?)\n```\n", re.S)
CHATML = re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)(?:<\|im_end\|>\n|\Z)", re.S)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""Qwen2.5's ChatML, as its ``tokenizer_config.json`` renders a conversation without tools."""


def chatml_messages(prompt: str) -> list[dict[str, str]]:
    """The turns of a ChatML prompt; the last, unterminated assistant turn is the reply to continue."""
    turns = [{"role": role, "content": content} for role, content in CHATML.findall(prompt)]
    assert (
        "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns[:-1])
        + (f"<|im_start|>assistant\n{turns[-1]['content']}")
        == prompt
    ), f"not a continued ChatML prompt: {prompt[-200:]!r}"
    return turns


@dataclass
class Seen:
    question: str
    reply_so_far: str  # the assistant turn to continue ("" for the first request)
    body: dict[str, Any] = field(default_factory=dict)
    route: str = "chat"  # or "completions": a ChatML prompt, read back into messages


def outputs_in(reply: str) -> list[str]:
    """The program outputs the harness appended to the reply so far, in order."""
    return OUTPUT.findall(reply)


def script(kind: str, gold: str, reply: str) -> str:
    """What the model writes next for an item of this kind, given the reply so far (outputs included)."""
    seen = outputs_in(reply)
    if kind == "compute":  # one program, then the box of what it printed
        if not seen:
            return f"I will compute it.\n```python\nprint({gold})\n```"
        return f"The program printed {seen[-1]}, so the answer is \\boxed{{{seen[-1]}}}."
    if kind == "recover":  # a failing program, then a fix after reading the error, then the box
        if not seen:
            return "Let me try.\n```python\nprint(undefined_name)\n```"
        if len(seen) == 1:
            assert "NameError" in seen[0], seen
            return f"That failed ({seen[0]}). Again:\n```python\nx = {gold}\nprint(x)\n```"
        return f"Now it printed {seen[-1]}: \\boxed{{{seen[-1]}}}"
    if kind == "endless":  # never boxes: the harness ends the chain after 4 programs
        return f"Step {len(seen) + 1}.\n```python\nprint({len(seen) + 1} * 10)\n```"
    raise AssertionError(kind)


class ScriptedTirServer(LoopbackServer):
    def __init__(self, plan: dict[str, tuple[str, str]], prefill: bool = True) -> None:
        """`plan`: question -> (script kind, gold answer)."""
        self.plan = plan
        self.prefill = prefill
        self.refused = 0
        self.seen: list[Seen] = []
        self.problems: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = 0
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                self.send_json(200, b'{"data": [{"id": "tir-model"}]}')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                completions = self.path.endswith("/completions") and not self.path.endswith("/chat/completions")
                if not server.prefill and "continue_final_message" in body:  # what OpenAI's API answers
                    server.refused += 1
                    said = "Unrecognized request argument supplied: continue_final_message"
                    self.send_json(400, json.dumps({"error": {"message": said}}).encode())
                    return
                try:
                    if completions:
                        assert not server.prefill, "a continuation on /completions from a server that prefills"
                        body = {**body, "messages": chatml_messages(body.pop("prompt"))}
                        body.update(continue_final_message=True, add_generation_prompt=False)
                    text = server.answer(body, "completions" if completions else "chat")
                except AssertionError as exc:  # a protocol breach: recorded, answered with an error
                    server.problems.append(str(exc))
                    self.send_json(400, json.dumps({"error": {"message": str(exc)}}).encode())
                    return
                said = {"text": text} if completions else {"message": {"role": "assistant", "content": text}}
                reply = {
                    "choices": [{"index": 0, **said, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                }
                self.send_json(200, json.dumps(reply).encode())

        super().__init__(Handler)

    def answer(self, body: dict[str, Any], route: str = "chat") -> str:
        messages = body["messages"]
        assert body.get("stop") == ["```output"], f"stop sequence {body.get('stop')!r}"
        continuing = messages[-1]["role"] == "assistant"
        if continuing:
            assert body.get("continue_final_message") is True and body.get("add_generation_prompt") is False
            self.waiting += 1
            self.gate.wait(120)
            self.waiting -= 1
        else:
            assert "continue_final_message" not in body
        question = next(m["content"] for m in messages if m["role"] == "user")
        assert messages[0]["role"] == "system" and "integrate natural language reasoning" in messages[0]["content"]
        reply = messages[-1]["content"] if continuing else ""
        self.seen.append(Seen(question, reply, body, route))
        kind, gold = self.plan[question]
        return script(kind, gold, reply)

    def requests_for(self, question: str) -> list[Seen]:
        return [s for s in self.seen if s.question == question]
