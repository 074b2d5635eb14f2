"""gsm8k: grade-school math word problems, test split (1319 items).

Data: openai/grade-school-math ``grade_school_math/data/test.jsonl`` (fields ``question``, ``answer``);
the gold is the text after ``#### `` with thousands commas removed, as upstream's ``extract_answer`` does
(shared/docs PROVENANCE for gsm8k). Default prompt: zero-shot, final answer boxed.
"""

from __future__ import annotations

from pathlib import Path

from mathusereval.data import find_data_file, read_jsonl, sha256_file
from mathusereval.errors import DataError
from mathusereval.metrics import accuracy
from mathusereval.records import GenerationParams, Sample
from mathusereval.registry import register
from mathusereval.task import LoadedData, Task, user_turn

from .prompts import BOXED_COT

DATA_FILE = "gsm8k/test.jsonl"


def load(data_dir: Path | None) -> LoadedData:
    path = find_data_file(data_dir, DATA_FILE, "gsm8k")
    samples: list[Sample] = []
    for lineno, row in read_jsonl(path, required=("question", "answer")):
        if "####" not in row["answer"]:
            raise DataError(f"{path}:{lineno}: field 'answer' has no '#### <number>' final line")
        gold = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        samples.append(
            Sample(
                task="gsm8k",
                id=f"test-{len(samples):04d}",
                messages=user_turn(BOXED_COT.format(question=row["question"])),
                reference=gold,
            )
        )
    return LoadedData(samples=samples, sha256=sha256_file(path), source=str(path))


TASK = Task(
    name="gsm8k",
    version="1",
    load=load,
    prompt_template=BOXED_COT,
    graders=("answer",),
    aggregate=accuracy,
    params=GenerationParams(temperature=0.0, max_tokens=1024),
    description="GSM8K test (1319), zero-shot boxed answer",
)
register("tasks", TASK.name, TASK)
