"""Tool-integrated reasoning (TIR) variants of the math tasks: ``<task>-tir`` (``math500-tir`` ...).

Protocol of QwenLM/Qwen2.5-Math @a45202bd, ``evaluation/``: the prompt type ``qwen25-math-tir``
(``utils.py`` PROMPT_TEMPLATES) is a system turn "Please integrate natural language reasoning with programs
to solve the problem above, and put your final answer within \\boxed{}." before the raw question; each call
stops at "```output" and generates at most 2048 tokens (``math_eval.py``: ``max_tokens_per_call``), greedy
(``sh/eval.sh``). The chain itself (programs run, outputs appended, at most 4 calls) is
`mathusereval.tir.chain`; the pure protocol `mathusereval.tir.protocol`.

A variant is a task of its own name (not a flag on the base task) so that its runs have their own
directory, identity and leaderboard column (labelled ``math500 [tir]``); it reads the same data file as
its base, keeps its ids, graders and aggregation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mathusereval as mue
from mathusereval.tir.protocol import STOP, SYSTEM_PROMPT

SUFFIX = "-tir"
BASES = (
    # the sets issue 33 names
    "gsm8k",
    "math",
    "math500",
    "aime24",
    "amc23",
    # the rest of the Qwen2.5-Math suite (tasks/math_suite.py)
    "minerva_math",
    "gaokao2023en",
    "olympiadbench",
    "college_math",
    "mmlu_stem",
    "gaokao2024_I",
    "gaokao2024_II",
    "gaokao2024_mix",
    "gaokao_math_qa",
    "gaokao_math_cloze",
    "cmath",
    "cn_middle_school",
    "sat_math",
    "aqua",
    "svamp",
    "asdiv",
    "mawps",
    "carp_en",
)
MAX_TOKENS_PER_CALL = 2048  # math_eval.py --max_tokens_per_call default


def question_of(sample: mue.Sample) -> str:
    """The raw question: the task's own (``metadata["question"]``), else the last user turn without the
    chain-of-thought instruction our zero-shot prompts add."""
    question = sample.question
    instruction = mue.BOXED_COT.format(question="")
    return question[: -len(instruction)] if question.endswith(instruction) else question


def tir_sample(sample: mue.Sample, name: str) -> mue.Sample:
    messages = ({"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question_of(sample)})
    return dataclasses.replace(sample, task=name, messages=messages)


def variant(base: mue.Task) -> mue.Task:
    name = base.name + SUFFIX

    def load(data_dir: Path | None) -> mue.LoadedData:
        loaded = base.load(data_dir)
        return dataclasses.replace(loaded, samples=[tir_sample(s, name) for s in loaded.samples])

    params = dataclasses.replace(base.params, stop=STOP, max_tokens=MAX_TOKENS_PER_CALL)
    return dataclasses.replace(
        base,
        name=name,
        version=f"{base.version}-tir1",
        load=load,
        params=params,
        description=f"{base.description.split(';')[0]}; tool-integrated reasoning (Qwen2.5-Math TIR, sandboxed)",
        tir=True,
    )


def variant_group(base: mue.TaskGroup) -> mue.TaskGroup:
    """``math-suite-tir`` ...: the group's columns, each on the ``-tir`` variants of its tasks (the headline
    is the same macro average, of the TIR runs)."""
    parts = tuple((label, tuple(name + SUFFIX for name in names)) for label, names in base.parts)
    return dataclasses.replace(
        base, name=base.name + SUFFIX, parts=parts, description=f"{base.description}; tool-integrated reasoning"
    )


def register_all() -> None:
    from mathusereval.plugins import registry

    known = registry.registered("tasks")
    for base in BASES:
        if base in known:
            mue.register("tasks", base + SUFFIX, variant(known[base]))
    for group in list(registry.registered("groups").values()):  # the suite's groups (tasks/math_suite.py)
        if all(name + SUFFIX in registry.registered("tasks") for _, names in group.parts for name in names):
            mue.register("groups", group.name + SUFFIX, variant_group(group))


register_all()
