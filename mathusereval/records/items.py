"""Typed records: the only currency between stages.

A task turns data rows into `Sample`s; a backend turns samples into `Generation`s; a grader turns a
(sample, generation) pair into a `Grade`; an aggregator turns grades into `MetricValue`s. Every record is
frozen and converts to and from plain JSON (`to_json` / `from_json`) at the file boundary
(`mathusereval.store`). The records of whole runs are in `mathusereval.records.runs`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .fields import conforms, from_json_fields

GROUP_KEYS = ("category", "subcategory", "subject", "level")
"""Sample metadata that names an item's group: MathUserEval/AlignBench categories, MATH subject and level."""

Message = dict[str, str]
"""One chat turn, OpenAI style: ``{"role": "user", "content": "..."}``."""

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sample:
    """One benchmark item, ready to be sent to a model."""

    task: str
    id: str
    messages: tuple[Message, ...]
    reference: str
    metadata: JsonDict = field(default_factory=dict)

    @property
    def question(self) -> str:
        """The question as the user asked it (what a judge or verifier is shown): tasks that wrap it in an
        instruction keep it in ``metadata["question"]``; otherwise the last user turn."""
        question = self.metadata.get("question")
        if isinstance(question, str):
            return question
        return next((m["content"] for m in reversed(self.messages) if m.get("role") == "user"), "")

    @property
    def group(self) -> str:
        """The item's group for per-category counts: its category, else subject, else level, else "-"."""
        for key in GROUP_KEYS:
            value = self.metadata.get(key)
            if value not in (None, ""):
                return str(value)
        return "-"

    def to_json(self) -> JsonDict:
        return {
            "task": self.task,
            "id": self.id,
            "messages": list(self.messages),
            "reference": self.reference,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: JsonDict) -> Sample:
        sample = from_json_fields(cls, data)
        return dataclasses.replace(sample, messages=tuple(sample.messages))


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Sampling settings shared by every backend; a task gives defaults, the CLI overrides them."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    seed: int = 0
    n: int = 1
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    """The last three are the engine's own default when None (and then left out of the JSON, so runs that do
    not set them keep their fingerprint)."""

    OPTIONAL = ("top_k", "min_p", "repetition_penalty")

    def to_json(self) -> JsonDict:
        data = {**dataclasses.asdict(self), "stop": list(self.stop)}
        return {k: v for k, v in data.items() if v is not None or k not in self.OPTIONAL}

    def sampling_extras(self) -> dict[str, float]:
        """The optional sampling settings that are set, by name."""
        return {k: getattr(self, k) for k in self.OPTIONAL if getattr(self, k) is not None}

    @classmethod
    def from_json(cls, data: JsonDict) -> GenerationParams:
        params = from_json_fields(cls, data)
        return dataclasses.replace(params, stop=tuple(params.stop))


@dataclass(frozen=True, slots=True)
class Request:
    """One generation to make: the `n_index`-th answer to `sample`."""

    sample: Sample
    n_index: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def step_outline(steps: tuple[JsonDict, ...]) -> tuple[JsonDict, ...]:
    """A tool-integrated answer's steps as a run keeps them in memory once stored: whether each ran a
    program, its exit status, and its output only when short (a timeout's report); no texts or programs."""
    return tuple(
        {
            "code": "" if step.get("code") is not None else None,
            "exit_status": step.get("exit_status"),
            "output": output if isinstance(output := step.get("output"), str) and len(output) <= 32 else None,
        }
        for step in steps
        if isinstance(step, dict)
    )


MAX_TOOL_STEPS = 4
"""The most steps a stored tool-integrated answer may have: one per request of its chain, and a chain makes
at most `mathusereval.tir.protocol.MAX_FUNC_CALLS` (4) requests."""


