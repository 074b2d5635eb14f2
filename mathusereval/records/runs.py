"""Records of whole runs: what a run is (`RunManifest`), what it reported (`RunSummary`, ``summary.json``)
and what a reader gets back (`RunResult` with its `RunCounts` and `JudgeUsage`)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fields import conforms, from_json_fields
from .items import JsonDict, MetricValue

LOCAL_BACKENDS = frozenset({"llamacpp", "vllm", "ray"})
"""Backends whose ``model`` is a local file or folder (named by its own name, not its path)."""


@dataclass(frozen=True, slots=True)
class RunManifest:
    """What a run was: enough to reproduce it and to refuse mixing it with a different one.

    `fingerprint` hashes every setting that changes answers (task version, data and prompt hashes, model,
    backend, generation parameters, and the `settings` below); a resumed run must match it. Secrets (API
    keys) are never recorded.
    """

    run_id: str
    task: str
    task_version: str
    model: str
    backend: str
    backend_config: JsonDict
    params: JsonDict
    data_sha256: str
    prompt_sha256: str
    fingerprint: str
    mathusereval_version: str
    started_at: str
    finished_at: str | None = None
    host: JsonDict = field(default_factory=dict)
    versions: JsonDict = field(default_factory=dict)
    graders: tuple[str, ...] = ()
    data_source: str = ""
    """Where the data was read: a data-dir file, or the verified download cache of the official source."""
    judges: JsonDict = field(default_factory=dict)
    """Per judge grader: judge model, backend, prompt hash, settings. Not in `fingerprint`: re-judging a
    run with another judge keeps its answers."""
    shard: str = ""
    """``"I/N"`` for one shard of a task run with ``--shard I/N`` ("" for a whole run)."""
    shard_items: int = 0
    """The number of items of the whole task (all shards), so a missing shard shows as partial."""
    settings: JsonDict = field(default_factory=dict)
    """The other settings that change answers or what is graded (``think``, the backend's ``endpoint``,
    chat template, system prompt ...), each by name, so a refused resume can say which one changed."""
    name: str = ""
    """``--name LABEL``: the run's own label (its directory and its leaderboard row)."""
    overrides: JsonDict = field(default_factory=dict)
    """The generation settings the user set (``--max-tokens`` ...), apart from the task's defaults: what tells
    two runs of one model apart on the leaderboard."""
    config: JsonDict = field(default_factory=dict)
    """The effective configuration of the invocation (``--config FILE`` merged with the command line; no
    secrets)."""
    records: JsonDict = field(default_factory=dict)
    """The writer's checkpoint at the end of its last finished run: per record file its line count and last
    digest, so a line deleted from a file's end shows (`mathusereval.store.integrity`)."""

    @property
    def label(self) -> str:
        """The run's name in tables: ``--name``, else the model's (`model_label`)."""
        return self.name or model_label(self.backend, self.model)

    def to_json(self) -> JsonDict:
        return {**dataclasses.asdict(self), "graders": list(self.graders)}

    @classmethod
    def from_json(cls, data: JsonDict) -> RunManifest:
        manifest = from_json_fields(cls, data)
        return dataclasses.replace(manifest, graders=tuple(manifest.graders))


@dataclass(frozen=True, slots=True)
class JudgeUsage:
    """What judging one run cost and how it went; written into the run summary."""

    items: int = 0
    calls: int = 0
    cached: int = 0
    retries: int = 0
    cascade_decided: int = 0
    """Items a grader's own `settle` step decided without a call (the judge cascade, the verifier's rules)."""
    parse_failures: int = 0
    call_errors: int = 0
    budget_skipped: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    batches: int = 0
    """Batches created for these calls (``--judge-batch``; a resumed batch is not counted again)."""
    cost_usd: float | None = None
    direct_cost_usd: float | None = None
    """What the same calls cost at the list price (direct calls), beside `cost_usd` for batch calls."""

    def to_json(self) -> JsonDict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: JsonDict) -> JudgeUsage:
        return from_json_fields(cls, data)

    def plus(self, other: JudgeUsage) -> JudgeUsage:
        """Two usages of one judge added up (a run judged in chunks)."""
        money = ("cost_usd", "direct_cost_usd")
        names = [f.name for f in dataclasses.fields(self) if f.name not in money]
        total: dict[str, Any] = {name: getattr(self, name) + getattr(other, name) for name in names}
        for name in money:
            costs = [c for c in (getattr(self, name), getattr(other, name)) if c is not None]
            total[name] = sum(costs) if costs else None
        return JudgeUsage(**total)


