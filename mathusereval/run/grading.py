"""The grading phases of a run: rule graders on each answer, LLM graders on the lot.

Shared by a fresh run (`task_run.TaskRun`) and a re-grade of a stored one (`regrade.Regrade`); the
metrics are computed from the grades by `mathusereval.results.scoring`, as every reader computes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..plugins import registry
from ..plugins.contracts import JudgeGrader, checked_grade, is_judge
from ..plugins.task import Task
from ..records import Generation, Grade, JudgeUsage, Sample
from ..store import RunStore
from .judging import JudgeRole, role_for
from .progress import Progress

if TYPE_CHECKING:
    from .judge_stream import JudgeQueue

Grader = Callable[[Sample, Generation], Grade]
CHUNK = 512
"""Answers whose texts are read back from the store at once for grading or judging: memory stays flat
however many answers a run holds."""


def safe_grade(grader_name: str, grader: Grader, sample: Sample, generation: Generation) -> Grade:
    """A grader that crashes yields an error grade (counted, never scored), not a crashed run."""
    try:
        return grader(sample, generation)
    except Exception as exc:  # graders see hostile model output; one bad item must not stop the run
        return Grade(
            sample_id=sample.id,
            n_index=generation.n_index,
            grader=grader_name,
            score=None,
            error=f"{exc.__class__.__name__}: {exc}",
        )


def resolve_graders(task: Task, names: Sequence[str] | None) -> dict[str, Any]:
    """The graders of a run, in order (the first is primary): the task's own unless ``--graders`` says."""
    return {name: registry.lookup("graders", name) for name in (names or task.graders)}


class Grading:
    """The grading phases of one run, shared by `TaskRun` and `Regrade`."""

    def __init__(
        self,
        graders: dict[str, Any],
        store: RunStore,
        samples: Sequence[Sample],
        generations: dict[tuple[str, int], Generation],
        n: int,
        roles: dict[str, JudgeRole],
    ) -> None:
        self.rules: dict[str, Grader] = {k: g for k, g in graders.items() if not is_judge(g)}
        self.judges: dict[str, JudgeGrader] = {k: g for k, g in graders.items() if is_judge(g)}
        self.roles = {name: role_for(roles, judge) for name, judge in self.judges.items()}
        missing = [name for name, role in self.roles.items() if role is None]
        if missing:
            raise ConfigError(f"grader {missing[0]!r} is an LLM grader: pass --judge MODEL")
        self.store, self.samples, self.generations, self.n = store, samples, generations, n
        self.by_id = {s.id: s for s in samples}
        self.grades = store.grades()
        self.usage: dict[str, JudgeUsage] = {}

    def _answered(self) -> Iterator[tuple[Sample, int]]:
        for s in self.samples:
            for k in range(self.n):
                if (s.id, k) in self.generations and self.generations[(s.id, k)].ok:
                    yield s, k

    def _texts(self, keys: Iterable[tuple[Sample, int]]) -> list[tuple[Sample, Generation]]:
        """Answers with their texts, read back from the store: only a chunk is in memory at a time."""
        return [(s, self.store.load_generation((s.id, k))) for s, k in keys]

    def record(self, name: str, grade: Grade, sample_id: str | None = None, n_index: int | None = None) -> None:
        """Store a grade under the grader's registered `name` (and the item it was asked about), checked
        (`checked_grade`): what a plugin writes into ``Grade.grader`` never decides where it is filed, and a
        NaN or out-of-range score is a grader error, not a number."""
        grader = self.rules.get(name) or self.judges.get(name)
        grade = checked_grade(
            name,
            grader,
            grade,
            grade.sample_id if sample_id is None else sample_id,
            grade.n_index if n_index is None else n_index,
        )
        self.grades[(grade.sample_id, grade.n_index, name)] = grade
        self.store.add_grade(grade)

    def rule_grade(self, sample: Sample, generation: Generation) -> None:
        for name, grader in self.rules.items():
            if (sample.id, generation.n_index, name) not in self.grades:
                self.record(name, safe_grade(name, grader, sample, generation), sample.id, generation.n_index)

    def rule_backlog(self) -> list[tuple[Sample, int]]:
        """Stored answers some rule grader has not graded yet (a resumed or re-graded run), as (sample, n)."""
        return [(s, k) for s, k in self._answered() if any((s.id, k, name) not in self.grades for name in self.rules)]

    def grade_backlog(self, backlog: list[tuple[Sample, int]], bars: Progress) -> None:
        """Rule-grade the backlog, `CHUNK` answers at a time (their texts read back from the store)."""
        for start in range(0, len(backlog), CHUNK):
            self._grade_chunk(self._texts(backlog[start : start + CHUNK]), bars)

    def _grade_chunk(self, backlog: list[tuple[Sample, Generation]], bars: Progress) -> None:
        """Graders that can grade many items at once (``grade_batch``, e.g. on all cores) take the chunk in
        one call; the rest, and any batch that fails, go item by item."""
        for name, grader in self.rules.items():
            batch = getattr(grader, "grade_batch", None)
            todo = [(s, g) for s, g in backlog if (s.id, g.n_index, name) not in self.grades]
            if batch is None or len(todo) < 2:
                continue
            try:
                results: list[Grade] = batch(todo)
            except Exception:  # noqa: BLE001 - one-by-one grading below records per-item errors
                continue
            asked = {(s.id, g.n_index) for s, g in todo}
            for grade in results if isinstance(results, list) else []:
                if isinstance(grade, Grade) and (grade.sample_id, grade.n_index) in asked:  # others: dropped
                    self.record(name, grade)
        for sample, generation in backlog:
            self.rule_grade(sample, generation)
            bars.advance("grade")

    def judge_queues(self, bars: Progress, origin: str) -> list[JudgeQueue]:
        """One queue per LLM grader, filing its grades here (`record`) and reading texts back from the store."""
        from .judge_stream import JudgeQueue

        queues = []
        for name, judge in self.judges.items():
            role = self.roles[name]
            assert role is not None

            def record(grade: Grade, name: str = name) -> None:
                self.record(name, grade)

            bar = f"judge {name}"
            bars.add(bar, 0)

            def advance(n: int, bar: str = bar) -> None:
                bars.advance(bar, n)

            def grow(bar: str = bar) -> None:
                bars.grow(bar)

            queue = JudgeQueue(name, judge, role, self.store, record, self._load, origin, advance)
            queue.stored_grades = self.grades
            queue.on_add = grow
            queues.append(queue)
        return queues

    def _load(self, sample: Sample, n_index: int) -> Generation:
        return self.store.load_generation((sample.id, n_index))

    def judge_backlog(self) -> list[tuple[Sample, int]]:
        """Stored answers (a resumed or re-graded run): every one goes to each judge queue, which skips the
        answers whose grade is current."""
        return list(self._answered())


