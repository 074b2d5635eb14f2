"""A rule grader that does the answer grader's work plus a fixed 10 ms per answer (``--include`` this file,
``--graders slow-answer``): grading slower than generation on any machine, so a benchmark can check that a
grading backlog does not grow memory or slow generation."""

from __future__ import annotations

import time
from typing import Any

import mathusereval as mue

DELAY_S = 0.010


def slow_answer(sample: mue.Sample, generation: mue.Generation) -> Any:
    grade = mue.lookup("graders", "answer")(sample, generation)
    time.sleep(DELAY_S)
    return grade


mue.register("graders", "slow-answer", slow_answer)


def no_grading(sample: mue.Sample, generation: mue.Generation) -> Any:
    """A grade without grading: generation alone, the bound the others are measured against."""
    return mue.Grade(sample.id, generation.n_index, "none", score=0.0, correct=False)


mue.register("graders", "none", no_grading)
