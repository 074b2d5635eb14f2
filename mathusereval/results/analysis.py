"""What the leaderboard shows beside the numbers, computed on the read side: paired significance between runs
that share items (the "≈" marks), and checkpoint sweeps (a metric over checkpoints, with each step's change
against the previous one).

A metric is tested paired when it is the task's headline (`mathusereval.results.compare`) or the mean item
score of one group of items (a category, subject, level ...: found by matching the metric's value and n in
both runs); any other metric falls back to the unpaired z-test the renderer knows.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import ConfigError
from ..records import GROUP_KEYS, LOCAL_BACKENDS, MetricValue, RunResult
from .compare import Scored, _mean_test, compare_runs, scored
from .labels import base_label, step_of

ALPHA = 0.05
TIE_RESAMPLES = 400
"""For the marks a 0.05 decision needs, not a precise p-value (a p at 1/401 resolution)."""


def _key(run: RunResult) -> tuple[str, ...]:
    return tuple(str(d) for d in run.record_dirs)


@dataclass
class PairedTests:
    """Paired p-values between runs of the same items, computed once per pair and metric, on demand."""

    resamples: int = TIE_RESAMPLES
    parity: str = "none"
    _scored: dict[tuple[str, ...], Scored] = field(default_factory=dict)
    _p: dict[tuple[tuple[str, ...], tuple[str, ...], str], float | None] = field(default_factory=dict)

    def _of(self, run: RunResult) -> Scored:
        if _key(run) not in self._scored:
            self._scored[_key(run)] = scored(run.record_dirs, self.parity)
        return self._scored[_key(run)]

    def p_value(self, a: RunResult, b: RunResult, metric: str) -> float | None:
        """The paired p-value of `metric` between two runs, or None when they share no items or the metric
        cannot be tested paired."""
        same = ("task", "data_sha256", "prompt_sha256")
        if any(getattr(a.manifest, k) != getattr(b.manifest, k) for k in same) or a.record_dirs == b.record_dirs:
            return None
        key = (_key(a), _key(b), metric)
        if key not in self._p:
            self._p[key] = self._compute(a, b, metric)
        return self._p[key]

    def tie(self, a: RunResult, b: RunResult, metric: str) -> bool | None:
        """True when the paired test finds no difference at 5%; None when there is no paired test."""
        p = self.p_value(a, b, metric)
        return None if p is None else p >= ALPHA

    def _compute(self, a: RunResult, b: RunResult, metric: str) -> float | None:
        if a.metrics and metric == a.metrics[0].name:
            try:
                rows = compare_runs(a.record_dirs, b.record_dirs, resamples=self.resamples, top=0, parity=self.parity,
                                    ci=False, categories=False)  # fmt: skip
                return rows[0].p_value
            except ConfigError:
                return None
        mine = {m.name: m for m in a.metrics}.get(metric)
        theirs = {m.name: m for m in b.metrics}.get(metric)
        if mine is None or theirs is None:
            return None
        sa, sb = self._of(a), self._of(b)
        for members in _groups(sa):
            if _is_mean(sa, members, mine) and _is_mean(sb, members, theirs):
                pairs = [[(float(sa.grades[k].score or 0), float(sb.grades[k].score or 0)) for k in _answers(sa, sid) if k in sb.grades]
                         for sid in members]  # fmt: skip
                pairs = [p for p in pairs if p]
                return _mean_test(pairs, self.resamples)[0] if pairs else None
        return None


def _groups(run: Scored) -> list[list[str]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for sid, sample in run.samples.items():
        for key in GROUP_KEYS:
            value = sample.metadata.get(key)
            if value not in (None, ""):
                groups.setdefault((key, str(value)), []).append(sid)
    return list(groups.values())


def _answers(run: Scored, sid: str) -> list[tuple[str, int]]:
    return sorted(k for k in run.grades if k[0] == sid)


def _is_mean(run: Scored, members: Sequence[str], metric: MetricValue) -> bool:
    per_item = []
    for sid in members:
        scores = [run.grades[k].score for k in _answers(run, sid)]
        if scores:
            per_item.append(sum(float(s or 0) for s in scores) / len(scores))
    return (
        bool(per_item)
        and len(per_item) == metric.n
        and math.isclose(sum(per_item) / len(per_item), metric.value, abs_tol=1e-9)
    )


@dataclass(frozen=True)
class SweepPoint:
    label: str
    x: float
    run: RunResult
    metric: MetricValue
    delta: float | None = None
    """Against the previous checkpoint (by training step when every point has one, else by x): the change of
    the headline, later minus earlier, and its paired p-value."""
    p_value: float | None = None
    step: int | None = None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


@dataclass(frozen=True)
class Sweep:
    """A task's headline over the checkpoints of one model family (``ckpt-100``, ``ckpt-200`` ...), in
    training order (by step, else by x)."""

    task: str
    family: str
    points: tuple[SweepPoint, ...]
    x_label: str = "checkpoint step"
    chance: float | None = None
    """The random-guess level of a choice task (mean of 1 / number of options), drawn as a line."""


_NUMBER = re.compile(r"\d+")


def _family(run: RunResult) -> tuple[str, int] | None:
    """The run's family (its row name with the step written ``{step}``) and its step."""
    label = base_label(run.row)
    step = step_of(run)
    if step is None:
        return None
    numbers = [m for m in _NUMBER.finditer(label) if int(m.group()) == step]
    if not numbers:  # a step given explicitly that the name does not carry: the family is the name's folder
        return (str(PurePosixPath(label).parent) if "/" in label else "steps"), step
    last = numbers[-1]
    return label[: last.start()] + "{step}" + label[last.end() :], step


