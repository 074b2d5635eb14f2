"""The leaderboard as a self-contained static web page (``DIR/index.html``): CSS, script and plots are
inlined, so it opens from disk with no network. Tables sort by a header click and filter by model name;
each model has a detail section with its runs' full breakdowns, facts and a link to the run's sample-level
page (``runs/<run>.html``, see audit.py) where every number can be traced to prompts, answers and grades.

Every value shows mean ± standard error, with the 95% CI and n on hover; ≈ marks a model that is not
significantly different from the one ranked just above it in that column (layout.ties).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources

from mathusereval.records import MetricValue, RunResult
from mathusereval.results.analysis import Analysis
from mathusereval.results.runs import run_page_name

from .layout import Paired, format_cell, label, order, plain_text, rounded, scaled_ci, ties
from .plots import Plot
from .reference import is_published
from .tables import Table, best_per_column, row_label


def asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def page_ends(title: str) -> tuple[str, str]:
    """What comes before and after a page's body (a page written piece by piece)."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>\n{asset('page.css')}</style>\n</head>\n<body>\n",
        f"\n<script>\n{asset('page.js')}</script>\n</body>\n</html>\n",
    )


def page(title: str, body: str) -> str:
    start, end = page_ends(title)
    return start + body + end


def model_anchor(model: str) -> str:
    return "model-" + re.sub(r"[^A-Za-z0-9_-]+", "_", model) + "-" + hashlib.sha256(model.encode()).hexdigest()[:6]


def cell(
    metric: MetricValue | None, judge_scale: float, tie_with: str | None = None, best: bool = False, mark: str = ""
) -> str:
    """A ``<td>`` whose ``data-v`` is the raw value (for sorting) and whose title gives the 95% CI and n."""
    display = rounded(metric, judge_scale)
    if display is None:
        return '<td data-v="">—</td>'
    shown, places = display
    text = f"{shown.value:.{places}f}"
    if shown.stderr is not None:
        text += f' <span class="se">± {shown.stderr:.{places}f}</span>'
    hover = [f"n={shown.n}" if shown.n else "published value"]
    interval = scaled_ci(metric, judge_scale)
    if interval is not None:
        low, high = interval
        hover.insert(0, f"95% CI {low:.{places}f}–{high:.{places}f}")
    if tie_with is not None:
        text += f'<span class="tie" title="not significantly different from {escape(tie_with)}">≈</span>'
    if mark:  # a partial run: never "best", always marked
        text += f' <span class="partial">{escape(mark)}</span>'
        hover.append(f"{mark}: the run did not score every answer")
    css = ' class="best"' if best and not mark else ""
    return f'<td{css} data-v="{shown.value:.6g}" title="{escape(", ".join(hover))}">{text}</td>'


def paired_for(table: Table, column: str, analysis: Analysis | None) -> Paired | None:
    """The paired test between two rows' runs in `column` (None without an analysis)."""
    if analysis is None:
        return None

    def paired(above: str, below: str) -> bool | None:
        a, b = table.runs.get((above, column)), table.runs.get((below, column))
        metric = next((m.name for m in (a.metrics if a else ()) if m.name == column), None) if a else None
        name = metric or (a.metrics[0].name if a and a.metrics else "")
        return analysis.tie(a, b, name) if a is not None and b is not None and name else None

    return paired


