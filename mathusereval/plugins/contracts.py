"""What a plugin must be, written down and checked when it is registered (or built, for backends).

Four kinds of plugin, found by name (`mathusereval.plugins.registry`):

- **task**: a `Task` whose ``name`` is the name it is registered under (it names the results directory),
  with at least one grader name, a loader and an aggregation.
- **grader**: either a *rule grader*, a callable ``(Sample, Generation) -> Grade``, or an *LLM judge*
  (`JudgeGrader`: the prompt, the reply parser, the pass mark, the role whose model plays it, and a
  ``settle`` step that may decide items without a call; the judge model is chosen at run time).
  Either may add ``aggregate(samples, grades) -> list[MetricValue]`` (its own metrics when it is not the
  task's primary grader); a rule grader may add ``grade_batch(items) -> list[Grade]`` for many items at once.
  The framework stamps the registered name, the sample id and the answer index on every grade it stores,
  so a plugin cannot file its grades under another name.
- **backend**: a factory ``ModelSpec -> Backend``; the backend has ``model``, ``describe()``, one async
  ``generate(requests, params)`` yielding `Generation`s (raw text: `mathusereval.run.postprocess` applies
  ``--think``, stop sequences and finish reasons for every backend) and ``aclose()``; optionally
  ``check_reachable()`` (async, called once before anything runs) and ``stop_sending()`` (a spent budget:
  finish what is in flight, send nothing more).
- **renderer**: tables and publication files from runs already read (`Renderer`; ``leaderboard``).

A plugin that breaks its contract fails at registration or at lookup with a `ConfigError` naming the
plugin, where it came from (module or entry point) and what is missing, instead of a NaN later.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from ..records import Generation, GenerationParams, Grade, Message, Request, RunResult, Sample, Settled
from .task import Task, TaskGroup

JUDGE_ATTRIBUTES = ("name", "role", "style", "threshold", "prompt_sha256", "messages", "parse", "upstream", "settle")
"""Everything `mathusereval.run.judging` uses of an LLM judge."""
JUDGE_METHODS = ("messages", "parse", "upstream", "settle")
Item = tuple[Sample, Generation]
BACKEND_METHODS = ("generate", "describe", "aclose")
RENDERER_METHODS = ("print_table", "markdown", "write", "comparison_markdown", "write_comparison")
OPTIONAL_METHODS = {
    "graders": ("aggregate", "grade_batch"),
    "backends": ("stop_sending", "check_reachable"),
}


class RuleGrader(Protocol):
    def __call__(self, sample: Sample, generation: Generation) -> Grade: ...


class JudgeGrader(Protocol):
    """An LLM judge: how to ask, how to read the reply, what passes (`mathusereval.graders.judge.LLMJudge`).

    `role` names the model that plays it (``judge`` for ``--judge MODEL``, ``verifier`` for
    ``--verifier MODEL``). `settle(items, cascade)` runs before anything is sent: per item, a decision that
    needs no call (an answer the rules already settle), or None to ask the model; `cascade` says whether
    the user asked for the opt-in cascade (``--judge-cascade``).
    """

    name: str
    role: str
    style: str
    threshold: float

    @property
    def prompt_sha256(self) -> str: ...

    def messages(self, sample: Sample, generation: Generation) -> tuple[Message, ...]: ...

    def parse(self, text: str, answer: str = "") -> Any: ...

    def upstream(self, text: str) -> float: ...

    def settle(self, items: Sequence[Item], cascade: bool) -> Sequence[Settled | None]: ...


class Backend(Protocol):
    """Produces answers. One async method: requests in, generations out as each one finishes.

    A backend never raises for a failed item: it yields a `Generation` with `error` set. The members below
    ``aclose`` are optional: `BackendDefaults` gives each its default, and a plugin backend that lacks some is
    given them by `with_defaults`, so the run uses every member directly.
    """

    model: str

    def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]: ...

    def describe(self) -> dict[str, Any]:
        """Settings for the manifest; never secrets."""
        ...

    async def aclose(self) -> None: ...

    max_in_flight: int | None
    """Requests it works on at once (None: it does not say); the invocation's schedule keeps it that full."""
    overlapping_calls: bool
    """Several `generate` calls may run at once, sharing its capacity (the schedule then hands out requests
    as slots free, across tasks); False: one call at a time."""

    @property
    def kind(self) -> str:
        """What messages call it (its class's name)."""
        ...

    keeps_run_state: bool
    """It keeps state in the run directory (`bind_run`; the Batch API): a call holds one task's requests."""
    served_at: tuple[str, ...]
    """The base URLs it sends to (a served model), so lanes on one server share its capacity; () otherwise."""

    async def check_reachable(self) -> None:
        """Called once before anything runs; raises `BackendUnavailable` with the reason."""
        ...

    def stop_sending(self) -> bool:
        """A spent budget: finish what is in flight, send nothing more. False when it cannot (the caller
        then closes the stream, cancelling what is in flight)."""
        ...

    def bind_run(self, directory: Path) -> None:
        """Where run state the backend keeps lives (the batches of ``--batch``): the run directory of the
        requests that follow."""
        ...

    @property
    def batches_created(self) -> int:
        """Batch API batches this backend created (0 for direct calls)."""
        ...


