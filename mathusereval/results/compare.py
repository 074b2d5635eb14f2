"""``mue-eval compare A B``: is run B better than run A, on the same items?

Answers are paired by (task, sample id, answer index) and scored by one grader both runs have (`shared_grader`:
A's primary when B has it too, an LLM grader only when the same judge model and prompt played it in both), named
in every row; runs without one are refused. Per item the score is the mean over its paired answers. For the task's headline metric (recomputed on the paired items
with the task's own aggregation) and for each category (the mean item score within it) the report gives A,
B, the delta B - A, its 95% CI (paired bootstrap over items, fixed seed), a paired p-value (exact McNemar
when every answer is pass/fail with one answer per item; else a sign-flip permutation test, exact for few
differing items), n, and B's wins, losses and ties against A, with the items that changed most.

A headline the task computes as something else than an item mean (AlignBench's Overall averages category
means) is resampled and permuted through the task's own aggregation. Runs with other data or prompts are
refused: their items are not the same items.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import ConfigError
from ..plugins import registry
from ..plugins.task import Aggregator
from ..records import Grade, RunManifest, Sample
from ..store import RunStore
from . import stats
from ..store.jsonl import strict
from .labels import distinguishing_suffixes
from .runs import RunParts, find_runs, read_manifest, run_directory_of, run_page_name, verify_run
from .scoring import headline_aggregate, judge_view

AGGREGATE_RESAMPLES = 1000
"""Resamples of the slower path through a task's own aggregation."""


@dataclass(frozen=True)
class Scored:
    """One run's primary grades on the paired answers: per item, the mean score and the answers' scores."""

    parts: RunParts
    manifest: RunManifest
    samples: dict[str, Sample]
    grades: dict[tuple[str, int], Grade]


@dataclass(frozen=True)
class Comparison:
    task: str
    grader: str
    metric: str
    category: str | None
    a: float
    b: float
    delta: float
    ci95: tuple[float, float] | None
    p_value: float | None
    test: str
    n: int
    wins: int
    losses: int
    ties: int
    changed: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ci95"] = list(self.ci95) if self.ci95 is not None else None
        return data


def scored(parts: RunParts, parity: str = "none", grader: str | None = None) -> Scored:
    """A run's grades by `grader` (default: its primary grader) on its scored answers."""
    manifest = read_manifest(parts)
    samples: dict[str, Sample] = {}
    grades: dict[tuple[str, int], Grade] = {}
    primary = grader or (manifest.graders[0] if manifest.graders else None)
    judges = [g for g in manifest.graders if g in manifest.judges]
    for directory in parts:
        store = RunStore(directory)
        samples.update(store.samples())
        own = [g for (_, _, name), g in store.grades().items() if name == primary]
        grades.update({(g.sample_id, g.n_index): g for g in judge_view(own, judges, parity) if g.score is not None})
    return Scored(parts, manifest, samples, grades)


def check_comparable(a_parts: RunParts, a: RunManifest, b_parts: RunParts, b: RunManifest) -> None:
    """Refuse two runs that are not of the same items, naming what differs."""
    differs = [
        f"{name} {getattr(a, name)[:12]} vs {getattr(b, name)[:12]}"
        for name in ("task", "data_sha256", "prompt_sha256")
        if getattr(a, name) != getattr(b, name)
    ]
    if differs:
        raise ConfigError(
            f"{run_directory_of(a_parts)} and {run_directory_of(b_parts)} are not runs of the same items "
            f"({'; '.join(differs)}): a paired comparison needs the same task, data and prompts"
        )


def _graders(manifest: RunManifest) -> tuple[str, ...]:
    """The run's graders, primary first (a manifest from before graders were recorded: the task's)."""
    return manifest.graders or tuple(registry.lookup("tasks", manifest.task).graders)


def _judged_by(manifest: RunManifest, grader: str) -> tuple[object, object]:
    judge = manifest.judges.get(grader)
    return (judge.get("judge_model"), judge.get("prompt_sha256")) if isinstance(judge, dict) else (None, None)


