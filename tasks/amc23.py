"""amc23: 40 problems of the AMC 12 2023 (A and B) with numeric answers, graded by the answer grader.

Data: QwenLM/Qwen2.5-Math ``evaluation/data/amc23/test.jsonl`` at commit a45202bd, pinned by sha256;
its answers are JSON numbers (27.0), given to the grader as "27". Same protocol as aime24: zero-shot
boxed chain of thought, temperature 0.6 / top-p 0.95, ``--samples k`` for avg@k with pass@k and maj@k.
Written with the public API only, as a third-party task would be.
"""

import mathusereval as mue

DATA = mue.pinned_source(
    "amc23/test.jsonl",
    "https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/a45202bd16f1ec06f433442dc1152d0074773465/"
    "evaluation/data/amc23/test.jsonl",
    "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4",
)


def to_sample(row: dict[str, object]) -> mue.Sample:
    answer = row["answer"]
    gold = str(int(answer)) if isinstance(answer, float) and answer.is_integer() else str(answer)
    prompt = mue.user_turn(mue.BOXED_COT.format(question=row["problem"]))
    return mue.Sample("amc23", str(row["id"]), prompt, gold, {"question": row["problem"]})


TASK = mue.Task(
    name="amc23",
    version="1",
    load=mue.jsonl_loader(DATA, to_sample, required=("id", "problem", "answer"), numbers=("id", "answer")),
    graders=("answer",),
    aggregate=mue.accuracy,
    params=mue.GenerationParams(temperature=0.6, top_p=0.95, max_tokens=4096),
    description="AMC 2023 (40), zero-shot boxed; --samples k for avg@k, pass@k, maj@k",
)
mue.register("tasks", TASK.name, TASK)