@dataclass(frozen=True, slots=True)
class RunCounts:
    """How complete a run is, counted from its records (`mathusereval.results.scoring.count_outcomes`).

    `expected` answer slots (items x samples) are either scored by the primary grader (`graded`) or not,
    for one of these reasons: `unparseable` judgments, `over_budget`, `failed_grades` (grader errors),
    `errors` (the answer failed), `missing` (never generated) or `grades_missing` (answered, no grade).
    """

    samples: int = 0
    expected: int = 0
    graded: int = 0
    unparseable: int = 0
    over_budget: int = 0
    failed_grades: int = 0
    ungraded: int = 0
    generations: int = 0
    errors: int = 0
    missing: int = 0
    grades_missing: int = 0
    truncated: int = 0
    grader_errors: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reused: int = 0
    programs: int = 0
    """Tool-integrated answers: programs run, those that failed (a non-zero exit: an exception, a limit) and
    timed out, and answers that reached the chain's call limit (`mathusereval.tir.protocol`)."""
    program_errors: int = 0
    program_timeouts: int = 0
    call_limit_reached: int = 0

    REASONS = (
        ("unparseable", "unparseable judgments"),
        ("over_budget", "over budget"),
        ("errors", "answer errors"),
        ("missing", "not generated"),
        ("grades_missing", "grades missing"),
        ("failed_grades", "grader errors"),
    )

    def to_json(self) -> JsonDict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: JsonDict) -> RunCounts:
        """Whole numbers written as floats (``3.0``) read as ints; anything else is refused by name."""
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        whole = {
            k: int(v) if isinstance(v, float) and conforms(v, float) and v.is_integer() else v for k, v in data.items()
        }
        return from_json_fields(cls, whole)

    def reasons(self) -> str:
        """Why answers are not scored, e.g. ``2 answer errors, 1 grader errors`` ("" when all are)."""
        return ", ".join(f"{getattr(self, k)} {label}" for k, label in self.REASONS if getattr(self, k))