def manifest_judges(graders: dict[str, Any], roles: dict[str, JudgeRole]) -> dict[str, Any]:
    """The manifest's ``judges``: which model played each LLM grader, with its settings."""
    described = {}
    for name, grader in graders.items():
        role = role_for(roles, grader) if is_judge(grader) else None
        if role is not None:
            described[name] = role.describe(grader)
    return described


class StreamingRuleGrades:
    """Rule-grades answers as they stream in, on one worker thread beside the event loop.

    One long-lived thread instead of a thread hop per answer: grading a plain answer takes about 0.1 ms, a
    hop about as much again, and a pair that needs the sandboxed sympy stage can take seconds, during which
    the backend's requests in flight must keep moving. Use as a context manager; leaving it waits for the
    queue to drain and re-raises whatever stopped the worker (a full disk, say).

    Memory stays flat when grading falls behind generation (a slow grader, long answers, a fast server):
    the first `WINDOW` answers waiting keep their texts, later ones wait as keys and their texts are read
    back from the store (by offset) when their turn comes. Generation is never held back.
    """

    WINDOW = 64

    def __init__(self, grading: Grading, bars: Progress, after: Callable[[Sample, int], None] | None = None) -> None:
        """`after` is called on the event loop's thread once an answer's rule grades are stored."""
        self.grading, self.bars, self.after = grading, bars, after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._submitted = 0
        self._graded = 0
        self._on_drained: list[Callable[[], None]] = []
        self._queue: queue.SimpleQueue[tuple[Sample, Generation | int] | None] = queue.SimpleQueue()
        self._waiting = 0  # texts held in the queue
        self._count = threading.Lock()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="mue-rule-grading", daemon=True)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            sample, answer = item
            n_index = answer.n_index if isinstance(answer, Generation) else answer
            if isinstance(answer, Generation):
                with self._count:
                    self._waiting -= 1
            if self._error is None:
                try:
                    if not isinstance(answer, Generation):
                        answer = self.grading.store.load_generation((sample.id, answer))
                    self.grading.rule_grade(sample, answer)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread on exit
                    self._error = exc
            self.bars.advance("grade")
            if self._loop is not None:
                # a closed loop (an interrupt): nobody waits for this answer
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._graded_one, sample, n_index)

    def _graded_one(self, sample: Sample, n_index: int) -> None:
        """On the loop: the answer's rule grades are in; its judges may take it."""
        self._graded += 1
        if self.after is not None and self._error is None:
            self.after(sample, n_index)
        if self.drained:
            callbacks, self._on_drained = self._on_drained, []
            for callback in callbacks:
                callback()

    @property
    def drained(self) -> bool:
        """Every answer submitted so far is graded (and handed on)."""
        return self._graded >= self._submitted

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the loop) once every answer submitted so far is graded."""
        if self.drained:
            callback()
        else:
            self._on_drained.append(callback)

    def check(self) -> None:
        """Raise what stopped the worker (a full disk, say)."""
        if self._error is not None:
            raise self._error

    def submit(self, sample: Sample, generation: Generation) -> None:
        """Queue a stored answer for grading (its text kept only while the window has room)."""
        self._submitted += 1
        with self._count:
            keep = self._waiting < self.WINDOW
            self._waiting += keep
        self._queue.put((sample, generation if keep else generation.n_index))

    def __enter__(self) -> StreamingRuleGrades:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: nothing to hand answers on to
            self._loop = None
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc is None:
            raise self._error
