"""gsm8k: grade-school math word problems, test split (1319 items), and its few-shot prompt variants.

Data: openai/grade-school-math ``grade_school_math/data/test.jsonl`` (fields ``question``, ``answer``);
the gold is the text after ``#### `` with thousands commas removed, as upstream's ``extract_answer`` does
(openai/grade-school-math ``grade_school_math/dataset.py``).

Prompts, one task each (so their runs never mix):
- ``gsm8k``: zero-shot chat prompt, final answer boxed (default).
- ``gsm8k-5shot``: "Question: …\nAnswer: …" with the answer in the dataset's own ``#### n`` format, as
  lm-eval's gsm8k task; the first 5 rows of the train split (lm-eval samples 5 at random).
- ``gsm8k-cot-8shot``: the chain-of-thought format of Wei et al. (2022), "Q: …\nA: <reasoning> The answer
  is n."; the first 8 train rows, calculator annotations ``<<48/2=24>>`` removed (see tasks/prompts.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mathusereval.metrics import accuracy
from mathusereval.records import GenerationParams, Sample
from mathusereval.registry import register
from mathusereval.task import Loader, Task, jsonl_loader, user_turn

from .prompts import BOXED_COT, train_rows

DATA_FILE = "gsm8k/test.jsonl"
TRAIN_FILE = "gsm8k/train.jsonl"
# openai/grade-school-math @ 3101c7d5, train.jsonl
TRAIN_SHA256 = "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465"
_ANNOTATION = re.compile(r"<<[^>]*>>")


def _exemplars(data_dir: Path | None, k: int, task: str) -> list[dict[str, Any]]:
    return train_rows(data_dir, TRAIN_FILE, TRAIN_SHA256, task, ("question", "answer"))[:k]


def five_shot_prefix(data_dir: Path | None) -> str:
    shots = _exemplars(data_dir, 5, "gsm8k-5shot")
    return "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in shots)


def cot_prefix(data_dir: Path | None) -> str:
    parts = []
    for row in _exemplars(data_dir, 8, "gsm8k-cot-8shot"):
        reasoning, final = row["answer"].rsplit("####", 1)
        steps = " ".join(_ANNOTATION.sub("", reasoning).split())
        parts.append(f"Q: {row['question']}\nA: {steps} The answer is {final.strip()}.\n\n")
    return "".join(parts)


def loader(task: str, prefix: Callable[[Path | None], str] | None, template: str, data_file: str = DATA_FILE) -> Loader:
    split = "train" if data_file == TRAIN_FILE else "test"

    def prepare(data_dir: Path | None) -> Callable[[dict[str, Any]], Sample]:
        head = prefix(data_dir) if prefix is not None else ""
        index = itertools.count()

        def to_sample(row: dict[str, Any]) -> Sample:
            if "####" not in row["answer"]:
                raise ValueError("field 'answer' has no '#### <number>' final line")
            gold = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
            prompt = user_turn(head + template.format(question=row["question"]))
            # metadata: what an LLM judge is shown
            return Sample(task, f"{split}-{next(index):04d}", prompt, gold, {"question": row["question"]})

        return to_sample

    return jsonl_loader(data_file, prepare=prepare, required=("question", "answer"), task=task)


load = loader("gsm8k", None, BOXED_COT)


TASK = Task(
    name="gsm8k",
    version="1",
    load=load,
    graders=("answer",),
    aggregate=accuracy,
    params=GenerationParams(temperature=0.0, max_tokens=1024),
    description="GSM8K test (1319), zero-shot boxed answer",
)
FIVE_SHOT = dataclasses.replace(
    TASK,
    name="gsm8k-5shot",
    load=loader("gsm8k-5shot", five_shot_prefix, "Question: {question}\nAnswer:"),
    params=GenerationParams(temperature=0.0, max_tokens=512, stop=("Question:", "\n\n\n")),
    description="GSM8K test (1319), 5-shot Question/Answer with #### answers",
)
COT_8SHOT = dataclasses.replace(
    TASK,
    name="gsm8k-cot-8shot",
    load=loader("gsm8k-cot-8shot", cot_prefix, "Q: {question}\nA:"),
    params=GenerationParams(temperature=0.0, max_tokens=512, stop=("Q:", "\n\n\n")),
    description="GSM8K test (1319), 8-shot chain of thought (Q/A, 'The answer is n.')",
)
TRAIN = dataclasses.replace(
    TASK,
    name="gsm8k-train",
    load=loader("gsm8k-train", None, BOXED_COT, TRAIN_FILE),
    description="GSM8K train (7473), zero-shot boxed answer: sampling for RFT/DPO data (mue-eval export)",
)
for _task in (TASK, FIVE_SHOT, COT_8SHOT, TRAIN):
    register("tasks", _task.name, _task)