def shared_grader(a_parts: RunParts, a: RunManifest, b_parts: RunParts, b: RunManifest) -> str:
    """The grader two runs are compared on: the first of A's graders (its primary first) that B has too, and
    for an LLM grader played by the same judge model with the same prompt. One run's accuracy against the
    other's judge score is no comparison: without such a grader the runs are refused."""
    a_graders, b_graders = _graders(a), _graders(b)
    for name in a_graders:
        if name in b_graders and _judged_by(a, name) == _judged_by(b, name):
            return name
    raise ConfigError(
        f"{run_directory_of(a_parts)} and {run_directory_of(b_parts)} share no grader to compare on (graded by "
        f"{','.join(a_graders) or 'nothing'} vs {','.join(b_graders) or 'nothing'}, an LLM grader counting only "
        "with the same judge model and prompt): grade both with one, e.g. mue-eval grade RUN --graders answer"
    )


def _pairs(a: Scored, b: Scored) -> list[tuple[str, list[tuple[float, float]]]]:
    """Per item (in A's sample order), the (A, B) scores of its answers that both runs scored."""
    keys = sorted(set(a.grades) & set(b.grades))
    items: dict[str, list[tuple[float, float]]] = {}
    for key in keys:
        items.setdefault(key[0], []).append((float(a.grades[key].score or 0.0), float(b.grades[key].score or 0.0)))
    order = [sid for sid in a.samples if sid in items]
    return [(sid, items[sid]) for sid in order]


def _mean_test(pairs: Sequence[list[tuple[float, float]]], resamples: int) -> tuple[float | None, str]:
    answers = [p for item in pairs for p in item]
    binary = all(x in (0.0, 1.0) and y in (0.0, 1.0) for x, y in answers)
    if binary and all(len(item) == 1 for item in pairs):
        a_only = sum(x > y for x, y in answers)
        b_only = sum(y > x for x, y in answers)
        return stats.mcnemar_exact(a_only, b_only), "exact McNemar"
    differences = [sum(y - x for x, y in item) / len(item) for item in pairs]
    flips = sum(d != 0 for d in differences)
    name = "sign-flip permutation (exact)" if flips <= stats.EXACT_FLIPS else "sign-flip permutation"
    return stats.sign_flip_p(differences, resamples), name


def _changed(
    ids: Sequence[str], pairs: Sequence[list[tuple[float, float]]], b: Scored, top: int
) -> list[dict[str, Any]]:
    """The items whose score changed most (B - A), with their anchor on B's run page."""
    page = run_page_name(b.manifest, run_directory_of(b.parts))
    rows: list[dict[str, Any]] = []
    for sid, item in zip(ids, pairs, strict=True):
        a_score = sum(x for x, _ in item) / len(item)
        b_score = sum(y for _, y in item) / len(item)
        if a_score != b_score:
            link = f"runs/{page}.html#{quote('s-' + sid, safe='')}"
            rows.append({"sample_id": sid, "a": a_score, "b": b_score, "delta": b_score - a_score, "link": link})
    rows.sort(key=lambda r: (-abs(float(r["delta"])), str(r["sample_id"])))
    return rows[:top]


def _row(task: str, grader: str, metric: str, category: str | None, ids: list[str],
         pairs: list[list[tuple[float, float]]], b: Scored, resamples: int, top: int,
         ci: bool = True) -> Comparison:  # fmt: skip
    """A category's comparison, or a task's whose headline is the mean item score."""
    a_items = [sum(x for x, _ in item) / len(item) for item in pairs]
    b_items = [sum(y for _, y in item) / len(item) for item in pairs]
    differences = [y - x for x, y in zip(a_items, b_items, strict=True)]
    p_value, test = _mean_test(pairs, resamples)
    return Comparison(
        task=task,
        grader=grader,
        metric=metric,
        category=category,
        a=sum(a_items) / len(a_items),
        b=sum(b_items) / len(b_items),
        delta=sum(differences) / len(differences),
        ci95=stats.bootstrap_mean_ci(differences, resamples) if ci else None,
        p_value=p_value,
        test=test,
        n=sum(len(item) for item in pairs),
        wins=sum(d > 0 for d in differences),
        losses=sum(d < 0 for d in differences),
        ties=sum(d == 0 for d in differences),
        changed=_changed(ids, pairs, b, top),
    )


