"""aime24: the 30 problems of AIME 2024 I and II; integer answers 0-999, graded by the answer grader.

Data: QwenLM/Qwen2.5-Math ``evaluation/data/aime24/test.jsonl`` at commit a45202bd, pinned by sha256.
Defaults as math-model reports use them: the zero-shot boxed chain-of-thought prompt, sampling at
temperature 0.6 / top-p 0.95 (DeepSeek-R1's evaluation setting) so that ``--samples k`` gives avg@k
(mean accuracy, the headline) with pass@k and maj@k. 30 items make a one-sample score noisy (one item
is 3.3 points): use k >= 16 and read the standard error. Written with the public API only, as a
third-party task would be.
"""

import mathusereval as mue

DATA = mue.pinned_source(
    "aime24/test.jsonl",
    "https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/a45202bd16f1ec06f433442dc1152d0074773465/"
    "evaluation/data/aime24/test.jsonl",
    "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac",
)


def to_sample(row: dict[str, object]) -> mue.Sample:
    prompt = mue.user_turn(mue.BOXED_COT.format(question=row["problem"]))
    return mue.Sample("aime24", str(row["id"]), prompt, str(row["answer"]), {"question": row["problem"]})


TASK = mue.Task(
    name="aime24",
    version="1",
    load=mue.jsonl_loader(DATA, to_sample, required=("id", "problem", "answer"), numbers=("id", "answer")),
    graders=("answer",),
    aggregate=mue.accuracy,
    params=mue.GenerationParams(temperature=0.6, top_p=0.95, max_tokens=4096),
    description="AIME 2024 (30), zero-shot boxed; --samples 16+ for avg@k, pass@k, maj@k",
)
mue.register("tasks", TASK.name, TASK)
