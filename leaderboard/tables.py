"""Leaderboard tables rebuilt from stored runs alone: no model is called.

Each run directory under the results root (``<model>/<task>/manifest.json``) contributes the headline
metric of its task. Metrics are recomputed from ``samples.jsonl`` and ``grades.jsonl`` with the task's own
aggregation when the task is installed, and read from ``summary.json`` otherwise. A run that cannot be
read is reported and skipped; the rest still render.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mathusereval import registry
from mathusereval.contracts import is_judge
from mathusereval.errors import ConfigError, MueError
from mathusereval.grading import compute_metrics, coverage_counts
from mathusereval.judging import judge_view
from mathusereval.pipeline import RunResult
from mathusereval.records import MetricValue, RunManifest
from mathusereval.store import MANIFEST, SUMMARY, RunStore, read_json

from .layout import format_cell, markdown_text, plain_text
from .reference import is_published, reference_rows


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple[str, list[MetricValue | None]]]
    marks: dict[tuple[str, str], str] = field(default_factory=dict)
    """(row, column) -> "partial 6/567" for cells whose run did not score every answer."""

    def mark(self, row: str, column: str) -> str:
        return self.marks.get((row, column), "")


def _metrics_from_records(
    stores: Sequence[RunStore], manifest: RunManifest, parity: str
) -> tuple[list[MetricValue], dict[str, int]] | None:
    try:
        task = registry.lookup("tasks", manifest.task)
        names = manifest.graders or task.graders
        for name in names:
            registry.lookup("graders", name)
    except ConfigError:
        return None
    samples = [sample for store in stores for sample in store.samples().values()]
    grades = {key: grade for store in stores for key, grade in store.grades().items()}
    n = int(manifest.params.get("n", 1))
    ids = {s.id for s in samples}
    items = max(manifest.shard_items, len(samples)) if manifest.shard else len(samples)  # a missing shard
    judges = [name for name in names if is_judge(registry.lookup("graders", name))]
    primary = [g for (sid, k, name), g in grades.items() if name == names[0] and sid in ids and k < n]
    view = judge_view(primary, judges, parity)  # --parity upstream scores unparseable judgments as -1
    counts = {"samples": items, **coverage_counts(view, items * n)}
    return compute_metrics(task, names, samples, grades, n, parity), counts


def load_run(directory: Path, parity: str = "none") -> RunResult:
    """One stored run with its metrics recomputed from its records (``parity="upstream"``: judge scores
    aggregated the upstream way, -1 for unparseable replies)."""
    store = RunStore(directory)
    manifest = store.existing_manifest()
    if manifest is None:
        raise ConfigError(f"{directory}: no {MANIFEST}")
    summary_path = directory / SUMMARY
    summary = read_json(summary_path) if summary_path.exists() else {}
    recomputed = _metrics_from_records([store], manifest, parity)
    stored = summary.get("counts", {}) if isinstance(summary, dict) else {}
    if recomputed is None:
        metrics = [MetricValue.from_json(m) for m in summary.get("metrics", [])]
        expected = int(stored.get("samples", 0)) * int(manifest.params.get("n", 1))
        counts = {**stored, "expected": expected}
    else:
        metrics, counts = recomputed
        _split_ungraded(counts, int(stored.get("errors", 0) or 0))
    return RunResult(manifest=manifest, directory=directory, metrics=metrics, counts=counts)


def _split_ungraded(counts: dict[str, int], errors: int) -> None:
    """Answers never graded are failed generations (the run summaries count them) or never generated."""
    counts["errors"] = min(errors, counts["ungraded"])
    counts["missing"] = counts["ungraded"] - counts["errors"]


_REASONS = (
    ("unparseable", "unparseable judgments"),
    ("over_budget", "over budget"),
    ("errors", "answer errors"),
    ("missing", "not generated"),
    ("failed_grades", "grader errors"),
)


def coverage(run: RunResult) -> tuple[int, int]:
    """(scored, expected): answers with a score against items x samples. Under ``--parity upstream`` an
    unparseable judgment scores -1, as upstream counts it, so it is covered."""
    expected = int(run.counts.get("expected", 0))
    return min(int(run.counts.get("graded", expected)), expected), expected


def partial(run: RunResult) -> str | None:
    """A note when a run scored fewer answers than it asked for (killed, out of budget, unparseable
    judgments, errors), with the reason counts; None for a complete run."""
    scored, expected = coverage(run)
    if scored >= expected:
        return None
    reasons = ", ".join(f"{run.counts[k]} {label}" for k, label in _REASONS if run.counts.get(k))
    return (
        f"{run.directory}: partial run, {scored} of {expected} answers scored ({scored / expected:.0%})"
        f"{': ' + reasons if reasons else ''}; its numbers cover those only"
    )


def coverage_mark(run: RunResult) -> str:
    """The short mark a partial run's cell carries: ``partial 6/567``; "" for a complete run."""
    scored, expected = coverage(run)
    return f"partial {scored}/{expected}" if scored < expected else ""


