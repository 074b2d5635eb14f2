"""Leaderboard plots as PNG bytes: grouped bars per category, the AlignBench radar, accuracy by MATH level.

matplotlib is imported only here and only when plots are drawn. PNGs are byte-stable for the same inputs:
the Agg renderer is deterministic and the ``Software`` text chunk (matplotlib's version) is left out.
Labels are the published English headers (leaderboard/layout.py); model names are drawn as they are, with
any installed CJK font as DejaVu's fallback (`font_families`), so Chinese names are readable where such a
font is installed.

Every label is plain text: model, task and sweep names come from stored runs and files, and matplotlib would
read ``a$\\foo$b`` as math markup (and fail on it), so math parsing is off. A plot that cannot be drawn
anyway is left out with a warning (`drawn`): it never stops the tables and the page.
"""

from __future__ import annotations

import functools
import io
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mathusereval.errors import one_line

from .layout import file_stem, label, plain_text, scaled
from .tables import Table

MAX_MODELS = 8  # more bars per group than this are unreadable; the best ones are drawn, the caption says so


@dataclass(frozen=True)
class Plot:
    name: str  # file stem, e.g. "alignbench-radar"
    caption: str
    png: bytes


CJK_FILES = re.compile(r"wqy|cjk|sourcehansans|droidsansfallback|simhei|simsun|msyh|ukai|uming|notosanssc|"
                       r"notoserifsc|sarasa", re.IGNORECASE)  # fmt: skip
"""File names of the common fonts with Chinese glyphs (Debian's fonts-wqy-*, fonts-noto-cjk, Source Han ...)."""


@functools.cache
def font_families() -> tuple[str, ...]:
    """DejaVu Sans, then every CJK font installed on the system, as matplotlib's fallback list: a Chinese model
    or category name draws with the first font that has its glyphs instead of as empty boxes. The files are
    found and added directly (matplotlib's font cache may predate a font installed later)."""
    import logging

    from matplotlib import font_manager

    # WenQuanYi Zen Hei declares weight 500 only: matplotlib logs that it uses it for "normal" on every lookup
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    families = ["DejaVu Sans"]
    for path in sorted(font_manager.findSystemFonts()):
        if not CJK_FILES.search(Path(path).name):
            continue
        try:
            font_manager.fontManager.addfont(path)
            name = font_manager.FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):  # a broken font file is not ours to fix
            continue
        if name not in families:
            families.append(name)
    return tuple(families)


def _figure(width: float = 8.0, height: float = 4.0) -> tuple[object, object]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    # plain text: a "$" in a stored name is a dollar sign, never math markup (nor a LaTeX run)
    matplotlib.rcParams.update({"text.parse_math": False, "text.usetex": False})
    import matplotlib.pyplot as plt

    matplotlib.rcParams["font.family"] = list(font_families())
    fig = plt.figure(figsize=(width, height), dpi=100)
    return fig, plt


def _png(fig: object, plt: object) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]
    return buffer.getvalue()


def plot_label(text: str) -> str:
    """A stored name as a plot label: one printable line; a leading underscore (which hides a legend entry
    in matplotlib) kept visible."""
    shown = plain_text(text)
    return f" {shown}" if shown.startswith("_") else shown


def drawn(name: str, draw: Callable[[], Plot]) -> Plot | None:
    """The plot `draw` makes, or None with a one-line warning when it cannot be drawn."""
    try:
        return draw()
    except Exception as exc:  # matplotlib fails in many ways (markup, fonts, degenerate axes): none is fatal here
        import matplotlib.pyplot as plt

        plt.close("all")
        print(f"mue-eval: warning: plot {name} left out: {one_line(str(exc))[:200]}", file=sys.stderr)
        return None


def _values(table: Table, columns: Sequence[str]) -> list[tuple[str, list[float]]]:
    rows = []
    for model, cells in table.rows[:MAX_MODELS]:
        by_name = dict(zip(table.columns, cells, strict=True))
        shown = [scaled(by_name.get(c)) for c in columns]
        partial = next((table.mark(model, c) for c in columns if table.mark(model, c)), "")
        name = f"{model} ({partial})" if partial else model
        rows.append((plot_label(name), [m.value if m is not None else math.nan for m in shown]))
    return rows


