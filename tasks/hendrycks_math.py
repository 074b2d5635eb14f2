"""math and math500: the MATH competition test set (5000 items) and its MATH-500 subset.

Data (hendrycks/math MATH.tar, built as mathusereval.sources describes): ``math/test.jsonl`` with ``problem, level
("Level 3"), type
(subject), solution, unique_id``; the gold is the solution's final boxed answer, read the way the
answer grader reads a response (`extract_reference`): 90 test solutions box several answers ("the
answers are \\boxed{-2} and \\boxed{1}", docs/design-notes.md §4), which are kept together as "-2, 1" instead of
keeping only the last box as hendrycks and lm-eval do.
``math/math500_test.jsonl`` (PRM800K's split, "Let's Verify Step by Step") has the curated ``answer``,
``subject`` and an integer ``level``. Accuracy is reported overall, per subject and per level.

Prompts, one task each: ``math`` / ``math500`` zero-shot with a boxed answer (default), and
``math-minerva-4shot`` / ``math500-minerva-4shot`` in Minerva's format ("Problem:\n…\n\nSolution:" and
"Final Answer: The final answer is X. I hope it is correct."), as lm-eval's minerva_math. Its 4 exemplars
come from ``math/train.jsonl`` by a fixed rule (see tasks/prompts.py): the first row of Algebra, Counting &
Probability, Number Theory and Precalculus whose solution has one box and at most 400 characters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mathusereval.graders.extract import last_box_group
from mathusereval.metrics import accuracy, grouped_means
from mathusereval.records import GenerationParams, Grade, MetricValue, Sample
from mathusereval.registry import register
from mathusereval.task import Loader, Task, jsonl_loader, user_turn

from .prompts import BOXED_COT, train_rows

TRAIN_FILE = "math/train.jsonl"
# the build of MATH.tar's train files (mathusereval.sources)
TRAIN_SHA256 = "00aa30008a611172529ab775ed6f3af9efd32974625b19181c3ebfc724134e52"
MINERVA_SUBJECTS = ("Algebra", "Counting & Probability", "Number Theory", "Precalculus")
MINERVA_QUERY = "Problem:\n{question}\n\nSolution:"
MINERVA_FINAL = "Final Answer: The final answer is ${answer}$. I hope it is correct."


def minerva_prefix(data_dir: Path | None, task: str) -> str:
    rows = train_rows(data_dir, TRAIN_FILE, TRAIN_SHA256, task, ("problem", "type", "solution"))
    parts = []
    for subject in MINERVA_SUBJECTS:
        row = next(
            r
            for r in rows
            if r["type"] == subject and r["solution"].count("\\boxed") == 1 and len(r["solution"]) <= 400
        )
        box = last_box_group(row["solution"])
        assert box is not None
        solution = MINERVA_FINAL.format(answer=box[1])
        parts.append(MINERVA_QUERY.format(question=row["problem"]) + f"\n{row['solution']}\n{solution}\n\n")
    return "".join(parts)


def _sample(
    task: str, row: dict[str, object], reference: str, subject: str, level: int | None, head: str | None
) -> Sample:
    if head is None:
        prompt = BOXED_COT.format(question=row["problem"])
    else:
        prompt = head + MINERVA_QUERY.format(question=row["problem"])
    return Sample(
        task=task,
        id=str(row["unique_id"]),
        messages=user_turn(prompt),
        reference=reference,
        metadata={"subject": subject, "level": level, "question": row["problem"]},
    )


def _level(raw: object) -> int | None:
    text = str(raw).removeprefix("Level ").strip()
    return int(text) if text.isdigit() else None


def math_loader(task: str, minerva: bool, data_file: str = "math/test.jsonl") -> Loader:
    # 4 train solutions write "\boxed 2" without braces; a train task leaves them out rather than guess a gold
    train = data_file == TRAIN_FILE

    def prepare(data_dir: Path | None) -> Callable[[dict[str, Any]], Sample | None]:
        head = minerva_prefix(data_dir, task) if minerva else None

        def to_sample(row: dict[str, Any]) -> Sample | None:
            boxed = last_box_group(row["solution"])
            if boxed is None and not train:
                raise ValueError("field 'solution' has no \\boxed{} answer")
            return None if boxed is None else _sample(task, row, boxed[1], row["type"], _level(row["level"]), head)

        return to_sample

    fields = ("problem", "level", "type", "solution", "unique_id")
    return jsonl_loader(data_file, prepare=prepare, required=fields, numbers=("level",), task=task)


def math500_loader(task: str, minerva: bool) -> Loader:
    def prepare(data_dir: Path | None) -> Callable[[dict[str, Any]], Sample]:
        head = minerva_prefix(data_dir, task) if minerva else None
        return lambda row: _sample(task, row, row["answer"], row["subject"], _level(row["level"]), head)

    fields = ("problem", "answer", "subject", "level", "unique_id")
    return jsonl_loader("math/math500_test.jsonl", prepare=prepare, required=fields, numbers=("level",), task=task)


def aggregate(samples: Sequence[Sample], grades: Sequence[Grade]) -> list[MetricValue]:
    """Accuracy overall, per subject and per level."""
    by_group = [grouped_means(samples, grades, key) for key in ("subject", "level")]
    return accuracy(samples, grades) + by_group[0] + by_group[1]


MATH = Task(
    name="math",
    version="2",  # 2: several boxed answers in a solution form the gold together
    load=math_loader("math", minerva=False),
    graders=("answer",),
    aggregate=aggregate,
    params=GenerationParams(temperature=0.0, max_tokens=2048),
    description="MATH test (5000), zero-shot boxed answer",
)
MATH500 = dataclasses.replace(
    MATH,
    name="math500",
    load=math500_loader("math500", minerva=False),
    description="MATH-500 (PRM800K split), zero-shot boxed answer",
)
_MINERVA_PARAMS = GenerationParams(temperature=0.0, max_tokens=2048, stop=("Problem:",))
MATH_MINERVA = dataclasses.replace(
    MATH,
    name="math-minerva-4shot",
    load=math_loader("math-minerva-4shot", minerva=True),
    params=_MINERVA_PARAMS,
    description="MATH test (5000), Minerva 4-shot format",
)
MATH500_MINERVA = dataclasses.replace(
    MATH500,
    name="math500-minerva-4shot",
    load=math500_loader("math500-minerva-4shot", minerva=True),
    params=_MINERVA_PARAMS,
    description="MATH-500, Minerva 4-shot format",
)
MATH_TRAIN = dataclasses.replace(
    MATH,
    name="math-train",
    load=math_loader("math-train", minerva=False, data_file=TRAIN_FILE),
    description="MATH train (7496 with a braced boxed answer), zero-shot boxed answer: sampling for RFT/DPO data",
)
for _task in (MATH, MATH500, MATH_MINERVA, MATH500_MINERVA, MATH_TRAIN):
    register("tasks", _task.name, _task)
