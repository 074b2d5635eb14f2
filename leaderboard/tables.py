"""Leaderboard tables from runs already read (`mathusereval.results`): no model is called, nothing is
recomputed here. Each run contributes the headline metric of its task to the overview."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mathusereval.records import MetricValue, RunResult

from .groups import group_cells
from .layout import format_cell, markdown_text, plain_text
from .reference import is_published, reference_rows


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple[str, list[MetricValue | None]]]
    marks: dict[tuple[str, str], str] = field(default_factory=dict)
    """(row, column) -> "partial 6/567" for cells whose run did not score every answer."""
    runs: dict[tuple[str, str], RunResult] = field(default_factory=dict)
    """(row, column) -> the run behind the cell (none for published rows), for paired tests."""
    headers: dict[str, str] = field(default_factory=dict)
    """Column -> its header where it is not the column's own name (``gsm8k (avg@8)``)."""

    def mark(self, row: str, column: str) -> str:
        return self.marks.get((row, column), "")


def row_label(run: RunResult) -> str:
    """A run's row name (`RunResult.row`: disambiguated among the runs shown), printable."""
    return plain_text(run.row)


def overview(columns: Mapping[str, Sequence[RunResult]], reference: bool = False) -> tuple[Table, list[str]]:
    """One row per model, one column per entry of `columns` (the headline metric of its runs), best rows
    first; with `reference`, the published rows of those columns after them (labelled ``[published]``).
    Also returns the published rows' source lines (empty without `reference`)."""
    cells: dict[str, dict[str, MetricValue]] = {}
    marks: dict[tuple[str, str], str] = {}
    behind: dict[tuple[str, str], RunResult] = {}
    for name, column_runs in columns.items():
        for run in column_runs:
            if run.metrics:
                cells.setdefault(row_label(run), {})[name] = run.metrics[0]
                behind[(row_label(run), name)] = run
                if run.coverage_mark():
                    marks[(row_label(run), name)] = run.coverage_mark()
    names = list(columns)
    for group, by_row in group_cells(names, cells).items():  # after the tasks: the group averages
        names.append(group)
        for row, value in by_row.items():
            cells[row][group] = value
    rows = [(model, [by_column.get(name) for name in names]) for model, by_column in cells.items()]

    def mean_score(row: tuple[str, list[MetricValue | None]]) -> float:
        values = [m.value for m in row[1] if m is not None and not math.isnan(m.value)]
        return -sum(values) / len(values) if values else math.inf

    # a row with a partial run is never ranked among complete ones: complete rows first, then partial
    rows.sort(key=lambda row: (any((row[0], c) in marks for c in names), mean_score(row), row[0]))
    sources: list[str] = []
    if reference:
        published, sources = reference_rows(names)
        rows += [(label, [by_column.get(name) for name in names]) for label, by_column in published]
    headers = {}
    for name, column_runs in columns.items():
        k = max((int(r.manifest.params.get("n", 1)) for r in column_runs), default=1)
        shown = tir_header(name)
        if k > 1:
            headers[name] = f"{shown} (avg@{k})"
        elif shown != name:
            headers[name] = shown
    return Table(columns=names, rows=rows, marks=marks, runs=behind, headers=headers), sources


def tir_header(task: str) -> str:
    """A tool-integrated variant's column says so beside its base task's: ``math500-tir`` -> ``math500 [tir]``
    (tasks/tir.py names the variants)."""
    return f"{task.removesuffix('-tir')} [tir]" if task.endswith("-tir") else task


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
    header = "| model | " + " | ".join(markdown_text(table.headers.get(c, c)) for c in table.columns) + " |"
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


def print_table(table: Table, title: str = "mathusereval leaderboard", judge_scale: float = 1.0) -> None:
    """A rich table on stdout, best value per column in bold green; accuracies in percent, ± one standard
    error; judge scores times `judge_scale` (said in the caption)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    caption = "mean ± standard error (n); accuracies in percent"
    if judge_scale != 1.0:
        caption += f"; judge scores ×{judge_scale:g} (1–10 becomes {judge_scale:g}–{10 * judge_scale:g})"
    rich_table = RichTable(title=title, caption=caption)
    rich_table.add_column("model", style="bold", overflow="fold")
    for column in table.columns:
        rich_table.add_column(escape(plain_text(table.headers.get(column, column))), justify="right")
    best = best_per_column(table)
    for model, cells in table.rows:
        shown = [
            f"[bold green]{format_cell(m, judge_scale)}[/]"
            if m is not None and m.value == best[k] and not is_published(model) and not table.mark(model, c)
            else escape(with_mark(format_cell(m, judge_scale), table.mark(model, c)))
            for k, (c, m) in enumerate(zip(table.columns, cells, strict=True))
        ]
        # model names are data, not markup: "[published]" or "model[v2]" must print as written
        rich_table.add_row(escape(model), *shown)
    console = Console()
    # in a log (no terminal) nothing limits the width: every column whole, rather than cut to "a…"
    width = console.width if console.is_terminal else 24 + 22 * len(table.columns)
    Console(width=max(120, width)).print(rich_table)
