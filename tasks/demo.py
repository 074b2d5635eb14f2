"""demo: 25 short problems written for this project, shipped inside the package.

Ten grade-school word problems, ten with LaTeX answers (fractions, intervals, radicals) and five in
Chinese, each with its final answer. It runs offline in about a minute on two CPU cores with the embedded
model, which is what a bare ``mue-eval`` does; it measures plumbing, not mathematical skill.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mathusereval.data import read_jsonl, sha256_file
from mathusereval.metrics import accuracy, grouped_means
from mathusereval.records import GenerationParams, Grade, MetricValue, Sample
from mathusereval.registry import register
from mathusereval.task import LoadedData, Task, user_turn

from .prompts import BOXED_COT

DATA_FILE = Path(__file__).with_name("data") / "demo.jsonl"


def load(data_dir: Path | None) -> LoadedData:
    """The embedded file; `data_dir` is not used."""
    samples = [
        Sample(
            task="demo",
            id=row["id"],
            messages=user_turn(BOXED_COT.format(question=row["question"])),
            reference=row["answer"],
            metadata={"kind": row["kind"]},
        )
        for _, row in read_jsonl(DATA_FILE, required=("id", "kind", "question", "answer"))
    ]
    return LoadedData(samples=samples, sha256=sha256_file(DATA_FILE), source="embedded:demo.jsonl")


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
