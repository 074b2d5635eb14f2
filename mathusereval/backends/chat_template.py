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

A template is a file from a model's repository, so it is rendered as untrusted code is run: in a child process
(`TemplateRenderer`), with `RENDER_MEMORY` of address space, killed after `RENDER_SECONDS`, its output at most
`RENDER_BYTES` beyond the conversation. In this process a single C call (a huge ``str.ljust``, an integer
squared in a loop) could neither be interrupted nor release the event loop, which waits on the child instead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import Message


class TemplateFailed(Exception):
    """The template failed on one conversation (its ``raise_exception``, a Jinja error, a bound): that item's error."""


def _raise(message: str) -> None:
    raise TemplateFailed(str(message)[:300])


RENDER_SECONDS = 5.0
RENDER_MEMORY = 1 << 30
RENDER_BYTES = 4 << 20
"""A rendering's bounds: wall seconds, the child's address space, and bytes beyond the conversation's text."""
START_SECONDS = 60.0
"""The child's start (an interpreter, Jinja, the template compiled), not counted in a rendering's seconds."""


@lru_cache(maxsize=4)
def _compiled(template: str) -> Any:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, ensure_ascii=False, indent=indent)
    env.globals.update(raise_exception=_raise, strftime_now=lambda fmt: datetime.now().strftime(fmt))
    try:
        return env.from_string(template)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"--chat-template: not a usable Jinja chat template ({exc})") from None


def render_here(template: str, messages: Sequence[Message]) -> str:
    """The prompt text for continuing `messages`' last (assistant) turn: the turns before it rendered with the
    generation prompt (the assistant's turn opened), then that turn's text as written so far. Unbounded in time
    and memory: the child of `TemplateRenderer` calls it."""
    import jinja2

    before = [dict(m) for m in messages[:-1]]
    limit = RENDER_BYTES + sum(len(str(m.get("content", ""))) for m in before)
    parts, size = [], 0
    try:
        for chunk in _compiled(template).generate(
            messages=before, add_generation_prompt=True, bos_token="", eos_token=""
        ):
            size += len(chunk)
            if size > limit:
                raise TemplateFailed(f"the rendered prompt is over {limit} bytes")
            parts.append(str(chunk))
    except jinja2.exceptions.SecurityError as exc:  # checked once at start; a branch only some items reach
        raise TemplateFailed(f"blocked by the Jinja sandbox ({exc})") from None
    except (MemoryError, RecursionError, TemplateFailed):
        raise
    except Exception as exc:  # noqa: BLE001 - 1/0, 10.0 ** 400, '%c' % 10**7: whatever a template raises
        raise TemplateFailed(f"the template failed on this conversation ({exc.__class__.__name__}: {exc})") from None
    return "".join(parts) + messages[-1]["content"]


