"""demo: 25 short problems written for this project, shipped inside the package.

Ten grade-school word problems, ten with LaTeX answers (fractions, intervals, radicals) and five in
Chinese, each with its final answer. It runs offline in about a minute on two CPU cores with the embedded
model, which is what a bare ``mue-eval`` does; it measures plumbing, not mathematical skill.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mathusereval as mue

DATA_FILE = Path(__file__).with_name("data") / "demo.jsonl"


def to_sample(row: dict[str, Any]) -> mue.Sample:
    prompt = mue.user_turn(mue.BOXED_COT.format(question=row["question"]))
    return mue.Sample("demo", row["id"], prompt, row["answer"], {"kind": row["kind"]})


# the embedded file; the data directory is not used
load = mue.jsonl_loader(DATA_FILE, to_sample, required=("id", "kind", "question", "answer"), task="demo")


def aggregate(samples: Sequence[mue.Sample], grades: Sequence[mue.Grade]) -> list[mue.MetricValue]:
    """Accuracy overall, then per kind of problem."""
    return mue.accuracy(samples, grades) + mue.grouped_means(samples, grades, "kind", "accuracy/{value}")


TASK = mue.Task(
    name="demo",
    version="1",
    load=load,
    graders=("answer",),
    aggregate=aggregate,
    params=mue.GenerationParams(temperature=0.0, max_tokens=256),
    description="25 built-in problems (word, LaTeX, Chinese); offline smoke test",
)
mue.register("tasks", TASK.name, TASK)