class BackendDefaults:
    """The optional members of `Backend` with their defaults; built-in backends inherit them."""

    max_in_flight: int | None = None
    overlapping_calls: bool = False
    keeps_run_state: bool = False
    served_at: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return type(self).__name__

    async def check_reachable(self) -> None:
        return None

    def stop_sending(self) -> bool:
        return False

    def bind_run(self, directory: Path) -> None:
        return None

    @property
    def batches_created(self) -> int:
        return 0


class _PluginBackend(BackendDefaults):
    """A plugin backend that does not inherit `BackendDefaults`: its own members where it has them, the
    defaults elsewhere (looked up once, here, rather than with ``getattr`` wherever the run uses one)."""

    def __init__(self, backend: Any) -> None:
        self.inner = backend
        self.model = backend.model
        self.generate = backend.generate
        self.describe = backend.describe
        self.aclose = backend.aclose
        for name in ("max_in_flight", "overlapping_calls", "keeps_run_state", "served_at", "check_reachable",
                     "bind_run"):  # fmt: skip
            if hasattr(backend, name):
                setattr(self, name, getattr(backend, name))
        if callable(getattr(backend, "stop_sending", None)):  # 0.2's contract returned nothing: it could
            self._stop = backend.stop_sending

    _stop: Any = None

    def stop_sending(self) -> bool:
        if self._stop is None:
            return False
        self._stop()
        return True

    @property
    def kind(self) -> str:
        return type(self.inner).__name__

    def __getattr__(self, name: str) -> Any:  # anything else the plugin offers (used by its own tests)
        return getattr(self.inner, name)


def with_defaults(backend: Any) -> Backend:
    """`backend` with every optional member of the contract (itself when it inherits `BackendDefaults`)."""
    return backend if isinstance(backend, BackendDefaults) else _PluginBackend(backend)  # type: ignore[return-value]


BackendFactory = Callable[[Any], Backend]


class Renderer(Protocol):
    """Turns runs that were already read (`mathusereval.results`) into tables and files; it never evaluates.
    The built-in one is ``leaderboard`` (`mathusereval.leaderboard`)."""

    def print_table(self, runs: Sequence[RunResult], *, reference: bool = False, scale: float = 1.0) -> None: ...

    def markdown(self, runs: Sequence[RunResult], *, reference: bool = False) -> str: ...

    def write(
        self, runs: Sequence[RunResult], out: Path, *, scale: float = 1.0, reference: bool = False, analysis: Any = None
    ) -> list[Path]:
        """Every file of a publication under `out`; returns the paths written. `analysis`
        (`mathusereval.results.analysis.Analysis`) has the paired tests and checkpoint sweeps. The built-in
        renderer also takes ``reference_name=`` (``leaderboard --reference-name``), passed only when given."""
        ...

    def comparison_markdown(self, report: dict[str, Any]) -> str:
        """``mue-eval compare``'s report (`mathusereval.results.compare.report`) as Markdown."""
        ...

    def write_comparison(self, report: dict[str, Any], out: Path) -> list[Path]: ...