def _serve() -> None:
    """The child: the template on the first line, then one conversation per line; one JSON reply per line."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (RENDER_MEMORY, RENDER_MEMORY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # an alarm per rendering, left at its default action (the process ends, even inside one long C call): a
    # child whose parent was killed mid-rendering stops soon after the parent's own bound, then reads EOF
    alarm = int(RENDER_SECONDS) + 2
    reply: dict[str, str]
    try:
        template = json.loads(sys.stdin.readline())
        _compiled(template)
        reply = {"ready": ""}
    except ConfigError as exc:
        reply = {"config": str(exc)}
    except Exception as exc:  # a template the compiler chokes on in its own way
        reply = {"config": f"--chat-template: not a usable Jinja chat template ({exc.__class__.__name__})"}
    print(json.dumps(reply), flush=True)
    for line in sys.stdin:
        signal.alarm(alarm)
        try:
            reply = {"text": render_here(template, json.loads(line))}
        except TemplateFailed as exc:
            reply = {"error": str(exc)}
        except MemoryError:
            reply = {"error": f"the rendering ran out of memory ({RENDER_MEMORY >> 20} MiB)"}
        except RecursionError:
            reply = {"error": "the rendering recursed too deeply"}
        except Exception as exc:  # noqa: BLE001 - a conversation that is no list of turns, say
            reply = {"error": f"{exc.__class__.__name__}: {exc}"[:300]}
        signal.alarm(0)
        print(json.dumps(reply), flush=True)  # ASCII: a lone surrogate travels escaped


class TemplateRenderer:
    """One template, rendered in a child process that is started on first use and again after a bound killed
    it. Thread-safe (renderings take turns); `render` blocks, so async callers run it in a thread."""

    def __init__(self, template: str) -> None:
        self.template = template
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._epoch = 0  # `stop` starts another: renderings asked before it give up their turn

    def check(self) -> None:
        """Refuse a template that does not compile, or fails on a one-question conversation, before anything
        is sent."""
        try:
            self.render([{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}])
        except TemplateFailed as exc:
            self.close()
            raise ConfigError(f"--chat-template: fails on a one-question conversation ({exc})") from None

    def render(self, messages: Sequence[Message]) -> str:
        try:  # ASCII: a lone surrogate (a stored step, a data file) travels escaped, as it came
            line = json.dumps([dict(m) for m in messages]).encode() + b"\n"
        except (TypeError, ValueError) as exc:
            raise TemplateFailed(f"the conversation is not JSON ({exc})") from None
        cap = 2 * len(line) + 6 * RENDER_BYTES  # the reply: the conversation and what the template adds, escaped
        epoch = self._epoch
        while not self._lock.acquire(timeout=0.1):  # renderings take turns; a stopping run stops the queue too
            if self._epoch != epoch:
                raise TemplateFailed("the run is stopping")
        try:
            if self._epoch != epoch:
                raise TemplateFailed("the run is stopping")
            child = self._started()
            try:
                assert child.stdin is not None
                child.stdin.write(line)
                child.stdin.flush()
                reply = self._read_line(child, RENDER_SECONDS, cap)
            except (OSError, ValueError) as exc:
                self.close()
                raise TemplateFailed(f"the rendering process failed ({exc})") from None
            except TemplateFailed:
                self.close()  # past a bound: the child is killed, the next rendering starts another
                raise
        finally:
            self._lock.release()
        if "text" in reply:
            return str(reply["text"])
        raise TemplateFailed(str(reply.get("error", "no rendering")))

    def stop(self) -> None:
        """From any thread, at the run's end or interruption: the rendering under way ends now (its child is
        killed) and those waiting their turn give up, so no thread holds the process's exit. A rendering asked
        later starts a new child."""
        self._epoch += 1
        child = self._child
        if child is not None:
            child.kill()
        if self._lock.acquire(timeout=2.0):  # the killed rendering's thread lets go at once
            try:
                self.close()
            finally:
                self._lock.release()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._child is not None and self._child.poll() is None:
            return self._child
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")}
        # run from the folder that holds this package: `-m` puts the working directory first on the path, and
        # there the child finds the very package this process runs, never a folder of the user's that shadows it
        home = Path(__file__).resolve().parents[2]
        self._child = child = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=home,
        )  # fmt: skip
        assert child.stdin is not None
        try:
            child.stdin.write(json.dumps(self.template).encode() + b"\n")
            child.stdin.flush()
            ready = self._read_line(child, START_SECONDS, 1 << 20)
        except (OSError, ValueError, TemplateFailed) as exc:
            self.close()
            raise ConfigError(f"--chat-template: its rendering process did not start ({exc})") from None
        if "config" in ready:
            self.close()
            raise ConfigError(str(ready["config"]))
        return child

    @staticmethod
    def _read_line(child: subprocess.Popen[bytes], seconds: float, cap: int) -> dict[str, Any]:
        assert child.stdout is not None
        fd, data = child.stdout.fileno(), bytearray()
        deadline = time.monotonic() + seconds
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TemplateFailed(f"rendering took more than {seconds:g} s")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise TemplateFailed(f"the rendering process died (over {RENDER_MEMORY >> 20} MiB of memory?)")
                data += chunk
                if len(data) > cap:
                    raise TemplateFailed(f"the rendered prompt is over {cap} bytes")
        reply = json.loads(data)
        if not isinstance(reply, dict):
            raise ValueError("not a JSON object")
        return reply

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.wait()
            for pipe in (child.stdin, child.stdout):
                if pipe is not None:
                    pipe.close()


if __name__ == "__main__":
    _serve()
