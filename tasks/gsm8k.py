"""gsm8k: grade-school math word problems, test split (1319 items), and its few-shot prompt variants.

Data: openai/grade-school-math ``grade_school_math/data/test.jsonl`` (fields ``question``, ``answer``);
the gold is the text after ``#### `` with thousands commas removed, as upstream's ``extract_answer`` does
(openai/grade-school-math ``grade_school_math/dataset.py``).

Prompts, one task each (so their runs never mix):
- ``gsm8k``: zero-shot chat prompt, final answer boxed (default).
- ``gsm8k-5shot``: "Question: …\nAnswer: …" with the answer in the dataset's own ``#### n`` format, as
  lm-eval's gsm8k task; the first 5 rows of the train split (lm-eval samples 5 at random).
- ``gsm8k-cot-8shot``: the chain-of-thought format of Wei et al. (2022), "Q: …\nA: <reasoning> The answer
  is n."; the first 8 train rows, calculator annotations ``<<48/2=24>>`` removed (exemplars: docs/design-notes.md §7).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mathusereval as mue

# openai/grade-school-math @ 3101c7d5, the original release (the hub's openai/gsm8k is a parquet conversion)
_UPSTREAM = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c"
DATA_FILE = mue.pinned_source(
    "gsm8k/test.jsonl",
    f"{_UPSTREAM}/grade_school_math/data/test.jsonl",
    "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
)
TRAIN_FILE = mue.pinned_source(  # also the few-shot exemplars of gsm8k-5shot and gsm8k-cot-8shot
    "gsm8k/train.jsonl",
    f"{_UPSTREAM}/grade_school_math/data/train.jsonl",
    "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
)
_ANNOTATION = re.compile(r"<<[^>]*>>")


def _exemplars(data_dir: Path | None, k: int, task: str) -> list[dict[str, Any]]:
    return mue.pinned_rows(data_dir, TRAIN_FILE, task, ("question", "answer"))[:k]


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


def loader(
    task: str, prefix: Callable[[Path | None], str] | None, template: str, data_file: str = DATA_FILE
) -> mue.Loader:
    split = "train" if data_file == TRAIN_FILE else "test"

    def prepare(data_dir: Path | None) -> Callable[[dict[str, Any]], mue.Sample]:
        head = prefix(data_dir) if prefix is not None else ""
        index = itertools.count()

        def to_sample(row: dict[str, Any]) -> mue.Sample:
            if "####" not in row["answer"]:
                raise ValueError("field 'answer' has no '#### <number>' final line")
            gold = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
            prompt = mue.user_turn(head + template.format(question=row["question"]))
            # metadata: what an LLM judge is shown
            return mue.Sample(task, f"{split}-{next(index):04d}", prompt, gold, {"question": row["question"]})

        return to_sample

    return mue.jsonl_loader(data_file, prepare=prepare, required=("question", "answer"), task=task)


load = loader("gsm8k", None, mue.BOXED_COT)


TASK = mue.Task(
    name="gsm8k",
    version="1",
    load=load,
    graders=("answer",),
    aggregate=mue.accuracy,
    params=mue.GenerationParams(temperature=0.0, max_tokens=1024),
    description="GSM8K test (1319), zero-shot boxed answer",
)
FIVE_SHOT = dataclasses.replace(
    TASK,
    name="gsm8k-5shot",
    load=loader("gsm8k-5shot", five_shot_prefix, "Question: {question}\nAnswer:"),
    params=mue.GenerationParams(temperature=0.0, max_tokens=512, stop=("Question:", "\n\n\n")),
    description="GSM8K test (1319), 5-shot Question/Answer with #### answers",
)
COT_8SHOT = dataclasses.replace(
    TASK,
    name="gsm8k-cot-8shot",
    load=loader("gsm8k-cot-8shot", cot_prefix, "Q: {question}\nA:"),
    params=mue.GenerationParams(temperature=0.0, max_tokens=512, stop=("Q:", "\n\n\n")),
    description="GSM8K test (1319), 8-shot chain of thought (Q/A, 'The answer is n.')",
)
TRAIN = dataclasses.replace(
    TASK,
    name="gsm8k-train",
    load=loader("gsm8k-train", None, mue.BOXED_COT, TRAIN_FILE),
    description="GSM8K train (7473), zero-shot boxed answer: sampling for RFT/DPO data (mue-eval export)",
)
for _task in (TASK, FIVE_SHOT, COT_8SHOT, TRAIN):
    mue.register("tasks", _task.name, _task)
