"""math and math500: the MATH competition test set (5000 items) and its MATH-500 subset.

Data (hendrycks/math MATH.tar, built as mathusereval.data.sources describes): ``math/test.jsonl`` with ``problem, level
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
come from ``math/train.jsonl`` by a fixed rule (docs/design-notes.md §7): the first row of Algebra, Counting &
Probability, Number Theory and Precalculus whose solution has one box and at most 400 characters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mathusereval as mue

TRAIN_FILE = "math/train.jsonl"  # built from MATH.tar and pinned there (mathusereval.data.sources.ARCHIVES)
# HuggingFaceH4/MATH-500 @ ff5b2025; the pin is the Git-LFS oid of PRM800K's math_splits/test.jsonl, which that
# hub file re-uploads (same 447 kB)
MATH500_FILE = mue.pinned_source(
    "math/math500_test.jsonl",
    "https://huggingface.co/datasets/HuggingFaceH4/MATH-500/resolve/ff5b20257d8185524591543f8ff5993951537bb8/test.jsonl",
    "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
)
MINERVA_SUBJECTS = ("Algebra", "Counting & Probability", "Number Theory", "Precalculus")
MINERVA_QUERY = "Problem:\n{question}\n\nSolution:"
MINERVA_FINAL = "Final Answer: The final answer is ${answer}$. I hope it is correct."


def minerva_prefix(data_dir: Path | None, task: str) -> str:
    rows = mue.pinned_rows(data_dir, TRAIN_FILE, task, ("problem", "type", "solution"))
    parts = []
    for subject in MINERVA_SUBJECTS:
        row = next(
            r
            for r in rows
            if r["type"] == subject and r["solution"].count("\\boxed") == 1 and len(r["solution"]) <= 400
        )
        box = mue.boxed_answer(row["solution"])
        assert box is not None
        solution = MINERVA_FINAL.format(answer=box)
        parts.append(MINERVA_QUERY.format(question=row["problem"]) + f"\n{row['solution']}\n{solution}\n\n")
    return "".join(parts)


def _sample(
    task: str, row: dict[str, object], reference: str, subject: str, level: int | None, head: str | None
) -> mue.Sample:
    if head is None:
        prompt = mue.BOXED_COT.format(question=row["problem"])
    else:
        prompt = head + MINERVA_QUERY.format(question=row["problem"])
    return mue.Sample(
        task=task,
        id=str(row["unique_id"]),
        messages=mue.user_turn(prompt),
        reference=reference,
        metadata={"subject": subject, "level": level, "question": row["problem"]},
    )


def _level(raw: object) -> int | None:
    text = str(raw).removeprefix("Level ").strip()
    return int(text) if text.isdigit() else None


def math_loader(task: str, minerva: bool, data_file: str = "math/test.jsonl") -> mue.Loader:
    # 4 train solutions write "\boxed 2" without braces; a train task leaves them out rather than guess a gold
    train = data_file == TRAIN_FILE

    def prepare(data_dir: Path | None) -> Callable[[dict[str, Any]], mue.Sample | None]:
        head = minerva_prefix(data_dir, task) if minerva else None

        def to_sample(row: dict[str, Any]) -> mue.Sample | None:
            boxed = mue.boxed_answer(row["solution"])
            if boxed is None and not train:
                raise ValueError("field 'solution' has no \\boxed{} answer")
            return None if boxed is None else _sample(task, row, boxed, row["type"], _level(row["level"]), head)

        return to_sample

    fields = ("problem", "level", "type", "solution", "unique_id")
    return mue.jsonl_loader(data_file, prepare=prepare, required=fields, numbers=("level",), task=task)


def math500_loader(task: str, minerva: bool) -> mue.Loader:
    def prepare(data_dir: Path | None) -> Callable[[dict[str, Any]], mue.Sample]:
        head = minerva_prefix(data_dir, task) if minerva else None
        return lambda row: _sample(task, row, row["answer"], row["subject"], _level(row["level"]), head)

    fields = ("problem", "answer", "subject", "level", "unique_id")
    return mue.jsonl_loader(MATH500_FILE, prepare=prepare, required=fields, numbers=("level",), task=task)


def aggregate(samples: Sequence[mue.Sample], grades: Sequence[mue.Grade]) -> list[mue.MetricValue]:
    """Accuracy overall, per subject and per level."""
    by_group = [mue.grouped_means(samples, grades, key) for key in ("subject", "level")]
    return mue.accuracy(samples, grades) + by_group[0] + by_group[1]


MATH = mue.Task(
    name="math",
    version="2",  # 2: several boxed answers in a solution form the gold together
    load=math_loader("math", minerva=False),
    graders=("answer",),
    aggregate=aggregate,
    params=mue.GenerationParams(temperature=0.0, max_tokens=2048),
    description="MATH test (5000), zero-shot boxed answer",
)
MATH500 = dataclasses.replace(
    MATH,
    name="math500",
    load=math500_loader("math500", minerva=False),
    description="MATH-500 (PRM800K split), zero-shot boxed answer",
)
_MINERVA_PARAMS = mue.GenerationParams(temperature=0.0, max_tokens=2048, stop=("Problem:",))
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
    mue.register("tasks", _task.name, _task)
