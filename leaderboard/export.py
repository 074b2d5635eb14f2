"""Publication files from stored runs: the overview and one breakdown table per task as Markdown and CSV,
plus the plots and the web page (see `write_leaderboard`).

A breakdown has every metric the task's aggregation reports (MATH per subject and level, MathUserEval per
category and hard-split, AlignBench per category), in the task's published column order (layout.py),
then the aggregation's. Output depends on the runs alone (no dates, sorted rows, fixed number format), so
the same results give byte-identical files.

Runs of one task that are not comparable (another dataset version, prompt, or judge) never share a
column: each such variant gets its own column, ``task [2]``, described under the table.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from mathusereval.errors import MueError
from mathusereval.records import MetricValue, RunManifest, RunResult
from mathusereval.results.analysis import Analysis
from mathusereval.results.runs import run_page_name
from mathusereval.store.guard import write_output

from .layout import file_stem, format_cell, headline_label, label, markdown_text, order, plain_text, scaled, task_of
from .plots import Plot, drawn
from .reference import breakdown_rows
from .reproduction import verdicts
from .sweeps import sweep_html, sweep_plot, sweep_table
from .tables import Table, overview, row_label, with_mark


def comparability(manifest: RunManifest) -> tuple[str, ...]:
    """What must be equal for two runs' numbers to share a column: task version, data, prompt, graders and
    judges (model and prompt)."""
    judges = sorted(
        f"{name}:{j.get('judge_model')}:{str(j.get('prompt_sha256'))[:12]}" for name, j in manifest.judges.items()
    )
    graders = ",".join(manifest.graders)
    return (manifest.task, manifest.task_version, manifest.data_sha256, manifest.prompt_sha256, graders, *judges)


def _describe(signature: tuple[str, ...]) -> str:
    task, version, data, prompt, graders, *judges = signature
    text = f"version {version}, data {data[:12]}, prompt {prompt[:12]}, graders {graders or 'default'}"
    return text + (f", judges {'; '.join(judges)}" if judges else "")


def split_variants(runs: Sequence[RunResult]) -> tuple[dict[str, list[RunResult]], list[str]]:
    """Runs by column name: a task's first variant is its name, others ``task [k]``; plus legend lines."""
    order: dict[str, list[tuple[str, ...]]] = {}
    for run in sorted(runs, key=lambda r: (r.manifest.task, comparability(r.manifest))):
        signatures = order.setdefault(run.manifest.task, [])
        if comparability(run.manifest) not in signatures:
            signatures.append(comparability(run.manifest))
    columns: dict[str, list[RunResult]] = {}
    legend = []
    for task, signatures in sorted(order.items()):
        for k, signature in enumerate(signatures, start=1):
            name = task if k == 1 else f"{task} [{k}]"
            columns[name] = [r for r in runs if comparability(r.manifest) == signature]
            if len(signatures) > 1:
                legend.append(f"{name}: {_describe(signature)}")
    return columns, legend


def breakdown(runs: Sequence[RunResult], task: str = "", reference: bool = False) -> tuple[Table, list[str]]:
    """One row per model, one column per metric the runs report: `task`'s published layout first, then the
    aggregation's order (first run's, then any others); with `reference`, the task's published rows after
    them (every published column). Also returns the published rows' source lines."""
    names: list[str] = []
    rows: dict[str, dict[str, MetricValue]] = {}
    partial_models: dict[str, str] = {}
    behind: dict[tuple[str, str], RunResult] = {}
    for run in runs:
        for metric in run.metrics:
            if metric.name not in names:
                names.append(metric.name)
            rows.setdefault(row_label(run), {})[metric.name] = metric
            behind[(row_label(run), metric.name)] = run
        if run.coverage_mark():
            partial_models[row_label(run)] = run.coverage_mark()

    def headline(model: str) -> float:
        value = rows[model].get(names[0]) if names else None
        return -value.value if value is not None and not math.isnan(value.value) else math.inf

    names = order(task, names)
    ordered = sorted(rows, key=lambda m: (m in partial_models, headline(m), m))
    marks = {(m, n): partial_models[m] for m in partial_models for n in names}
    table_rows = [(m, [rows[m].get(n) for n in names]) for m in ordered]
    sources: list[str] = []
    if reference:
        published, sources = breakdown_rows(task_of(task))
        table_rows += [(model, [cells.get(n) for n in names]) for model, cells in published]
    k = max((int(r.manifest.params.get("n", 1)) for r in runs), default=1)
    headers = {names[0]: headline_label(names[0], k)} if names and k > 1 else {}
    return Table(columns=names, rows=table_rows, marks=marks, runs=behind, headers=headers), sources