def _bad_score(value: object, grader: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"a score of type {type(value).__name__}"
    if not math.isfinite(value):
        return f"the score {value}"
    low, high = getattr(grader, "score_range", (-math.inf, math.inf))
    if not low <= value <= high:
        return f"the score {value:g}, outside its range {low:g}-{high:g}"
    return None


def checked_grade(name: str, grader: Any, grade: Any, sample_id: str, n_index: int) -> Grade:
    """A plugin's grade as the framework stores it: filed under the registered `name` and the item asked
    about; a grade that is not a `Grade`, whose score is not a finite number within the grader's declared
    ``score_range``, or whose ``correct`` is not a bool, becomes a grader error with its reason (counted in
    coverage, never a silent NaN, inf or 100 %)."""
    if not isinstance(grade, Grade):
        problem: str | None = f"a {type(grade).__name__} instead of a Grade"
    else:
        problem = _bad_score(grade.score, grader)
        if problem is None and grade.correct is not None and not isinstance(grade.correct, bool):
            problem = f"correct={grade.correct!r}, not a bool"
        if problem is None and not isinstance(grade.details, dict):
            problem = "details that are not a dict"
    if problem is not None or not isinstance(grade, Grade):
        error = f"grader {name!r} returned {problem}"
        return Grade(sample_id, n_index, name, None, details={"invalid_grade": True}, error=error)
    score = None if grade.score is None else float(grade.score)
    checked: Grade = dataclasses.replace(grade, grader=name, sample_id=sample_id, n_index=n_index, score=score)
    return checked


def is_judge(grader: Any) -> bool:
    """An LLM judge (as opposed to a rule grader): it has the judge's prompt and parser."""
    return all(hasattr(grader, attr) for attr in ("messages", "parse", "prompt_sha256"))


def _fail(kind: str, name: str, origin: str, problem: str) -> ConfigError:
    return ConfigError(f"{kind[:-1]} plugin {name!r} ({origin}) breaks the plugin contract: {problem}")


def _optional(kind: str, name: str, origin: str, obj: Any) -> None:
    for attr in OPTIONAL_METHODS.get(kind, ()):
        if hasattr(obj, attr) and not callable(getattr(obj, attr)):
            raise _fail(kind, name, origin, f"{attr} is not callable")


def check_plugin(kind: str, name: str, obj: Any, origin: str) -> None:
    """Raise `ConfigError` when `obj` cannot serve as the `kind` plugin `name`."""
    if kind == "tasks":
        if not isinstance(obj, Task):
            raise _fail(kind, name, origin, f"expected a mathusereval.Task, got {type(obj).__name__}")
        if obj.name != name:
            raise _fail(kind, name, origin, f"the Task is named {obj.name!r}; register it under that name")
        if not obj.graders or not all(isinstance(g, str) and g for g in obj.graders):
            raise _fail(kind, name, origin, "graders must be a non-empty tuple of grader names")
        for attr in ("load", "aggregate"):
            if not callable(getattr(obj, attr)):
                raise _fail(kind, name, origin, f"{attr} is not callable")
    elif kind == "graders":
        judge_like = [a for a in JUDGE_ATTRIBUTES if hasattr(obj, a)]
        if any(a in judge_like for a in ("messages", "parse", "prompt_sha256")):
            missing = [a for a in JUDGE_ATTRIBUTES if a not in judge_like]
            if missing:
                raise _fail(kind, name, origin, f"looks like an LLM judge but lacks {', '.join(missing)}")
            not_callable = [a for a in JUDGE_METHODS if not callable(getattr(obj, a))]
            if not_callable:
                raise _fail(kind, name, origin, f"{', '.join(not_callable)} must be methods")
        elif not callable(obj):
            raise _fail(kind, name, origin, "a rule grader must be callable as grader(sample, generation) -> Grade")
        _optional(kind, name, origin, obj)
    elif kind == "backends" and not callable(obj):
        raise _fail(kind, name, origin, "a backend plugin is a factory: callable as factory(spec) -> backend")
    elif kind == "groups":
        if not isinstance(obj, TaskGroup):
            raise _fail(kind, name, origin, f"expected a mathusereval.TaskGroup, got {type(obj).__name__}")
        if obj.name != name:
            raise _fail(kind, name, origin, f"the TaskGroup is named {obj.name!r}; register it under that name")
    elif kind == "renderers":
        missing = [a for a in RENDERER_METHODS if not callable(getattr(obj, a, None))]
        if missing:
            raise _fail(kind, name, origin, f"a renderer needs the methods {', '.join(missing)}")


def check_backend(name: str, backend: Any) -> None:
    """A backend object as its factory built it (checked once per run, before anything is sent)."""
    origin = f"built by {type(backend).__module__}.{type(backend).__qualname__}"
    missing = [a for a in (*BACKEND_METHODS, "model") if not hasattr(backend, a)]
    if missing:
        raise _fail("backends", name, origin, f"the backend lacks {', '.join(missing)}")
    not_callable = [a for a in BACKEND_METHODS if not callable(getattr(backend, a))]
    if not_callable:
        raise _fail("backends", name, origin, f"{', '.join(not_callable)} must be methods")
    _optional("backends", name, origin, backend)
