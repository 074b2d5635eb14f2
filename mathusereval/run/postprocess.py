"""One post-processing layer for every backend: what a backend returns is raw; this makes it an answer.

Backends (llama.cpp, vLLM, any OpenAI-compatible server, a plugin's) return the model's text as generated,
a server-side reasoning field where the server splits one off, usage and the engine's finish reason. The
pipeline passes every generation through `finalize` before it is stored or graded, so ``--think``, stop
sequences and finish reasons mean the same thing whatever the engine:

- ``--think strip`` (default): the answer is what follows ``</think>`` (`split_reasoning`); the thinking is
  kept in ``reasoning``. A reply cut off while thinking has no answer. ``keep`` grades the whole reply.
- stop sequences: an engine that returns the stop string (or text after it) is cut at its first
  occurrence, with finish reason ``stop``.
- finish reasons: engines' own words (``eos``, ``stop_sequence``, ``max_tokens``, ``end_turn``) become
  ``stop`` or ``length``; anything else is kept as the engine said it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Sequence

from ..backends.replies import clean_text
from ..errors import BackendUnavailable
from ..records import Generation, Usage
from ..records.items import step_outline
from .choices import THINK_MODES  # noqa: F401 - re-exported: the modes this module applies

_FINISH = {
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "stop": "stop",
    "max_tokens": "length",
    "max_length": "length",
    "length": "length",
}


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def split_reasoning(text: str) -> tuple[str, str | None]:
    """The answer and the reasoning of a reply that thinks inline (DeepSeek-R1, QwQ, Qwen3 ...).

    The answer is what follows the last ``</think>``; a reply that opened ``<think>`` and never closed it
    (cut off while thinking) has no answer at all, so a number in its unfinished reasoning cannot be graded
    as the model's answer. Replies without think tags are returned as they are.
    """
    if THINK_CLOSE in text:
        reasoning, _, answer = text.rpartition(THINK_CLOSE)
        return answer.strip(), reasoning.replace(THINK_OPEN, "", 1).strip()
    head, opened, rest = text.partition(THINK_OPEN)
    if opened and not head.strip():
        return "", rest.strip()
    return text, None


def checked(raw: object, backend: str, asked: Container[tuple[str, int]]) -> Generation:
    """What a backend yielded, as a stored answer may be: a `Generation` for a request it was asked
    (anything else is a one-line `BackendUnavailable` naming the backend); text that is not a string (None,
    a number, a list) is that item's error; lone surrogates, which cannot be written as UTF-8, become U+FFFD."""
    if not isinstance(raw, Generation):
        raise BackendUnavailable(f"backend {backend!r} yielded a {type(raw).__name__}, not a mathusereval.Generation")
    if (raw.sample_id, raw.n_index) not in asked:
        raise BackendUnavailable(f"backend {backend!r} answered {raw.sample_id!r}#{raw.n_index!r}: not asked")
    fixes: dict[str, object] = {}
    if not isinstance(raw.text, str):
        kind = type(raw.text).__name__
        fixes.update(text="", error=raw.error or f"backend {backend!r} returned text of type {kind}")
    if raw.reasoning is not None and not isinstance(raw.reasoning, str):
        fixes["reasoning"] = None
    if raw.finish_reason is not None and not isinstance(raw.finish_reason, str):
        fixes["finish_reason"] = None
    if not isinstance(raw.usage, Usage):
        fixes["usage"] = Usage()
    if raw.error is not None and not isinstance(raw.error, str):
        fixes["error"] = str(raw.error)
    generation = dataclasses.replace(raw, **fixes) if fixes else raw  # type: ignore[arg-type]
    texts = {k: getattr(generation, k) for k in ("text", "reasoning", "error")}
    cleaned = {k: clean_text(v) for k, v in texts.items() if isinstance(v, str) and clean_text(v) != v}
    return dataclasses.replace(generation, **cleaned) if cleaned else generation  # type: ignore[arg-type]


def without_text(generation: Generation) -> Generation:
    """What a run keeps in memory of an answer once it is stored: outcome, finish reason, usage, and the
    outline of its tool steps (what the counts need)."""
    return dataclasses.replace(generation, text="", reasoning=None, steps=step_outline(generation.steps))


def finalize(generation: Generation, think: str = "strip", stop: Sequence[str] = ()) -> Generation:
    """The stored form of a backend's raw `generation` (errors pass through unchanged)."""
    if not generation.ok:
        return generation
    text, reasoning, finish = generation.text, generation.reasoning, generation.finish_reason
    if finish is not None:
        finish = _FINISH.get(finish.lower(), finish)
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if cuts:
        text, finish = text[: min(cuts)], "stop"
    if think == "strip" and reasoning is None:
        text, reasoning = split_reasoning(text)
    if (text, reasoning, finish) == (generation.text, generation.reasoning, generation.finish_reason):
        return generation
    return dataclasses.replace(generation, text=text, reasoning=reasoning, finish_reason=finish)