def markdown(table: Table, title: str, judge_scale: float, legend: Sequence[str] = ()) -> str:
    lines = [f"## {markdown_text(title)}", ""]
    if judge_scale != 1.0:
        lines += [f"Judge scores are shown ×{judge_scale:g} (1–10 becomes {judge_scale:g}–{10 * judge_scale:g}).", ""]
    lines += [
        "| model | " + " | ".join(markdown_text(table.headers.get(c) or label(c)) for c in table.columns) + " |",
        "|---|" + "---:|" * len(table.columns),
    ]
    for model, cells in table.rows:
        shown = [
            with_mark(format_cell(m, judge_scale), table.mark(model, c))
            for c, m in zip(table.columns, cells, strict=True)
        ]
        lines.append(f"| {markdown_text(model)} | " + " | ".join(markdown_text(x) for x in shown) + " |")
    lines += ["", "Each cell: mean ± standard error (n). Accuracies in percent."]
    if any("partial" in mark for mark in table.marks.values()):
        lines += [
            "[partial s/N]: the run scored s of its N answers (errors, unparseable judgments, budget, not "
            "generated); it is ranked after complete runs and its numbers cover those answers only."
        ]
    if any("edited" in mark for mark in table.marks.values()):
        lines += [
            "[edited]: `mue-eval verify` finds the run changed after it was written; its numbers are not its own."
        ]
    if legend:
        lines += ["", *(f"- {line}" for line in legend)]
    return "\n".join(lines) + "\n"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection")."""
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(text: str) -> str:
    """A cell as written to CSV: one that a spreadsheet would run as a formula (a model named
    ``=cmd|' /C calc'!A0`` or ``@SUM(1+1)``) gets a leading ``'`` so it shows as text, as the OWASP rule says;
    a plain number (``-0.5000``) stays a number."""
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def to_csv(table: Table, judge_scale: float) -> str:
    """The table as CSV; every cell through `csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    suffixes = ("", " stderr", " n", " coverage")
    header = ["model", *(f"{plain_text(c)}{suffix}" for c in table.columns for suffix in suffixes)]
    writer.writerow([csv_cell(cell) for cell in header])
    for model, cells in table.rows:
        row: list[str] = [model]
        for column, metric in zip(table.columns, (scaled(m, judge_scale) for m in cells), strict=True):
            # coverage: empty for a complete run, "partial s/N" otherwise
            if metric is None or math.isnan(metric.value):
                row += ["", "", "", table.mark(model, column)]
            else:
                stderr = "" if metric.stderr is None else f"{metric.stderr:.4f}"
                row += [f"{metric.value:.4f}", stderr, str(metric.n), table.mark(model, column)]
        writer.writerow([csv_cell(cell) for cell in row])
    return out.getvalue()


def write_leaderboard(
    runs: Sequence[RunResult],
    out: Path,
    judge_scale: float = 1.0,
    reference: bool = False,
    analysis: Analysis | None = None,
    reference_name: str | None = None,
) -> list[Path]:
    """Everything under `out`; returns the files written:

    - ``leaderboard.md/.csv``: the overview (with `reference`, plus the published rows of its tasks,
      labelled, with their sources);
    - ``tasks/<task>.md/.csv``: each task's breakdown in its published column layout (with `reference`, and
      whether each run that matches a published row reproduces it: `leaderboard.reproduction`);
    - ``plots/*.png``: category bars, the AlignBench radar, accuracy by MATH level;
    - ``plots/sweep-<task>.png`` and ``sweeps/<task>.md``: checkpoint sweeps, when `analysis` found any;
    - ``index.html``: the self-contained page, and ``runs/<run>.html``: each run's sample-level records.

    Every file is written atomically (a temporary file renamed into place).
    """
    from .audit import write_run_page
    from .html import index_page
    from .plots import task_plots

    pages: list[Path] = []
    rendered: list[RunResult] = []
    for run in runs:  # one page at a time, written as it goes; a run that cannot be read is left out
        path = out / "runs" / f"{run_page_name(run.manifest, run.directory)}.html"
        try:
            write_run_page(run, path, judge_scale)
        except MueError as exc:
            print(f"mue-eval: warning: skipped a run: {exc}", file=sys.stderr)
            continue
        pages.append(path)
        rendered.append(run)
    if not rendered:
        raise MueError("no run could be rendered")
    runs = rendered
    columns, legend = split_variants(runs)
    table, sources = overview(columns, reference)
    files: dict[Path, str | bytes] = {
        out / "leaderboard.md": markdown(table, "mathusereval leaderboard", judge_scale, [*legend, *sources]),
        out / "leaderboard.csv": to_csv(table, judge_scale),
    }
    breakdowns, published, task_notes = {}, {}, {}
    for name, column_runs in columns.items():
        breakdowns[name], published[name] = breakdown(column_runs, name, reference)
        if reference:  # whether each run that matches a published row reproduces it
            task_notes[name] = [v.text() for v in verdicts(column_runs, task_of(name), reference_name)]
            published[name] += task_notes[name]
    plots = {name: task_plots(name, task_table) for name, task_table in breakdowns.items()}
    for name, task_table in breakdowns.items():
        stem = file_stem(name)
        files[out / "tasks" / f"{stem}.md"] = markdown(task_table, name, judge_scale, published[name])
        files[out / "tasks" / f"{stem}.csv"] = to_csv(task_table, judge_scale)
        for plot in plots[name]:
            files[out / "plots" / f"{plot.name}.png"] = plot.png
    sweeps: dict[str, tuple[str, Plot | None]] = {}
    for task in sorted({s.task for s in analysis.sweeps} if analysis else ()):
        of_task = [s for s in analysis.sweeps if s.task == task] if analysis else []
        drawing = drawn(f"sweep-{file_stem(task)}", functools.partial(sweep_plot, of_task, task))
        sweeps[task] = (sweep_html(of_task, judge_scale), drawing)
        files[out / "sweeps" / f"{file_stem(task)}.md"] = sweep_table(of_task, task, judge_scale)
        if drawing is not None:
            files[out / "plots" / f"{drawing.name}.png"] = drawing.png
    partial_runs = [note for note in (run.partial_note() for run in runs) if note]
    notes = [*legend, *sources, *partial_runs]
    files[out / "index.html"] = index_page(
        table, notes, breakdowns, plots, runs, judge_scale, analysis, sweeps, task_notes
    )
    for path, content in files.items():
        write_output(path, content if isinstance(content, bytes) else content.encode())
    return [*pages, *files]
