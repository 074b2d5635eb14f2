"""demo: 25 short problems written for this project, shipped inside the package.

Ten grade-school word problems, ten with LaTeX answers (fractions, intervals, radicals) and five in
Chinese, each with its final answer. It runs offline in about a minute on two CPU cores with the embedded
model, which is what a bare ``mue-eval`` does; it measures plumbing, not mathematical skill.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mathusereval.metrics import accuracy, grouped_means
from mathusereval.records import GenerationParams, Grade, MetricValue, Sample
from mathusereval.registry import register
from mathusereval.task import Task, jsonl_loader, user_turn

from .prompts import BOXED_COT

DATA_FILE = Path(__file__).with_name("data") / "demo.jsonl"


def to_sample(row: dict[str, Any]) -> Sample:
    prompt = user_turn(BOXED_COT.format(question=row["question"]))
    return Sample("demo", row["id"], prompt, row["answer"], {"kind": row["kind"]})


# the embedded file; the data directory is not used
load = jsonl_loader(DATA_FILE, to_sample, required=("id", "kind", "question", "answer"), task="demo")


def aggregate(samples: Sequence[Sample], grades: Sequence[Grade]) -> list[MetricValue]:
    """Accuracy overall, then per kind of problem."""
    return accuracy(samples, grades) + grouped_means(samples, grades, "kind", "accuracy/{value}")


TASK = Task(
    name="demo",
    version="1",
    load=load,
    graders=("answer",),
    aggregate=aggregate,
    params=GenerationParams(temperature=0.0, max_tokens=256),
    description="25 built-in problems (word, LaTeX, Chinese); offline smoke test",
)
register("tasks", TASK.name, TASK)