def read_sweep_x(path: Path) -> tuple[dict[str, tuple[float, str]], str]:
    """``--sweep-x FILE.csv``: ``model,value[,label]`` per line (a header line is allowed and names the
    axis); returns model -> (value, label) and the axis name."""
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--sweep-x {path}: cannot be read ({exc})") from exc
    axis, table = "value", {}
    for lineno, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) not in (2, 3):
            raise ConfigError(f"--sweep-x {path}:{lineno}: expected model,value[,label]")
        try:
            value = float(row[1])
        except ValueError:
            if lineno == 1:
                axis = row[1].strip() or axis
                continue
            raise ConfigError(f"--sweep-x {path}:{lineno}: value {row[1]!r} is not a number") from None
        table[row[0].strip()] = (value, row[2].strip() if len(row) == 3 else row[0].strip())
    return table, axis


def names_of(run: RunResult) -> list[str]:
    """Every name a user sees for a run's model, any of which keys ``--sweep-x``: the row, the row without
    its brackets, ``--name``, the model as given and resolved, its results directory."""
    model = run.manifest.model
    names = [run.row, base_label(run.row), run.manifest.name, model, run.directory.parent.name]
    if run.manifest.backend in LOCAL_BACKENDS:
        path = Path(model)
        names += [str(path.resolve()), str(path.parent) if path.suffix == ".gguf" else str(path)]
        names += [path.parent.name if path.suffix == ".gguf" else path.name]
    return [n for n in dict.fromkeys(names) if n]


def _answers_to(run: RunResult, key: str) -> bool:
    """A key names the run: one of its names, or the trailing folders of its model's path
    (``ckpts/checkpoint-300`` for ``exp/ckpts/checkpoint-300/model.gguf``)."""
    key = key.strip().rstrip("/")
    if key in (n.rstrip("/") for n in names_of(run)):
        return True
    wanted = PurePosixPath(key).parts
    if run.manifest.backend not in LOCAL_BACKENDS or not wanted:
        return False
    model = PurePosixPath(run.manifest.model)
    return any(p.parts[-len(wanted) :] == wanted for p in (model, model.parent) if len(p.parts) >= len(wanted))


def _hit(run: RunResult, sweep_x: dict[str, tuple[float, str]]) -> tuple[float, str] | None:
    return next((value for key, value in sweep_x.items() if _answers_to(run, key)), None)


def unmatched_sweep_x(runs: Sequence[RunResult], sweep_x: dict[str, tuple[float, str]]) -> tuple[list[str], list[str]]:
    """The ``--sweep-x`` keys no run answers to, and the row names the runs do answer to (for the warning)."""
    known = sorted({n for r in runs for n in (r.row, base_label(r.row))})
    matched = {k for r in runs for k in sweep_x if _hit(r, {k: sweep_x[k]}) is not None}
    return sorted(set(sweep_x) - matched), known


def _chance(run: RunResult) -> float | None:
    s = scored(run.record_dirs)
    options = [len(x.metadata["choices"]) for x in s.samples.values() if isinstance(x.metadata.get("choices"), list)]
    if not options or len(options) != len(s.samples):
        return None
    return sum(1 / n for n in options if n) / len(options)


def find_sweeps(runs: Sequence[RunResult], sweep_x: dict[str, tuple[float, str]] | None = None,
                x_label: str = "value", tests: PairedTests | None = None) -> list[Sweep]:  # fmt: skip
    """Sweeps among `runs`: per task, the runs whose row names differ only in one number (the step, or a
    step given explicitly), or, with `sweep_x`, the runs the file names (by any name `names_of` lists), with
    their value as x. Each point's change is against the checkpoint before it in training order."""
    tests = tests or PairedTests()
    found: list[Sweep] = []
    for task in sorted({r.manifest.task for r in runs}):
        families: dict[str, list[tuple[float, str, RunResult, int | None]]] = {}
        # a run with nothing scored (a checkpoint deleted before its first answer) is no point of a curve
        for run in (r for r in runs if r.manifest.task == task and r.metrics and not math.isnan(r.metrics[0].value)):
            fam = _family(run)
            if sweep_x is not None:
                hit = _hit(run, sweep_x)
                if hit is not None:
                    families.setdefault("sweep", []).append((hit[0], hit[1], run, fam[1] if fam else None))
            elif fam is not None:
                families.setdefault(fam[0], []).append((float(fam[1]), run.row, run, fam[1]))
        for family, members in sorted(families.items()):
            if len({x for x, _, _, _ in members}) < 2:
                continue
            stepped = all(step is not None for *_, step in members)
            members.sort(key=lambda m: (m[3], m[0]) if stepped else (m[0], 0))
            points: list[SweepPoint] = []
            for x, label, run, step in members:
                point = SweepPoint(label, x, run, run.metrics[0], step=step)
                if points:
                    previous = points[-1].run
                    p = tests.p_value(previous, run, run.metrics[0].name)
                    delta = run.metrics[0].value - previous.metrics[0].value
                    point = dataclasses.replace(point, delta=delta, p_value=p)
                points.append(point)
            axis = x_label if sweep_x is not None else "checkpoint step"
            found.append(Sweep(task, family, tuple(points), axis, _chance(members[0][2])))
    return found


@dataclass
class Analysis:
    """Everything the renderer shows that needs the records: paired ties and sweeps."""

    tests: PairedTests = field(default_factory=PairedTests)
    sweeps: list[Sweep] = field(default_factory=list)

    def tie(self, a: RunResult, b: RunResult, metric: str) -> bool | None:
        return self.tests.tie(a, b, metric)


__all__ = ["Analysis", "PairedTests", "Sweep", "SweepPoint", "find_sweeps", "names_of", "read_sweep_x", "unmatched_sweep_x"]
