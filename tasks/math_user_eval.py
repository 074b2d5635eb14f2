"""mathusereval: 567 real-user math questions from ChatGLM-Math (arXiv:2404.02893), judged 1–10.

Data: THUDM/ChatGLM-Math ``data/math-user-eval.jsonl`` (MIT), saved as
``mathusereval/math-user-eval.jsonl``. Keyed by (``source``, ``question_id``): ``question_id`` alone repeats.
545 scored items in 初等数学 (Elementary: calculate, algebra, geometry, trigonometry) and 高等数学
(Advanced: discrete, Probability, linear_algebra, calculus), plus 22 supplementary 交叉学科 items.

Protocol (upstream get_answers.py, judge.py, show_result.py; docs/design-notes.md §1): the raw question as one user
turn, temperature 0; judged
with the AlignBench prompt (logic-reasoning dimensions). Aggregation as published (verified on all 12
README rows; docs/design-notes.md §1): Elementary and Advanced are per-item (count-weighted) means of their
subcategories;
the headline Overall is the per-item mean over every judged row, as upstream show_result.py computes it
(the 22 supplementary items included); hard-split is the share of scores >= 7. Macro variants are
reported alongside under ``macro/`` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mathusereval as mue

DATA_FILE = mue.pinned_source(  # THUDM/ChatGLM-Math @ b0d49c7b
    "mathusereval/math-user-eval.jsonl",
    "https://raw.githubusercontent.com/THUDM/ChatGLM-Math/b0d49c7bd40f244b8dda1676b13cc89603cda315/data/math-user-eval.jsonl",
    "8e2cf74be30a235aa18ad0acf4edc7212822c5b5dc363d8ceaea5bbc63281888",
)

ELEMENTARY, ADVANCED, SUPPLEMENTARY = "初等数学", "高等数学", "交叉学科"
SUBCATEGORIES = {
    ELEMENTARY: ("algebra", "calculate", "geometry", "trigonometry"),
    ADVANCED: ("calculus", "discrete", "linear_algebra", "Probability"),
}
HARD_SPLIT_THRESHOLD = 7  # upstream show_result.py: score >= 7 counts as solved


def row_key(row: dict[str, Any]) -> str:
    """(source, question_id): question_id alone repeats across the two sources."""
    return f"{row['source']}-{row['question_id']}"


def to_sample(row: dict[str, Any]) -> mue.Sample:
    metadata = {
        "category": row["category"],
        "subcategory": row["subcategory"],
        "source": row["source"],
        "supplementary": row["category"] == SUPPLEMENTARY,
        "math": True,
    }
    return mue.Sample("mathusereval", row_key(row), mue.user_turn(row["question"]), row["reference"], metadata)


load = mue.jsonl_loader(
    DATA_FILE,
    to_sample,
    ("question_id", "source", "question", "reference", "category", "subcategory"),
    ("question_id",),
)


def combine(sub_means: dict[str, float], sub_counts: dict[str, int]) -> dict[str, float]:
    """Elementary/Advanced as count-weighted means of their subcategory means (the published rule)."""
    out = {}
    for name, category in (("elementary", ELEMENTARY), ("advanced", ADVANCED)):
        subs = SUBCATEGORIES[category]
        out[name] = sum(sub_means[s] * sub_counts[s] for s in subs) / sum(sub_counts[s] for s in subs)
    return out


def aggregate(samples: Sequence[mue.Sample], grades: Sequence[mue.Grade]) -> list[mue.MetricValue]:
    scores = mue.per_sample_scores(grades)
    judged = [scores[s.id] for s in samples if s.id in scores]
    names = {ELEMENTARY: "elementary", ADVANCED: "advanced"}
    subs = [(category, sub) for category, group in SUBCATEGORIES.items() for sub in group]
    metrics = [
        mue.mean_with_stderr("overall", judged),
        *mue.grouped_means(samples, grades, "category", names.__getitem__, list(names)),
    ]
    per_sub = dict(
        zip(
            subs,
            mue.grouped_means(
                samples,
                grades,
                lambda s: (s.metadata["category"], s.metadata["subcategory"]),
                lambda group: f"subcategory/{group[1]}",
                subs,
            ),
            strict=True,
        )
    )
    metrics += per_sub.values()
    split = {True: "supplementary", False: "overall_scored"}
    metrics += mue.grouped_means(samples, grades, "supplementary", split.__getitem__, [True, False])
    metrics.append(mue.mean_with_stderr("hard_split", [float(v >= HARD_SPLIT_THRESHOLD) for v in judged]))
    if all(m.n for m in per_sub.values()):
        macro_sub = sum(m.value for m in per_sub.values()) / len(per_sub)
        metrics.append(mue.MetricValue("macro/subcategories", macro_sub, len(judged)))
        metrics.append(
            mue.MetricValue(
                "macro/elementary_advanced", (metrics[1].value + metrics[2].value) / 2, metrics[1].n + metrics[2].n
            )
        )
    return metrics


TASK = mue.Task(
    name="mathusereval",
    version="1",
    load=load,
    graders=("alignbench-judge",),
    aggregate=aggregate,
    params=mue.GenerationParams(temperature=0.0, max_tokens=4096),  # paper App. C.1: temperature 0, 4096 tokens
    description="MathUserEval (567 = 545 scored + 22 supplementary), judge-scored 1–10",
    row_key=row_key,
)
mue.register("tasks", TASK.name, TASK)
