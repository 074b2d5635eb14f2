"""Checkpoint sweeps: a task's headline over a model's checkpoints (``plots/sweep-<task>.png``) and the table
of each checkpoint's change against the previous one (``sweeps/<task>.md``), from `Sweep` records the read
side found (`mathusereval.results.analysis.find_sweeps`). The change is marked when the paired test of the two
checkpoints on the same items finds it significant at 5% (↑ better, ↓ worse)."""

from __future__ import annotations

from collections.abc import Sequence

from mathusereval.results.analysis import Sweep
from mathusereval.results.stats import p_text

from .layout import file_stem, format_cell, is_share, markdown_text, scaled
from .plots import Plot, _figure, _png, axis_range, plot_label


def _mark(delta: float | None, significant: bool) -> str:
    if delta is None:
        return ""
    return ("↑" if delta > 0 else "↓") if significant else "≈"


def sweep_table(sweeps: Sequence[Sweep], task: str, judge_scale: float = 1.0) -> str:
    lines = [f"## {markdown_text(task)}: checkpoint sweep", ""]
    for sweep in sweeps:
        lines += [
            f"{markdown_text(sweep.family)} (x: {markdown_text(sweep.x_label)})",
            "",
            "| checkpoint | x | value | change | p (paired) | |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for point in sweep.points:
            shown = scaled(point.metric, judge_scale)
            factor = 100.0 if is_share(point.metric) else judge_scale
            change = "" if point.delta is None else f"{point.delta * factor:+.2f}"
            p = "" if point.p_value is None else p_text(point.p_value)
            lines.append(
                f"| {markdown_text(point.label)} | {point.x:g} | {format_cell(point.metric, judge_scale)} | {change} "
                f"| {p} | {_mark(point.delta, point.significant)} |"
                if shown is not None
                else f"| {markdown_text(point.label)} | {point.x:g} | — | | | |"
            )
        lines.append("")
    lines.append("↑/↓: significantly better/worse than the previous checkpoint (paired test, 5%); ≈: not.")
    return "\n".join(lines) + "\n"


def sweep_plot(sweeps: Sequence[Sweep], task: str) -> Plot:
    """The headline against the checkpoint, a 95% CI band per family, the random-guess level of a choice task."""
    fig, plt = _figure(7.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)  # type: ignore[attr-defined]
    share = is_share(sweeps[0].points[0].metric)
    ylabel = "accuracy (%)" if share else "judge score (1-10)"
    for sweep in sweeps:
        xs = [p.x for p in sweep.points]
        shown = [scaled(p.metric) for p in sweep.points]
        ys = [m.value if m is not None else float("nan") for m in shown]
        low = [m.ci95[0] if m is not None and m.ci95 else y for m, y in zip(shown, ys, strict=True)]
        high = [m.ci95[1] if m is not None and m.ci95 else y for m, y in zip(shown, ys, strict=True)]
        ax.plot(xs, ys, marker="o", label=plot_label(sweep.family))
        ax.fill_between(xs, low, high, alpha=0.2)
        if sweep.chance is not None:
            ax.axhline(
                100 * sweep.chance if share else sweep.chance, linestyle="--", color="grey", label="random guess"
            )
    ax.set_ylim(*axis_range(ylabel))
    ax.set_xlabel(plot_label(sweeps[0].x_label))
    ax.set_ylabel(ylabel)
    ax.set_title(plot_label(f"{task}: {sweeps[0].points[0].metric.name} over checkpoints"))
    ax.legend(fontsize=7)
    fig.tight_layout()  # type: ignore[attr-defined]
    stem = f"sweep-{file_stem(task)}"
    return Plot(stem, f"{task}: the headline over checkpoints, with its 95% CI", _png(fig, plt))