def _caption(text: str, table: Table) -> str:
    extra = len(table.rows) - MAX_MODELS
    return text + (f" (best {MAX_MODELS} of {len(table.rows)} models)" if extra > 0 else "")


def axis_range(ylabel: str) -> tuple[float, float]:
    """Accuracies on 0-100 %, judge scores on 1-10, whatever the values."""
    return (0.0, 100.0) if "%" in ylabel else (1.0, 10.0)


def grouped_bars(task: str, table: Table, columns: Sequence[str], ylabel: str, name: str, what: str) -> Plot:
    """One group of bars per column (category), one bar per model."""
    fig, plt = _figure(max(6.0, 0.9 * len(columns) + 2), 4.2)
    ax = fig.add_subplot(1, 1, 1)  # type: ignore[attr-defined]
    rows = _values(table, columns)
    width = 0.8 / max(1, len(rows))
    for k, (model, values) in enumerate(rows):
        ax.bar([i + k * width - 0.4 + width / 2 for i in range(len(columns))], values, width, label=model)
    ax.set_xticks(range(len(columns)), [plot_label(label(c)) for c in columns], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(*axis_range(ylabel))  # fixed, so one bar cannot fill a chart and charts compare
    ax.set_ylabel(ylabel)
    ax.set_title(plot_label(f"{task}: {what}"))
    ax.legend(fontsize=7, ncols=min(4, len(rows)))
    fig.tight_layout()  # type: ignore[attr-defined]
    return Plot(name, _caption(f"{task}: {what}", table), _png(fig, plt))


def radar(task: str, table: Table, columns: Sequence[str]) -> Plot:
    """AlignBench's eight categories on a 1-10 radar, one outline per model."""
    fig, plt = _figure(6.0, 6.0)
    ax = fig.add_subplot(1, 1, 1, projection="polar")  # type: ignore[attr-defined]
    angles = [2 * math.pi * i / len(columns) for i in range(len(columns))]
    for model, values in _values(table, columns):
        ax.plot([*angles, angles[0]], [*values, values[0]], linewidth=1.5, label=model)
    ax.set_xticks(angles, [plot_label(label(c)) for c in columns], fontsize=9)
    ax.set_ylim(0, 10)
    ax.set_title(plot_label(f"{task}: categories (judge score 1-10)"))
    ax.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.15, 1.1))
    fig.tight_layout()  # type: ignore[attr-defined]
    return Plot(f"{task}-radar", _caption(f"{task}: categories on a radar", table), _png(fig, plt))


def task_plots(task: str, table: Table) -> list[Plot]:
    """The plots a task's breakdown table supports (none when it has no categories); one that cannot be
    drawn is left out (`drawn`)."""
    columns = table.columns
    stem = file_stem(task)
    categories = [c for c in columns if c.startswith(("category/", "subcategory/", "accuracy/subject="))]
    levels = [c for c in columns if c.startswith("accuracy/level=")]
    plots: list[Plot | None] = []
    if categories and table.rows:
        share = categories[0].startswith("accuracy")
        ylabel = "accuracy (%)" if share else "judge score (1-10)"
        what = "accuracy by subject" if share else "score by category"
        name = f"{stem}-categories"
        plots.append(drawn(name, lambda: grouped_bars(task, table, categories, ylabel, name, what)))
        if any(c.startswith("category/") for c in categories):
            plots.append(drawn(f"{stem}-radar", lambda: radar(task, table, categories)))
    if levels and table.rows:
        levels_name = f"{stem}-levels"
        plots.append(
            drawn(
                levels_name, lambda: grouped_bars(task, table, levels, "accuracy (%)", levels_name, "accuracy by level")
            )
        )
    return [plot for plot in plots if plot is not None]