@dataclass(frozen=True)
class RunSummary:
    """``summary.json``: what a run reported when it finished. Readers recompute metrics and counts from the
    records; the summary is the run's own account, checked against them by ``mue-eval verify``."""

    run_id: str
    task: str
    model: str
    graders: tuple[str, ...]
    metrics: tuple[MetricValue, ...]
    counts: RunCounts
    parity: str = "none"
    cost_usd: float | None = None
    stopped: str | None = None
    judge_usage: dict[str, JudgeUsage] = field(default_factory=dict)
    finished_at: str | None = None
    direct_cost_usd: float | None = None
    """What the model's answers would cost as direct calls; set for ``--batch`` runs, beside `cost_usd`."""

    def to_json(self) -> JsonDict:
        return {
            "run_id": self.run_id,
            "task": self.task,
            "model": self.model,
            "graders": list(self.graders),
            "parity": self.parity,
            "metrics": [m.to_json() for m in self.metrics],
            "counts": self.counts.to_json(),
            "cost_usd": self.cost_usd,
            **({"direct_cost_usd": self.direct_cost_usd} if self.direct_cost_usd is not None else {}),
            "stopped": self.stopped,
            "judge_usage": {name: usage.to_json() for name, usage in self.judge_usage.items()},
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_json(cls, data: JsonDict) -> RunSummary:
        """Raises TypeError/KeyError/ValueError on a file that is not a summary (the store names the file)."""
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        for name, hint in (("cost_usd", float | None), ("stopped", str | None), ("finished_at", str | None)):
            if not conforms(data.get(name), hint):
                raise TypeError(f"field {name!r} is {type(data.get(name)).__name__}, not {hint}")
        return cls(
            run_id=str(data["run_id"]),
            task=str(data["task"]),
            model=str(data["model"]),
            graders=tuple(str(g) for g in data.get("graders") or ()),
            metrics=tuple(MetricValue.from_json(m) for m in data.get("metrics") or ()),
            counts=RunCounts.from_json(data.get("counts") or {}),
            parity=str(data.get("parity") or "none"),
            cost_usd=data.get("cost_usd"),
            direct_cost_usd=data.get("direct_cost_usd"),
            stopped=data.get("stopped"),
            judge_usage={k: JudgeUsage.from_json(v) for k, v in (data.get("judge_usage") or {}).items()},
            finished_at=data.get("finished_at"),
        )


@dataclass(frozen=True)
class RunResult:
    """One run as evaluated or as read back: manifest, metrics (the first is the headline), counts."""

    manifest: RunManifest
    directory: Path
    metrics: tuple[MetricValue, ...]
    counts: RunCounts
    judge_usage: dict[str, JudgeUsage] = field(default_factory=dict)
    cost_usd: float | None = None
    parts: tuple[Path, ...] = ()
    """The directories holding the run's records when they are not `directory` itself (a sharded run)."""
    stopped: str | None = None
    """Why generation stopped early (a spent ``--max-cost`` / ``--max-tokens-total``); None when it did not."""
    problems: tuple[str, ...] = ()
    """What ``verify`` found edited after it was written (`mathusereval.results.verify_run`); shown as a mark."""
    label: str = ""
    """The run's row name among the runs it is shown with (`mathusereval.results.labels.label_runs`); the
    manifest's label when it was read alone."""
    direct_cost_usd: float | None = None
    """``--batch``: what the answers would cost as direct calls (`cost_usd` is at the batch discount)."""

    @property
    def row(self) -> str:
        return self.label or self.manifest.label

    @property
    def record_dirs(self) -> tuple[Path, ...]:
        return self.parts or (self.directory,)

    @property
    def ungraded(self) -> bool:
        """The headline metric has nothing behind it (n = 0): no answer could be graded."""
        return not self.metrics or self.metrics[0].n == 0

    @property
    def coverage(self) -> tuple[int, int]:
        """(scored, expected): answers with a score against items x samples. Under ``--parity upstream`` an
        unparseable judgment scores -1, as upstream counts it, so it is covered."""
        expected = self.counts.expected
        return min(self.counts.graded, expected), expected

    def coverage_mark(self) -> str:
        """The short mark a partial or edited run's cell carries: ``partial 6/567``, ``edited``; "" for a
        complete run that verifies."""
        scored, expected = self.coverage
        marks = [f"partial {scored}/{expected}"] if scored < expected else []
        return ", ".join([*marks, *(["edited"] if self.problems else [])])

    def partial_note(self) -> str | None:
        """A note when the run scored fewer answers than it asked for, with the reason counts."""
        scored, expected = self.coverage
        if scored >= expected:
            return None
        reasons = self.counts.reasons()
        return (
            f"{self.directory}: partial run, {scored} of {expected} answers scored ({scored / expected:.0%})"
            f"{': ' + reasons if reasons else ''}; its numbers cover those only"
        )

    def summary(self, parity: str = "none") -> RunSummary:
        return RunSummary(
            run_id=self.manifest.run_id,
            task=self.manifest.task,
            model=self.manifest.model,
            graders=self.manifest.graders,
            metrics=self.metrics,
            counts=self.counts,
            parity=parity,
            cost_usd=self.cost_usd,
            stopped=self.stopped,
            judge_usage=self.judge_usage,
            finished_at=self.manifest.finished_at,
            direct_cost_usd=self.direct_cost_usd,
        )


NAME_LIMIT = 120
"""The longest name a run's folder or file gets, in bytes (all ASCII): file systems allow 255, and the
atomic writer and page names add to it (``.<name>.tmp``, ``__<task>-<hash>.html``)."""


def shortened(name: str, original: str, limit: int = NAME_LIMIT) -> str:
    """`name` (ASCII, made from `original`) cut to `limit` characters when longer, ending in 16 hex digits of
    sha256 of `original`: the same long name always gives the same short one, and two names that share a
    long prefix stay apart."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 17].rstrip('._')}-{hashlib.sha256(original.encode(errors='replace')).hexdigest()[:16]}"


def safe_name(text: str, fallback: str = "_") -> str:
    """A name usable as one path component, for models and tasks alike: anything but letters, digits and
    ``._-`` becomes ``_``, no name starts or ends with a dot (so ``../../x`` stays inside its folder), and
    a name longer than `NAME_LIMIT` is shortened with a digest of the whole (`shortened`)."""
    return shortened(re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or fallback, text)


def model_label(backend: str, model: str) -> str:
    """The one model-name rule, for directories and table rows: a local model file or folder by its own
    name (``/ckpt/model.gguf`` -> ``model``), a served model by the name it is served under."""
    name = Path(model).name if backend in LOCAL_BACKENDS else model
    return name.removesuffix(".gguf") or model
