"""alignbench (v1.1) and alignbench-v1.0: Chinese alignment benchmark, 683 questions in 8 categories.

Data: THUDM/AlignBench ``data/data_v1.1_release.jsonl`` (v1.1, 2024-06) and the v1.0 file, saved as
``alignbench/data_release_v1.0.jsonl``. Keyed by ``question_id``; unknown keys are ignored (17 v1.0 rows
carry a stray nested duplicate record). No upstream licence: use internally, cite arXiv:2311.18743.

Protocol (upstream config/*.json, judge.py, show_result.py; docs/design-notes.md §2): the raw question as one user
turn; temperature by category
(0.1 for short-answer categories, 0.7 for 角色扮演/文本写作/综合问答, upstream config/temperature.json);
scored 1–10 by the multi-dimensional judge. Aggregation as upstream show_result.py (docs/design-notes.md §2; verified
on all
57 README rows): per-category item means; 中文推理 Reasoning = mean(数学计算, 逻辑推理); 中文语言 Language =
mean of the six language categories; Overall = (Reasoning + Language) / 2. No ×10 scaling.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import mathusereval as mue

_UPSTREAM = "https://raw.githubusercontent.com/THUDM/AlignBench"
V11_FILE = mue.pinned_source(  # THUDM/AlignBench @ 5b79d4a8
    "alignbench/data_v1.1_release.jsonl",
    f"{_UPSTREAM}/5b79d4a84e566db26e755c719935c62a0e1b0527/data/data_v1.1_release.jsonl",
    "6ad5cdb2d552d2557aca18d0dcabaf19ff59fd18bef98eef880296c0478bbd11",
)
V10_FILE = mue.pinned_source(  # @ acf7a469, the last commit before v1.1, with the PR #18 fix
    "alignbench/data_release_v1.0.jsonl",
    f"{_UPSTREAM}/acf7a46918102ccd58f591cb0cad9fe6f10b0000/data/data_release.jsonl",
    "14a008e7851b536e64211f32dacffc90f45dcc176585a0e249ee0ebc94e9109c",
)

REASONING = ("数学计算", "逻辑推理")
LANGUAGE = ("基本任务", "中文理解", "综合问答", "文本写作", "角色扮演", "专业能力")
TEMPERATURE = {
    "数学计算": 0.1,
    "逻辑推理": 0.1,
    "专业能力": 0.1,
    "中文理解": 0.1,
    "基本任务": 0.1,
    "角色扮演": 0.7,
    "文本写作": 0.7,
    "综合问答": 0.7,
}  # upstream config/temperature.json
DEFAULT_TEMPERATURE = 0.7  # upstream get_answers.py, for a category missing from the table


def row_key(row: dict[str, Any]) -> str:
    return str(row["question_id"])


def loader(relative: str, task: str) -> mue.Loader:
    def to_sample(row: dict[str, Any]) -> mue.Sample:
        if row["category"] not in TEMPERATURE:
            raise ValueError(f"field 'category' has unknown value {row['category']!r}")
        metadata = {
            "category": row["category"],
            "subcategory": row["subcategory"],
            "temperature": TEMPERATURE.get(row["category"], DEFAULT_TEMPERATURE),
            "math": row["category"] == "数学计算",  # the judge cascade settles only math items
        }
        return mue.Sample(task, row_key(row), mue.user_turn(row["question"]), row["reference"], metadata)

    fields = ("question_id", "category", "subcategory", "question", "reference")
    return mue.jsonl_loader(relative, to_sample, fields, ("question_id",), task=task)


def combine(category_means: dict[str, float]) -> dict[str, float]:
    """Reasoning, Language and Overall from per-category means, exactly as upstream show_result.py."""
    reasoning = sum(category_means[c] for c in REASONING) / len(REASONING)
    language = sum(category_means[c] for c in LANGUAGE) / len(LANGUAGE)
    return {"overall": (reasoning + language) / 2, "reasoning": reasoning, "language": language}


def aggregate(samples: Sequence[mue.Sample], grades: Sequence[mue.Grade]) -> list[mue.MetricValue]:
    """Overall, Reasoning, Language, then the eight category means (1–10 scale)."""
    categories = REASONING + LANGUAGE
    means = mue.grouped_means(samples, grades, "category", "category/{value}", categories)
    per_category = dict(zip(categories, means, strict=True))
    n = sum(m.n for m in per_category.values())
    if any(m.n == 0 for m in per_category.values()):
        return [mue.MetricValue("overall", float("nan"), n), *per_category.values()]
    combined = combine({c: m.value for c, m in per_category.items()})
    # Each combination is a weighted sum of category means over disjoint items, so its variance is the sum
    # of squared weights times the categories' variances (weights: Reasoning 1/2, Language 1/6, Overall
    # 1/4 per reasoning and 1/12 per language category).
    var = {c: (m.stderr or 0.0) ** 2 for c, m in per_category.items()}
    reasoning_var = sum(var[c] for c in REASONING) / len(REASONING) ** 2
    language_var = sum(var[c] for c in LANGUAGE) / len(LANGUAGE) ** 2
    stderr = {
        "overall": math.sqrt((reasoning_var + language_var) / 4),
        "reasoning": math.sqrt(reasoning_var),
        "language": math.sqrt(language_var),
    }
    return [mue.MetricValue(name, value, n, stderr[name]) for name, value in combined.items()] + list(
        per_category.values()
    )


ALIGNBENCH = mue.Task(
    name="alignbench",
    version="1.1",
    load=loader(V11_FILE, "alignbench"),
    graders=("alignbench-judge",),
    aggregate=aggregate,
    params=mue.GenerationParams(temperature=DEFAULT_TEMPERATURE, max_tokens=2048),
    description="AlignBench v1.1 (683), judge-scored 1–10",
    row_key=row_key,
)
ALIGNBENCH_V10 = dataclasses.replace(
    ALIGNBENCH,
    name="alignbench-v1.0",
    version="1.0",
    load=loader(V10_FILE, "alignbench-v1.0"),
    description="AlignBench v1.0 (683), judge-scored 1–10",
)
mue.register("tasks", ALIGNBENCH.name, ALIGNBENCH)
mue.register("tasks", ALIGNBENCH_V10.name, ALIGNBENCH_V10)