def load_sharded(directories: Sequence[Path], parity: str = "none") -> RunResult:
    """The shards of one run (``--shard I/N``) as one run: metrics over the union of their records, the
    whole task's items as the expected count (a missing or unfinished shard makes it partial)."""
    stores = [RunStore(d) for d in directories]
    manifests = [s.existing_manifest() for s in stores]
    first = manifests[0]
    assert first is not None
    if len({m.fingerprint if m else "" for m in manifests}) > 1:
        raise ConfigError(
            f"{directories[0].parent}: its shards were run with different settings; not merged, not shown"
        )
    run_id = first.run_id.rsplit("/", 1)[0]
    manifest = dataclasses.replace(first, run_id=run_id)
    recomputed = _metrics_from_records(stores, manifest, parity)
    if recomputed is None:
        raise ConfigError(f"{directories[0].parent}: task {first.task!r} is not installed; sharded runs need it")
    metrics, counts = recomputed
    errors = 0
    for directory in directories:
        summary = read_json(directory / SUMMARY) if (directory / SUMMARY).exists() else {}
        errors += int((summary.get("counts") or {}).get("errors", 0) or 0) if isinstance(summary, dict) else 0
    _split_ungraded(counts, errors)
    parent = directories[0].parent
    return RunResult(manifest, parent, metrics, counts, parts=tuple(directories))


def collect_runs(results: Path, parity: str = "none") -> tuple[list[RunResult], list[str]]:
    """Every readable run below `results`, plus one message per run that could not be read. The shards of
    a run (``shard-I-of-N`` directories) are read as one run."""
    runs: list[RunResult] = []
    problems: list[str] = []
    shards: dict[tuple[Path, str], list[Path]] = {}
    for manifest_path in sorted(results.glob(f"**/{MANIFEST}")):
        directory = manifest_path.parent
        try:
            manifest = RunStore(directory).existing_manifest()
            if manifest is not None and manifest.shard:
                shards.setdefault((directory.parent, manifest.shard.split("/")[1]), []).append(directory)
                continue
            runs.append(load_run(directory, parity))
        except MueError as exc:
            problems.append(str(exc))
    for _, directories in sorted(shards.items()):
        try:
            runs.append(load_sharded(directories, parity))
        except MueError as exc:
            problems.append(str(exc))
    for records in sorted(results.glob("**/generations.jsonl")):  # a run whose manifest was deleted
        if not (records.parent / MANIFEST).exists():
            problems.append(f"{records.parent}: answers but no {MANIFEST} (deleted or never written); not shown")
    return runs, problems


def model_label(manifest: RunManifest) -> str:
    """A row's name: a local model file or directory by its own name, not its full path."""
    if manifest.backend in ("llamacpp", "vllm", "ray"):
        return plain_text(Path(manifest.model).name.removesuffix(".gguf"))
    return plain_text(manifest.model)