class _Resampler:
    """The task's aggregation over re-chosen items (bootstrap) or swapped sides (permutation), with the
    records built once: an item drawn twice is two samples with their own ids."""

    def __init__(
        self, aggregate: Aggregator, samples: list[Sample], pairs: list[list[tuple[float, float]]], grader: str
    ):
        self.aggregate, self.samples, self.pairs, self.grader = aggregate, samples, pairs, grader
        self._copies: dict[tuple[int, int], tuple[Sample, list[Grade], list[Grade]]] = {}

    def _copy(self, k: int, c: int) -> tuple[Sample, list[Grade], list[Grade]]:
        if (k, c) not in self._copies:
            sample = self.samples[k] if c == 0 else dataclasses.replace(self.samples[k], id=f"{self.samples[k].id}#{c}")
            sides = [
                [Grade(sample.id, n, self.grader, pair[side]) for n, pair in enumerate(self.pairs[k])]
                for side in (0, 1)
            ]
            self._copies[(k, c)] = (sample, sides[0], sides[1])
        return self._copies[(k, c)]

    def value(self, side: int, picks: Sequence[int], swap: Sequence[bool] | None = None) -> float:
        seen: dict[int, int] = {}
        chosen: list[Sample] = []
        grades: list[Grade] = []
        for k in picks:
            c = seen[k] = seen.get(k, -1) + 1
            sample, a_grades, b_grades = self._copy(k, c)
            chosen.append(sample)
            grades += b_grades if side != (swap is not None and swap[k]) else a_grades
        metrics = self.aggregate(chosen, grades)
        return metrics[0].value if metrics else math.nan


def _headline(a: Scored, b: Scored, name: str, ids: list[str], pairs: list[list[tuple[float, float]]],
              resamples: int, top: int, ci: bool) -> Comparison:  # fmt: skip
    aggregate = headline_aggregate(registry.lookup("tasks", a.manifest.task), name)
    samples = [a.samples[sid] for sid in ids]
    resampler = _Resampler(aggregate, samples, pairs, name)
    every = list(range(len(ids)))
    a_value, b_value = resampler.value(0, every), resampler.value(1, every)
    metric = aggregate(samples, [Grade(s.id, 0, name, 0.0) for s in samples])[0].name
    mean_row = _row(a.manifest.task, name, metric, None, ids, pairs, b, resamples, top, ci)
    if not (math.isfinite(a_value) and math.isfinite(b_value)):  # no test of a number that is not there
        test = "none: the headline is undefined on the paired items"
        return dataclasses.replace(mean_row, a=a_value, b=b_value, delta=math.nan, ci95=None, p_value=None, test=test)
    if math.isclose(a_value, mean_row.a, abs_tol=1e-9) and math.isclose(b_value, mean_row.b, abs_tol=1e-9):
        return mean_row  # the headline is the mean item score: the exact tests apply
    rounds = min(resamples, AGGREGATE_RESAMPLES)
    delta = b_value - a_value
    interval = (
        stats.bootstrap_ci(len(ids), lambda p: resampler.value(1, p) - resampler.value(0, p), rounds) if ci else None
    )
    p_value = stats.permutation_p(
        len(ids), lambda w: resampler.value(1, every, w) - resampler.value(0, every, w), delta, rounds
    )
    return dataclasses.replace(
        mean_row, a=a_value, b=b_value, delta=delta, ci95=interval, p_value=p_value,
        test="paired permutation through the task's aggregation",
    )  # fmt: skip


def compare_runs(a_parts: RunParts, b_parts: RunParts, *, resamples: int = stats.RESAMPLES, top: int = 20,
                 parity: str = "none", ci: bool = True, categories: bool = True) -> list[Comparison]:  # fmt: skip
    """The comparisons of two runs of one task: the headline, then each category (`ci`: with the bootstrap
    interval; without, only the test, as the leaderboard's marks need)."""
    a_manifest, b_manifest = read_manifest(a_parts), read_manifest(b_parts)
    check_comparable(a_parts, a_manifest, b_parts, b_manifest)
    grader = shared_grader(a_parts, a_manifest, b_parts, b_manifest)
    a, b = scored(a_parts, parity, grader), scored(b_parts, parity, grader)
    paired = _pairs(a, b)
    if not paired:
        raise ConfigError(f"{run_directory_of(a.parts)} and {run_directory_of(b.parts)} share no scored answers")
    ids = [sid for sid, _ in paired]
    pairs = [item for _, item in paired]
    rows = [_headline(a, b, grader, ids, pairs, resamples, top, ci)]
    groups: dict[str, list[int]] = {}
    for k, sid in enumerate(ids):
        groups.setdefault(a.samples[sid].group, []).append(k)
    if categories and len(groups) > 1:
        for group, members in sorted(groups.items()):
            rows.append(_row(a.manifest.task, grader, rows[0].metric, group, [ids[k] for k in members],
                             [pairs[k] for k in members], b, resamples, top, ci))  # fmt: skip
    return rows


