"""Leaderboard tables from runs already read (`mathusereval.results`): no model is called, nothing is
recomputed here. Each run contributes the headline metric of its task to the overview."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mathusereval.records import MetricValue, RunResult

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


def row_label(run: RunResult) -> str:
    """A run's row name (`RunResult.row`: disambiguated among the runs shown), printable."""
    return plain_text(run.row)


def overview(columns: Mapping[str, Sequence[RunResult]], reference: bool = False) -> tuple[Table, list[str]]:
    """One row per model, one column per entry of `columns` (the headline metric of its runs), best rows
    first; with `reference`, the published rows of those columns after them (labelled ``[published]``).
    Also returns the published rows' source lines (empty without `reference`)."""
    cells: dict[str, dict[str, MetricValue]] = {}
    marks: dict[tuple[str, str], str] = {}
    for name, column_runs in columns.items():
        for run in column_runs:
            if run.metrics:
                cells.setdefault(row_label(run), {})[name] = run.metrics[0]
                if run.coverage_mark():
                    marks[(row_label(run), name)] = run.coverage_mark()
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
