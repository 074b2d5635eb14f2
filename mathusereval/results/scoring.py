"""A run's numbers from its records: metrics and counts, computed the same way by the run that writes them
and by every reader (leaderboard, ``results.load``, ``verify``, ``compare``), so a number never depends on
who computed it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from ..plugins import registry
from ..plugins.contracts import is_judge
from ..plugins.metrics import accuracy
from ..plugins.task import Aggregator, Task
from ..records import Generation, Grade, MetricValue, RunCounts, Sample

Grades = Mapping[tuple[str, int, str], Grade]


def judge_view(grades: Sequence[Grade], judge_names: Sequence[str], parity: str) -> list[Grade]:
    """Grades as the aggregation should see them.

    ``parity="upstream"`` reproduces upstream arithmetic for judge grades: the first reply's upstream
    parse, -1 included when upstream's regexes miss (THUDM/AlignBench judge.py ``post_process``), and parse
    failures count as -1 instead of being left out. Failed calls and budget stops stay out either way:
    upstream aborts there.
    """
    if parity != "upstream":
        return list(grades)
    out = []
    for grade in grades:
        upstream = grade.details.get("upstream_score")
        if grade.grader in judge_names and upstream is not None:
            grade = dataclasses.replace(grade, score=float(upstream), error=None)
        out.append(grade)
    return out


def _judges(grader_names: Sequence[str]) -> list[str]:
    return [name for name in grader_names if is_judge(registry.lookup("graders", name))]


def _of(grades: Grades, name: str, ids: set[str], n: int) -> list[Grade]:
    return [g for (sid, k, grader), g in grades.items() if grader == name and sid in ids and k < n]


def headline_aggregate(task: Task, primary: str) -> Aggregator:
    """The aggregation of a run's primary grades: the task's own when the grader scores on the task's scale
    (a judge in place of the task's judge), else the grader's own (Math-Critique on GSM8K: avg-score)."""
    grader = registry.lookup("graders", primary)
    same_scale = is_judge(grader) == is_judge(registry.lookup("graders", task.graders[0]))
    aggregate: Aggregator = task.aggregate if same_scale else getattr(grader, "aggregate", accuracy)
    return aggregate


def compute_metrics(
    task: Task, grader_names: Sequence[str], samples: Sequence[Sample], grades: Grades, n: int, parity: str = "none"
) -> tuple[MetricValue, ...]:
    """Metrics of a run from its grades, the primary grader's first, then each other grader's own metrics
    under its name. The primary's go through the task's aggregation when it scores on the task's scale (a
    judge in place of the task's judge: ``--graders math-critique`` on MathUserEval), else through the
    grader's own (Math-Critique on GSM8K: avg-score and hard-split)."""
    ids = {s.id for s in samples}
    judges = _judges(grader_names)
    primary_aggregate = headline_aggregate(task, grader_names[0])
    metrics = list(primary_aggregate(samples, judge_view(_of(grades, grader_names[0], ids, n), judges, parity)))
    for name in grader_names[1:]:
        aggregate = getattr(registry.lookup("graders", name), "aggregate", None)
        if aggregate is not None:
            view = judge_view(_of(grades, name, ids, n), judges, parity)
            metrics += [dataclasses.replace(m, name=f"{name}/{m.name}") for m in aggregate(samples, view)]
    return tuple(metrics)


def count_outcomes(
    grader_names: Sequence[str],
    samples: Sequence[Sample],
    generations: Mapping[tuple[str, int], Generation],
    grades: Grades,
    n: int,
    parity: str = "none",
    items: int | None = None,
) -> RunCounts:
    """What a reader needs to trust the metrics: every expected answer slot (`items` x `n`; `items` is the
    whole task's count for a sharded run, so a missing shard shows) is scored by the primary grader or
    counted under why not. Under ``--parity upstream`` an unparseable judgment scores -1, so it is covered."""
    ids = {s.id for s in samples}
    wanted = [(s.id, k) for s in samples for k in range(n)]
    expected = (items if items is not None else len(samples)) * n
    gens = [generations[key] for key in wanted if key in generations]
    primary = judge_view(_of(grades, grader_names[0], ids, n), _judges(grader_names), parity)
    graded_keys = {(g.sample_id, g.n_index) for g in primary}
    unscored = [g for g in primary if g.score is None]
    unparseable = sum(bool(g.details.get("parse_failure")) for g in unscored)
    over_budget = sum("budget" in (g.error or "") for g in unscored)
    errors = sum(not g.ok for g in gens)
    answered_ungraded = sum(g.ok and (g.sample_id, g.n_index) not in graded_keys for g in gens)
    mine = [g for (sid, k, name), g in grades.items() if name in grader_names and sid in ids and k < n]
    tools = _tool_counts(gens)
    return RunCounts(
        samples=items if items is not None else len(samples),
        expected=expected,
        graded=len(primary) - len(unscored),
        unparseable=unparseable,
        over_budget=over_budget,
        failed_grades=len(unscored) - unparseable - over_budget,
        ungraded=expected - len(primary),
        generations=sum(g.ok for g in gens),
        errors=errors,
        missing=expected - len(gens),
        grades_missing=answered_ungraded,
        truncated=sum(g.ok and g.finish_reason == "length" for g in gens),
        grader_errors=sum(g.error is not None for g in primary),
        parse_failures=sum(bool(g.details.get("parse_failure")) for g in mine),
        prompt_tokens=sum(g.usage.prompt_tokens for g in gens),
        completion_tokens=sum(g.usage.completion_tokens for g in gens),
        **tools,
    )


def _tool_counts(generations: Sequence[Generation]) -> dict[str, int]:
    """Programs of tool-integrated answers (stored steps are hostile: anything but a step object is skipped)."""
    from ..tir.protocol import MAX_FUNC_CALLS
    from ..tir.sandbox import TIMEOUT_ERROR

    counts = dict.fromkeys(("programs", "program_errors", "program_timeouts", "call_limit_reached"), 0)
    for generation in generations:
        ran = [s for s in generation.steps if isinstance(s, dict) and s.get("code") is not None]
        failed = [s for s in ran if s.get("exit_status") not in (0, None)]
        counts["programs"] += len(ran)
        counts["program_errors"] += len(failed)
        counts["program_timeouts"] += sum(s.get("output") == TIMEOUT_ERROR for s in failed)
        counts["call_limit_reached"] += len(ran) >= MAX_FUNC_CALLS
    return counts