def overview(columns: Mapping[str, Sequence[RunResult]], reference: bool = False) -> tuple[Table, list[str]]:
    """One row per model, one column per entry of `columns` (the headline metric of its runs), best rows
    first; with `reference`, the published rows of those columns after them (labelled ``[published]``).
    Also returns the published rows' source lines (empty without `reference`)."""
    cells: dict[str, dict[str, MetricValue]] = {}
    marks: dict[tuple[str, str], str] = {}
    for name, column_runs in columns.items():
        for run in column_runs:
            if run.metrics:
                cells.setdefault(model_label(run.manifest), {})[name] = run.metrics[0]
                if coverage_mark(run):
                    marks[(model_label(run.manifest), name)] = coverage_mark(run)
    rows = [(model, [by_column.get(name) for name in columns]) for model, by_column in cells.items()]

    def mean_score(row: tuple[str, list[MetricValue | None]]) -> float:
        values = [m.value for m in row[1] if m is not None and not math.isnan(m.value)]
        return -sum(values) / len(values) if values else math.inf

    # a row with a partial run is never ranked among complete ones: complete rows first, then partial
    rows.sort(key=lambda row: (any((row[0], c) in marks for c in columns), mean_score(row), row[0]))
    sources: list[str] = []
    if reference:
        published, sources = reference_rows(list(columns))
        rows += [(label, [by_column.get(name) for name in columns]) for label, by_column in published]
    return Table(columns=list(columns), rows=rows, marks=marks), sources


def build_table(runs: Sequence[RunResult], reference: bool = False) -> Table:
    """The overview with one column per task."""
    tasks = sorted({run.manifest.task for run in runs})
    return overview({task: [r for r in runs if r.manifest.task == task] for task in tasks}, reference)[0]


def best_per_column(table: Table) -> list[float | None]:
    """The highest value of each column among the user's own rows (published rows are not competing)."""
    best: list[float | None] = []
    for k in range(len(table.columns)):
        # published rows and partial runs do not compete for "best"
        values = [
            cells[k]
            for model, cells in table.rows
            if not is_published(model) and not table.mark(model, table.columns[k])
        ]
        present = [m.value for m in values if m is not None and not math.isnan(m.value)]
        best.append(max(present) if present else None)
    return best


def with_mark(text: str, mark: str) -> str:
    """A cell's text with its run's partial-coverage mark: ``6.17 ± 0.30 (n=6) [partial 6/567]``."""
    return f"{text} [{mark}]" if mark else text


def to_markdown(table: Table) -> str:
    header = "| model | " + " | ".join(markdown_text(c) for c in table.columns) + " |"
    rule = "|---|" + "---|" * len(table.columns)
    lines = [header, rule]
    lines += [
        "| "
        + markdown_text(model)
        + " | "
        + " | ".join(with_mark(format_cell(m), table.mark(model, c)) for c, m in zip(table.columns, cells, strict=True))
        + " |"
        for model, cells in table.rows
    ]
    return "\n".join(lines) + "\n"


def print_table(table: Table, title: str = "mathusereval leaderboard") -> None:
    """A rich table on stdout, best value per column in bold green; accuracies in percent, ± one standard
    error."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    rich_table = RichTable(title=title)
    rich_table.add_column("model", style="bold")
    for column in table.columns:
        rich_table.add_column(column, justify="right")
    best = best_per_column(table)
    for model, cells in table.rows:
        shown = [
            f"[bold green]{format_cell(m)}[/]"
            if m is not None and m.value == best[k] and not is_published(model) and not table.mark(model, c)
            else escape(with_mark(format_cell(m), table.mark(model, c)))
            for k, (c, m) in enumerate(zip(table.columns, cells, strict=True))
        ]
        # model names are data, not markup: "[published]" or "model[v2]" must print as written
        rich_table.add_row(escape(model), *shown)
    Console().print(rich_table)
