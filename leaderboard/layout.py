"""Column order, headers and precision of the published tables, so our rows sit beside theirs.

Sources (the upstream README leaderboards): MathUserEval (Overall, Elem Avg and its four subcategories,
Adv Avg and its four), AlignBench (Overall, Reasoning Avg, Math., Logi., Language Avg, then the six
language categories), both to 2 decimals on the 1-10 judge scale; GSM8K and MATH accuracies in percent
to 1 decimal (ChatGLM-Math Table 3, e.g. 93.6 / 53.6). OpenCompass shows judge scores ×10 to 1 decimal
(55.2 for 5.52). Metrics a layout does not name follow in the aggregation's own order, so nothing is
hidden.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from mathusereval.records import MetricValue
from mathusereval.records.runs import shortened

MATHUSEREVAL = (
    ("overall", "Overall"),
    ("elementary", "Elem Avg"),
    ("subcategory/algebra", "algebra"),
    ("subcategory/calculate", "calculate"),
    ("subcategory/geometry", "geo."),
    ("subcategory/trigonometry", "tri."),
    ("advanced", "Adv Avg"),
    ("subcategory/calculus", "calculus"),
    ("subcategory/discrete", "discrete"),
    ("subcategory/linear_algebra", "linear."),
    ("subcategory/Probability", "Prob."),
    ("hard_split", "hard-split"),
)
ALIGNBENCH = (
    ("overall", "Overall"),
    ("reasoning", "Reasoning Avg"),
    ("category/数学计算", "Math."),
    ("category/逻辑推理", "Logi."),
    ("language", "Language Avg"),
    ("category/基本任务", "Fund."),
    ("category/中文理解", "Chi."),
    ("category/综合问答", "Open."),
    ("category/文本写作", "Writ."),
    ("category/角色扮演", "Role."),
    ("category/专业能力", "Pro."),
)
LAYOUTS = {"mathusereval": MATHUSEREVAL, "alignbench": ALIGNBENCH, "alignbench-v1.0": ALIGNBENCH}
_GENERIC = (("accuracy", "Accuracy"),)


def file_stem(column: str) -> str:
    """``math500 [2]`` -> ``math500-2``: a column's name in file names (breakdowns, plots). Task names come
    from stored manifests: anything but letters, digits, ``._-`` becomes ``_`` and no stem starts with a dot,
    so ``../../X`` cannot leave the output directory."""
    stem = column.replace(" ", "").replace("[", "-").replace("]", "")
    return shortened(re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".") or "_", column)


def plain_text(text: str) -> str:
    """A stored name as one printable line: control characters (terminal escapes) become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def markdown_text(text: str) -> str:
    """A stored name inside a Markdown table cell: no cell breaks, no raw HTML, one line."""
    return plain_text(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def task_of(column: str) -> str:
    """``math500 [2]`` -> ``math500``: variants keep their task's layout."""
    return column.split(" [", 1)[0]


def label(metric: str) -> str:
    """A readable header for a metric a layout does not name: ``accuracy/level=3`` -> ``Level 3``."""
    for name, header in (*MATHUSEREVAL, *ALIGNBENCH, *_GENERIC):
        if name == metric:
            return header
    match = re.fullmatch(r"accuracy/(subject|level)=(.+)", metric)
    if match:
        return f"Level {match[2]}" if match[1] == "level" else match[2]
    return metric


def order(task: str, metrics: Sequence[str]) -> list[str]:
    """`metrics` in the published column order of `task`, then the rest as given."""
    named = [name for name, _ in LAYOUTS.get(task_of(task), ()) if name in metrics]
    return named + [m for m in metrics if m not in named]


def is_share(metric: MetricValue) -> bool:
    """Accuracies, pass@k, maj@k and hard-split are shares (shown in percent); the rest are judge scores."""
    return metric.is_share


def headline_label(metric: str, samples: int) -> str:
    """A column header; the headline of a run with k > 1 answers per item is their mean, avg@k."""
    if samples > 1 and metric.split("/")[-1] in ("accuracy", "overall", "avg_score"):
        return f"avg@{samples}" if metric.endswith("accuracy") else f"{label(metric)} (avg@{samples})"
    return label(metric)


def decimals(metric: MetricValue, judge_scale: float = 1.0) -> int:
    """Published precision: percentages and ×10 scores to 1 decimal, 1-10 judge scores to 2."""
    return 1 if is_share(metric) or judge_scale != 1.0 else 2


def scaled(metric: MetricValue | None, judge_scale: float = 1.0) -> MetricValue | None:
    """Shares in percent; judge scores (1-10) times `judge_scale` (OpenCompass shows ×10)."""
    if metric is None:
        return None
    factor = 100.0 if is_share(metric) else judge_scale
    stderr = None if metric.stderr is None else metric.stderr * factor
    return MetricValue(metric.name, metric.value * factor, metric.n, stderr, metric.higher_is_better)


def scaled_ci(metric: MetricValue | None, judge_scale: float = 1.0) -> tuple[float, float] | None:
    """The metric's 95% CI (Wilson's for a share, `MetricValue.ci95`) in the unit `scaled` shows."""
    if metric is None or metric.ci95 is None:
        return None
    factor = 100.0 if is_share(metric) else judge_scale
    return metric.ci95[0] * factor, metric.ci95[1] * factor


def rounded(metric: MetricValue | None, judge_scale: float = 1.0) -> tuple[MetricValue, int] | None:
    """The metric as displayed (scaled) with its published number of decimals; None when there is no value
    (missing, or NaN: nothing graded). Every rendering (Markdown, terminal, web page) goes through this."""
    shown = scaled(metric, judge_scale)
    if metric is None or shown is None or math.isnan(shown.value):
        return None
    return shown, decimals(metric, judge_scale)


def format_cell(metric: MetricValue | None, judge_scale: float = 1.0, n: bool = True) -> str:
    """``mean ± stderr (n=N)`` at the published precision, shares in percent; ``—`` for a missing value."""
    display = rounded(metric, judge_scale)
    if display is None:
        return "—"
    shown, places = display
    text = f"{shown.value:.{places}f}"
    if shown.stderr is not None:
        text += f" ± {shown.stderr:.{places}f}"
    return f"{text} (n={shown.n})" if n and shown.n else text  # n=0: a published number, count unknown


def indistinguishable(above: MetricValue | None, below: MetricValue | None) -> bool:
    """The fallback when two runs share no items (or the metric has no paired test): True when their values
    differ by less than a two-sided 5% z-test can tell, with the difference's error sqrt(se1² + se2²)."""
    if above is None or below is None or above.stderr is None or below.stderr is None:
        return False
    if math.isnan(above.value) or math.isnan(below.value):
        return False
    return abs(above.value - below.value) < 1.96 * math.sqrt(above.stderr**2 + below.stderr**2)


Paired = Callable[[str, str], "bool | None"]
"""(model above, model below) -> whether a paired test finds them not different; None: no paired test."""


def ties(cells: Sequence[tuple[str, MetricValue | None]], paired: Paired | None = None) -> dict[str, str]:
    """Per column: model -> the model ranked just above it, when the two are not significantly different:
    by the paired test of the two runs (`mathusereval.results.analysis`) whenever they share items, else
    by the unpaired z-test (`indistinguishable`)."""
    ranked = sorted(
        ((model, m) for model, m in cells if m is not None and not math.isnan(m.value)),
        key=lambda item: (-item[1].value if item[1].higher_is_better else item[1].value, item[0]),
    )
    marks = {}
    for k in range(1, len(ranked)):
        (above, upper), (model, metric) = ranked[k - 1], ranked[k]
        verdict = paired(above, model) if paired is not None else None
        if verdict if verdict is not None else indistinguishable(upper, metric):
            marks[model] = above
    return marks
