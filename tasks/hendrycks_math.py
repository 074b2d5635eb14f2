"""math and math500: the MATH competition test set (5000 items) and its MATH-500 subset.

Data (shared/data/math/PROVENANCE.md): ``math/test.jsonl`` with ``problem, level ("Level 3"), type
(subject), solution, unique_id``; the gold is the solution's final boxed answer, read the way the
answer grader reads a response (`extract_reference`): 90 test solutions box several answers ("the
answers are \\boxed{-2} and \\boxed{1}", graders.md §1), which are kept together as "-2, 1" instead of
keeping only the last box as hendrycks and lm-eval do.
``math/math500_test.jsonl`` (PRM800K's split, "Let's Verify Step by Step") has the curated ``answer``,
``subject`` and an integer ``level``. Accuracy is reported overall, per subject and per level.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from mathusereval.data import find_data_file, read_jsonl, sha256_file
from mathusereval.errors import DataError
from mathusereval.graders.extract import last_box_group
from mathusereval.metrics import accuracy, mean_with_stderr, per_sample_scores
from mathusereval.records import GenerationParams, Grade, MetricValue, Sample
from mathusereval.registry import register
from mathusereval.task import LoadedData, Task, user_turn

from .prompts import BOXED_COT


def _sample(task: str, row: dict[str, object], reference: str, subject: str, level: int | None) -> Sample:
    return Sample(
        task=task,
        id=str(row["unique_id"]),
        messages=user_turn(BOXED_COT.format(question=row["problem"])),
        reference=reference,
        metadata={"subject": subject, "level": level},
    )


def _level(raw: object) -> int | None:
    text = str(raw).removeprefix("Level ").strip()
    return int(text) if text.isdigit() else None


def load_math(data_dir: Path | None) -> LoadedData:
    path = find_data_file(data_dir, "math/test.jsonl", "math")
    samples: list[Sample] = []
    for lineno, row in read_jsonl(path, required=("problem", "level", "type", "solution", "unique_id")):
        boxed = last_box_group(row["solution"])
        if boxed is None:
            raise DataError(f"{path}:{lineno}: field 'solution' has no \\boxed{{}} answer")
        samples.append(_sample("math", row, boxed[1], row["type"], _level(row["level"])))
    return LoadedData(samples=samples, sha256=sha256_file(path), source=str(path))


def load_math500(data_dir: Path | None) -> LoadedData:
    path = find_data_file(data_dir, "math/math500_test.jsonl", "math500")
    samples = [
        _sample("math500", row, row["answer"], row["subject"], _level(row["level"]))
        for _, row in read_jsonl(path, required=("problem", "answer", "subject", "level", "unique_id"))
    ]
    return LoadedData(samples=samples, sha256=sha256_file(path), source=str(path))


def aggregate(samples: Sequence[Sample], grades: Sequence[Grade]) -> list[MetricValue]:
    """Accuracy overall, per subject and per level."""
    scores = per_sample_scores(grades)
    metrics = accuracy(samples, grades)
    for key in ("subject", "level"):
        for value in sorted({s.metadata[key] for s in samples}, key=str):
            group = [scores[s.id] for s in samples if s.metadata[key] == value and s.id in scores]
            metrics.append(mean_with_stderr(f"accuracy/{key}={value}", group))
    return metrics


MATH = Task(
    name="math",
    version="2",  # 2: several boxed answers in a solution form the gold together
    load=load_math,
    prompt_template=BOXED_COT,
    graders=("answer",),
    aggregate=aggregate,
    params=GenerationParams(temperature=0.0, max_tokens=2048),
    description="MATH test (5000), zero-shot boxed answer",
)
MATH500 = dataclasses.replace(
    MATH, name="math500", load=load_math500, description="MATH-500 (PRM800K split), zero-shot boxed answer"
)
register("tasks", MATH.name, MATH)
register("tasks", MATH500.name, MATH500)