def pair_runs(a: Path, b: Path) -> list[tuple[RunParts, RunParts]]:
    """The runs of `a` and `b` (run directories or results trees) matched by task. A side with two runs of
    one task is ambiguous and refused; a task on one side only is left out (the report says so)."""
    sides = []
    for path in (a, b):
        by_task: dict[str, list[RunParts]] = {}
        for parts in find_runs(path):
            by_task.setdefault(read_manifest(parts).task, []).append(parts)
        for task, runs in by_task.items():
            if len(runs) > 1:
                names = ", ".join(str(run_directory_of(r)) for r in runs)
                raise ConfigError(f"{path} holds {len(runs)} runs of {task} ({names}): name the run directories")
        sides.append({task: runs[0] for task, runs in by_task.items()})
    common = sorted(set(sides[0]) & set(sides[1]))
    if not common:
        raise ConfigError(
            f"{a} and {b} have no task in common ({', '.join(sorted(sides[0]))} vs {', '.join(sorted(sides[1]))})"
        )
    return [(sides[0][task], sides[1][task]) for task in common]


def report(
    a: Path, b: Path, *, resamples: int = stats.RESAMPLES, top: int = 20, parity: str = "none"
) -> dict[str, Any]:
    """``mue-eval compare``'s report: every common task's comparisons, as strict JSON (an undefined number is
    null). A run that does not verify (edited after it was written, or unreadable) is refused."""
    rows: list[Comparison] = []
    pairs = pair_runs(a, b)
    for a_parts, b_parts in pairs:
        for parts in (a_parts, b_parts):
            refuse_unverified(parts)
        rows += compare_runs(a_parts, b_parts, resamples=resamples, top=top, parity=parity)
    first_a, first_b = read_manifest(pairs[0][0]), read_manifest(pairs[0][1])
    labels = {"a": first_a.label, "b": first_b.label}
    if labels["a"] == labels["b"]:  # two checkpoints with one file name: the folders that tell them apart
        names = distinguishing_suffixes([first_a.model, first_b.model])
        labels = {"a": names[first_a.model], "b": names[first_b.model]} if first_a.model != first_b.model else labels
    if labels["a"] == labels["b"]:
        labels = {"a": f"{labels['a']} (A: {a})", "b": f"{labels['b']} (B: {b})"}
    differences = sorted({d for a_parts, b_parts in pairs for d in setting_differences(a_parts, b_parts)})
    data = {"a": {"path": str(a), "label": labels["a"]}, "b": {"path": str(b), "label": labels["b"]},
            "resamples": resamples, "differences": differences,
            "comparisons": [r.to_json() for r in rows]}  # fmt: skip
    checked: dict[str, Any] = strict(data)
    return checked


IGNORED_SETTINGS = ("backend.weights",)
"""Settings that differ between any two checkpoints by nature (their content), not by the user's choice."""


def setting_differences(a_parts: RunParts, b_parts: RunParts) -> list[str]:
    """What A and B were run with that differs: backend, generation parameters, other settings (system prompt,
    think, endpoint ...), graders and judges; one ``name: A → B`` line each."""
    a, b = read_manifest(a_parts), read_manifest(b_parts)
    found = [f"backend: {a.backend} → {b.backend}"] if a.backend != b.backend else []
    for prefix, left, right in (("", a.params, b.params), ("", a.settings, b.settings)):
        for key in sorted(set(left) | set(right)):
            if key not in IGNORED_SETTINGS and left.get(key) != right.get(key):
                found.append(f"{prefix}{key}: {left.get(key, 'default')!r} → {right.get(key, 'default')!r}")
    if a.graders != b.graders:
        found.append(f"graders: {','.join(a.graders)} → {','.join(b.graders)}")
    for name in sorted(set(a.judges) | set(b.judges)):
        ja, jb = (a.judges.get(name) or {}).get("judge_model"), (b.judges.get(name) or {}).get("judge_model")
        if ja != jb:
            found.append(f"judge of {name}: {ja} → {jb}")
    return [f"{a.task}: {line}" for line in found]


def refuse_unverified(parts: RunParts) -> None:
    """A run changed after it was written (or one that cannot be checked) is never compared: its numbers are
    not its own. One line, naming the first thing `verify_run` found."""
    for directory in parts:
        verdict = verify_run(directory)
        found = [*verdict.problems, *verdict.unchecked]
        if found:
            raise ConfigError(
                f"{run_directory_of(parts)} does not verify ({found[0]}); a run changed after it was written is "
                "not compared (mue-eval verify names every change)"
            )
