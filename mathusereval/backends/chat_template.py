"""A chat template rendered here, for a served model whose chat endpoint cannot continue an assistant turn.

A tool-integrated chain (`mathusereval.tir.chain`) asks the model to go on writing its own reply after a
program's output. vLLM and SGLang do that on the chat endpoint (``continue_final_message``); OpenAI's API,
and servers that copy it, refuse the field or silently open a new turn. For those, ``--chat-template FILE``
with ``--base-url`` sends each continuation to ``/completions`` instead: the conversation before the reply is
rendered with the template up to where the assistant's turn begins, then the reply so far follows (as
`transformers`' ``apply_chat_template(..., continue_final_message=True)`` renders it).

The template runs in Jinja's immutable sandbox, with the globals Hugging Face chat templates use
(``raise_exception``, ``strftime_now``, ``tojson``) as ``transformers/utils/chat_template_utils.py`` defines
them. ``bos_token`` is empty: a completions endpoint adds the model's own BOS when it tokenizes a prompt.
A rendering is bounded: `RENDER_SECONDS` of Python lines (a trace function counts them, so a loop cannot
run on), `RENDER_BYTES` of output beyond the conversation, and ``*``/``**`` results of that size; the
backend renders in a worker thread, so the event loop never waits on it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from ..errors import ConfigError
from ..records import Message


class TemplateFailed(Exception):
    """The template raised on one conversation (its ``raise_exception``, or a Jinja error): that item's error."""


def _raise(message: str) -> None:
    raise TemplateFailed(str(message)[:300])


RENDER_SECONDS = 5.0
RENDER_BYTES = 4 << 20
"""A rendering's bounds: seconds, and bytes beyond the conversation's own text."""


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


@lru_cache(maxsize=4)
def _compiled(template: str) -> Any:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Bounded(ImmutableSandboxedEnvironment):
        """``'x' * 10**10`` and ``9 ** 10**9`` are single C calls no trace can stop: checked before."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*" and isinstance(left, int) != isinstance(right, int):
                count, item = (left, right) if isinstance(left, int) else (right, left)
                if isinstance(count, int) and _sized(item) * max(count, 0) > RENDER_BYTES:
                    raise TemplateFailed(f"a repetition over {RENDER_BYTES} bytes")
            if operator == "**" and isinstance(right, int) and abs(right) > 64:
                raise TemplateFailed("an exponent over 64")
            return super().call_binop(context, operator, left, right)

    env = Bounded(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, ensure_ascii=False, indent=indent)
    env.globals.update(raise_exception=_raise, strftime_now=lambda fmt: datetime.now().strftime(fmt))
    try:
        return env.from_string(template)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"--chat-template: not a usable Jinja chat template ({exc})") from None


def check_template(template: str) -> None:
    """Refuse a template that does not compile, or that renders no conversation at all, before anything is sent."""
    try:
        render_continued(template, [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}])
    except TemplateFailed as exc:
        raise ConfigError(f"--chat-template: fails on a one-question conversation ({exc})") from None


def render_continued(template: str, messages: Sequence[Message]) -> str:
    """The prompt text for continuing `messages`' last (assistant) turn: the turns before it rendered with the
    generation prompt (the assistant's turn opened), then that turn's text as written so far."""
    import jinja2

    compiled = _compiled(template)
    before = [dict(m) for m in messages[:-1]]
    limit = RENDER_BYTES + sum(len(str(m.get("content", ""))) for m in before)
    try:
        opened = _bounded(
            compiled.generate(messages=before, add_generation_prompt=True, bos_token="", eos_token=""), limit
        )
    except TemplateFailed:
        raise
    except jinja2.exceptions.SecurityError as exc:  # checked once at start; a branch only some items reach
        raise TemplateFailed(f"blocked by the Jinja sandbox ({exc})") from None
    except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise TemplateFailed(f"the template failed on this conversation ({exc.__class__.__name__}: {exc})") from None
    return opened + messages[-1]["content"]


def _bounded(chunks: Any, limit: int) -> str:
    """Join a template's output as it is generated, within `RENDER_SECONDS` and `limit` bytes."""
    deadline = time.monotonic() + RENDER_SECONDS

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise TemplateFailed(f"rendering took more than {RENDER_SECONDS:g} s")
        return trace

    parts: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(trace)  # this thread only
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TemplateFailed(f"the rendered prompt is over {limit} bytes")
            parts.append(str(chunk))
    finally:
        sys.settrace(previous)
    return "".join(parts)