@dataclass(frozen=True, slots=True)
class Generation:
    """A model's answer to one sample, or the error that prevented it.

    An error is data: it is stored, counted and retried on the next run, never graded as wrong.
    """

    sample_id: str
    n_index: int
    model: str
    text: str = ""
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    error: str | None = None
    reasoning: str | None = None
    """A reasoning model's thinking, kept apart from `text` (the answer graders see): what the server
    returned as ``reasoning_content``, or what stood between ``<think>`` tags."""
    steps: tuple[JsonDict, ...] = ()
    """A tool-integrated answer's chain (`mathusereval.tir.protocol.ToolStep` as JSON: text, code, output,
    exit status, seconds), one per request; `text` is then the whole trajectory, outputs included, as
    upstream grades it. Empty for a plain answer (and then left out of the JSON)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> JsonDict:
        # by hand, not dataclasses.asdict: this runs once per answer on the event loop's hot path
        return {
            "sample_id": self.sample_id,
            "n_index": self.n_index,
            "model": self.model,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": {"prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens},
            "latency_s": self.latency_s,
            "error": self.error,
            "reasoning": self.reasoning,
            "kind": "generation",
            **({"steps": list(self.steps)} if self.steps else {}),
        }

    @classmethod
    def from_json(cls, data: JsonDict) -> Generation:
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        usage = data.get("usage")
        try:
            read = Usage() if usage is None else from_json_fields(Usage, usage)
        except TypeError as exc:
            raise TypeError(f"usage: {exc}") from None
        if min(read.prompt_tokens, read.completion_tokens) < 0:
            raise TypeError(f"usage: a negative token count ({read.prompt_tokens}, {read.completion_tokens})")
        generation = from_json_fields(cls, {**data, "usage": read})
        if generation.latency_s < 0:
            raise TypeError(f"field 'latency_s' is negative ({generation.latency_s})")
        if len(generation.steps) > MAX_TOOL_STEPS:
            raise TypeError(f"field 'steps' has {len(generation.steps)} entries; a chain has at most {MAX_TOOL_STEPS}")
        return dataclasses.replace(generation, steps=tuple(generation.steps)) if generation.steps else generation


@dataclass(frozen=True, slots=True)
class Grade:
    """A grader's verdict on one generation.

    `score` is the number the task aggregates (1.0/0.0 for answer checks, 1–10 for judges); `correct` is the
    binary verdict where one exists. A grader that could not decide sets `error` and leaves `score` None.
    """

    sample_id: str
    n_index: int
    grader: str
    score: float | None
    correct: bool | None = None
    details: JsonDict = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> JsonDict:
        return {**dataclasses.asdict(self), "kind": "grade"}

    @classmethod
    def from_json(cls, data: JsonDict) -> Grade:
        return from_json_fields(cls, data)


@dataclass(frozen=True, slots=True)
class JudgeCall:
    """One reply of the judge model, cached in ``judgments.jsonl`` under `key`.

    The key hashes the judge model, its backend, the judge prompt's template hash, the rendered messages
    (question, reference and answer), the sampling settings and the attempt number, so a stored reply is
    reused only for exactly the same call. `generation` is the judge's raw reply (or the call's error).
    """

    key: str
    grader: str
    sample_id: str
    n_index: int
    attempt: int
    generation: Generation

    def to_json(self) -> JsonDict:
        return {
            "kind": "judgment",
            "key": self.key,
            "grader": self.grader,
            "sample_id": self.sample_id,
            "n_index": self.n_index,
            "attempt": self.attempt,
            "generation": self.generation.to_json(),
        }

    @classmethod
    def from_json(cls, data: JsonDict) -> JudgeCall:
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        try:
            generation = Generation.from_json(data["generation"])
        except TypeError as exc:
            raise TypeError(f"generation: {exc}") from None
        return from_json_fields(cls, {**data, "generation": generation})


@dataclass(frozen=True, slots=True)
class Settled:
    """What an LLM grader's ``settle`` step decided for one item without asking its model."""

    score: float
    details: JsonDict = field(default_factory=dict)
    standing: bool = True
    """True when the decision stands on its own (the verifier's rule verdict); False when it stands only while
    the run asks for it (``--judge-cascade``): a run without the cascade sends the item to the judge."""


SHARES = ("accuracy", "pass@", "maj@", "hard_split")
"""Metric name parts that make a metric a share of items (`MetricValue.is_share`)."""


def wilson_interval(share: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval for a proportion `share` of `n` trials (Wilson 1927; Brown, Cai & DasGupta
    2001 recommend it over the normal approximation for small n)."""
    centre = share + z * z / (2 * n)
    spread = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return (max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale))


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One aggregate number with its uncertainty."""

    name: str
    value: float
    n: int
    stderr: float | None = None
    higher_is_better: bool = True

    @property
    def is_share(self) -> bool:
        """Accuracies, pass@k, maj@k and hard-split are shares in [0, 1] (shown in percent), for every grader
        (``verifier/accuracy``, ``answer/pass@8``); the rest are scores on the grader's own scale."""
        return any(part.startswith(SHARES) for part in self.name.split("/"))

    @property
    def ci95(self) -> tuple[float, float] | None:
        """The 95% interval: Wilson's score interval for a share (right at small n and near 0 or 1, where the
        normal approximation gives [-0.010, 0.250] for 3/25 and [0, 0] for 0/5), else mean ± 1.96 stderr.
        For a mean of k answers per item (avg@k) Wilson's p(1-p)/n bounds the variance from above, so the
        interval is conservative there."""
        if self.is_share and self.n > 0 and 0.0 <= self.value <= 1.0:
            return wilson_interval(self.value, self.n)
        if self.stderr is None:
            return None
        return (self.value - 1.96 * self.stderr, self.value + 1.96 * self.stderr)

    def to_json(self) -> JsonDict:
        """Strict JSON: a metric with nothing behind it (NaN) is ``"value": null`` with a reason, never NaN,
        which ``JSON.parse`` and ``jq`` reject."""
        data: JsonDict = {**dataclasses.asdict(self), "ci95": self.ci95}
        if not math.isfinite(self.value):
            data.update(value=None, ci95=None, reason="no scored answers" if self.n == 0 else "undefined")
        if self.stderr is not None and not math.isfinite(self.stderr):
            data.update(stderr=None, ci95=None)
        return data

    @classmethod
    def from_json(cls, data: JsonDict) -> MetricValue:
        """A metric with nothing behind it is stored as ``"value": null`` and read back as NaN."""
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        value = data.get("value")
        if value is not None and not conforms(value, float):
            raise TypeError(f"field 'value' must be a finite number or null, not {type(value).__name__}")
        return from_json_fields(
            cls, {**data, "value": math.nan if value is None else float(value)}, frozenset({"value"})
        )