def table_html(
    table: Table, judge_scale: float, headers: Sequence[str], table_id: str, analysis: Analysis | None = None
) -> str:
    """A sortable table; user rows link to their model's details, published rows are set apart."""
    own = [(model, cells) for model, cells in table.rows if not is_published(model)]
    marks = [
        ties([(model, cells[k]) for model, cells in own], paired_for(table, table.columns[k], analysis))
        for k in range(len(table.columns))
    ]
    best = best_per_column(table)
    head = "".join(f"<th>{escape(plain_text(h))}</th>" for h in ["model", *headers])
    lines = [f'<table class="sortable" id="{table_id}">', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for model, cells in table.rows:
        published = is_published(model)
        name = escape(model) if published else f'<a href="#{model_anchor(model)}">{escape(model)}</a>'
        tds = "".join(
            cell(
                metric,
                judge_scale,
                None if published else marks[k].get(model),
                not published and metric is not None and best[k] is not None and metric.value == best[k],
                table.mark(model, table.columns[k]),
            )
            for k, metric in enumerate(cells)
        )
        css = ' class="published"' if published else ""
        lines.append(f'<tr{css} data-filter="{escape(model)}"><td>{name}</td>{tds}</tr>')
    return "\n".join([*lines, "</tbody>", "</table>"])


def figure(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode()
    caption = escape(plot.caption)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>'
    )


def facts(run: RunResult) -> str:
    m = run.manifest
    judges = "; ".join(f"{name}: {j.get('judge_model')}" for name, j in sorted(m.judges.items()))
    rows = [
        ("model", m.model),
        ("backend", m.backend),
        ("task version", m.task_version),
        ("data sha256", m.data_sha256),
        ("prompt sha256", m.prompt_sha256),
        ("graders", ", ".join(m.graders)),
        ("judges", judges or "—"),
        ("parameters", ", ".join(f"{k}={v}" for k, v in sorted(m.params.items()))),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


def model_details(model: str, runs: Sequence[RunResult], judge_scale: float) -> str:
    parts = [f'<details class="model" id="{model_anchor(model)}" data-filter="{escape(model)}">']
    parts.append(f"<summary>{escape(model)}</summary>")
    for run in sorted(runs, key=lambda r: r.manifest.task):
        by_name = {m.name: m for m in run.metrics}
        metrics = [by_name[name] for name in order(run.manifest.task, list(by_name))]  # published column order
        rows = "".join(
            f"<tr><td>{escape(label(m.name))} <span class='n'>{escape(m.name)}</span></td>"
            f"<td>{escape(format_cell(m, judge_scale, n=False))}</td><td>{m.n}</td></tr>"
            for m in metrics
        )
        parts += [
            f"<h3>{escape(plain_text(run.manifest.task))}</h3>",
            f'<p><a href="runs/{run_page_name(run.manifest, run.directory)}.html">sample-level records</a> '
            "(prompt, response, extracted answer, grade, judge critique)</p>",
            f"<table><thead><tr><th>metric</th><th>value</th><th>n</th></tr></thead><tbody>{rows}</tbody></table>",
            facts(run),
        ]
    return "\n".join([*parts, "</details>"])


def index_page(
    overview: Table,
    notes: Sequence[str],
    breakdowns: Mapping[str, Table],
    plots: Mapping[str, Sequence[Plot]],
    runs: Sequence[RunResult],
    judge_scale: float,
    analysis: Analysis | None = None,
    sweeps: Mapping[str, tuple[str, Plot | None]] | None = None,
    task_notes: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The whole page: overview, per-task breakdowns with their plots, sweeps, per-model details."""
    scale_note = (
        f" Judge scores are shown ×{judge_scale:g} (1–10 becomes {judge_scale:g}–{10 * judge_scale:g})."
        if judge_scale != 1.0
        else ""
    )
    body = [
        "<h1>mathusereval leaderboard</h1>",
        f'<p class="note">Rebuilt from {len(runs)} stored runs. Each cell: mean ± standard error; hover for the '
        "95% CI and n. Accuracies in percent." + scale_note + " ≈: not significantly different (5%) from the "
        "model ranked just above it in that column: by a paired test when the two runs share items (exact "
        "McNemar for pass/fail, a sign-flip permutation test for scores), else a two-sided z-test. Bold: best in "
        "the column.</p>",
        '<input id="filter" type="search" placeholder="filter models" aria-label="filter models">',
        "<h2>Overview</h2>",
        table_html(overview, judge_scale, [overview.headers.get(c, c) for c in overview.columns], "overview", analysis),
    ]
    if notes:
        body.append("<ul class='note'>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    for k, (name, table) in enumerate(breakdowns.items()):
        body += [
            f"<h2>{escape(plain_text(name))}</h2>",
            table_html(
                table, judge_scale, [table.headers.get(c) or label(c) for c in table.columns], f"task-{k}", analysis
            ),
        ]
        notes_here = (task_notes or {}).get(name, ())
        if notes_here:
            body.append("<ul class='note'>" + "".join(f"<li>{escape(n)}</li>" for n in notes_here) + "</ul>")
        body += [figure(plot) for plot in plots.get(name, ())]
    for task, (sweep_table, plot) in (sweeps or {}).items():  # HTML the sweeps module escaped
        body += [
            f"<h2>{escape(plain_text(task))}: checkpoint sweep</h2>",
            figure(plot) if plot is not None else "",
            sweep_table,
        ]
    body.append("<h2>Models</h2>")
    by_model: dict[str, list[RunResult]] = {}
    for run in runs:
        by_model.setdefault(row_label(run), []).append(run)
    body += [model_details(model, by_model[model], judge_scale) for model in sorted(by_model)]
    return page("mathusereval leaderboard", "\n".join(body))
