"""``mue-eval compare`` rendered: a Markdown table (printed, and ``compare.md``) and a self-contained page
(``compare.html``) beside the leaderboard's, from the report the read side computed
(`mathusereval.results.compare.report`); ``compare.json`` is the report itself."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from mathusereval.records import MetricValue
from mathusereval.results.stats import p_text
from mathusereval.store.guard import write_output
from mathusereval.store.jsonl import json_text

from .html import page
from .layout import is_share, markdown_text


def _unit(row: dict[str, Any]) -> float:
    return 100.0 if is_share(MetricValue(row["metric"], 0.0, 0)) else 1.0


def _fmt(value: float | None, factor: float, sign: bool = False) -> str:
    if value is None:
        return "—"
    digits = 1 if factor == 100.0 else 2
    return f"{value * factor:+.{digits}f}" if sign else f"{value * factor:.{digits}f}"


def _cells(row: dict[str, Any]) -> list[str]:
    f = _unit(row)
    ci = row["ci95"]
    p = row["p_value"]
    return [
        row["task"],
        row["grader"],
        row["category"] or "(all)",
        row["metric"],
        _fmt(row["a"], f),
        _fmt(row["b"], f),
        _fmt(row["delta"], f, sign=True),
        f"[{_fmt(ci[0], f, True)}, {_fmt(ci[1], f, True)}]" if ci else "—",
        "—" if p is None else p_text(p) + (" *" if p < 0.05 else ""),
        str(row["n"]),
        f"{row['wins']}/{row['losses']}/{row['ties']}",
    ]


HEAD = ["task", "grader", "category", "metric", "A", "B", "B − A", "95% CI", "p", "n", "B wins/losses/ties"]
P_COLUMN = HEAD.index("p")


def comparison_markdown(report: dict[str, Any]) -> str:
    a, b = report["a"], report["b"]
    lines = [
        f"# {markdown_text(b['label'])} vs {markdown_text(a['label'])}",
        "",
        f"A: `{markdown_text(a['path'])}` · B: `{markdown_text(b['path'])}` · answers paired by task, item and "
        "answer index",
        "",
        *_differences(report, markdown_text),
        "| " + " | ".join(HEAD) + " |",
        "|" + "---|" * len(HEAD),
    ]
    for row in report["comparisons"]:
        # the p cell is our own text ("< 1e-300" stays readable); every other cell may hold stored names
        lines.append(
            "| " + " | ".join(c if k == P_COLUMN else markdown_text(c) for k, c in enumerate(_cells(row))) + " |"
        )
    lines += [
        "",
        "Accuracies in percent points, judge scores on their 1-10 scale. CI: paired bootstrap over items (fixed "
        "seed). p: exact McNemar for pass/fail answers, else a paired sign-flip permutation test; * below 0.05.",
    ]
    for row in report["comparisons"]:
        if row["category"] is None and row["changed"]:
            lines += [
                "",
                f"## {markdown_text(row['task'])}: items that changed most",
                "",
                "| item | A | B |",
                "|---|---|---|",
            ]
            f = _unit(row)
            for item in row["changed"]:
                name = markdown_text(item["sample_id"])
                lines.append(f"| [{name}]({item['link']}) | {_fmt(item['a'], f)} | {_fmt(item['b'], f)} |")
    lines.append("")
    lines.append("Links point into the run pages of `mue-eval leaderboard RESULTS --out DIR` (relative to DIR).")
    return "\n".join(lines) + "\n"


def _differences(report: dict[str, Any], quote: Any) -> list[str]:
    """The settings A and B differ in, above the table: a difference may be theirs, not the checkpoints'."""
    lines = report.get("differences") or []
    if not lines:
        return ["A and B were run with the same settings.", ""]
    return ["A and B differ in their settings (a difference may come from these):", "",
            *(f"- {quote(line)}" for line in lines), ""]  # fmt: skip


def comparison_html(report: dict[str, Any]) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in _cells(row)) + "</tr>" for row in report["comparisons"]
    )
    head = "".join(f"<th>{escape(h)}</th>" for h in HEAD)
    changed = []
    for row in report["comparisons"]:
        if row["category"] is None and row["changed"]:
            items = "".join(
                f'<li><a href="{escape(i["link"])}">{escape(i["sample_id"])}</a>: {i["a"]:g} → {i["b"]:g}</li>'
                for i in row["changed"]
            )
            changed.append(f"<h2>{escape(row['task'])}: items that changed most</h2><ul>{items}</ul>")
    body = (
        f"<h1>{escape(report['b']['label'])} vs {escape(report['a']['label'])}</h1>"
        + "".join(
            f"<p>{escape(line[2:] if line.startswith('- ') else line)}</p>"
            for line in _differences(report, str)
            if line
        )  # fmt: skip
        + f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        + "".join(changed)
    )
    return page("mathusereval comparison", body)


def write_comparison(report: dict[str, Any], out: Path) -> list[Path]:
    files = {
        out / "compare.json": json_text(report),
        out / "compare.md": comparison_markdown(report).encode(),
        out / "compare.html": comparison_html(report).encode(),
    }
    for path, data in files.items():
        write_output(path, data)
    return list(files)
