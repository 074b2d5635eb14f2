"""minerva_math: Minerva Math: 272 undergraduate science problems (MIT OCW), the boxed answer of the solution as
gold.

Qwen2.5-Math ``evaluation/data/minerva_math/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: the last box of ``solution`` (parse_ground_truth),
question: ``problem``.
"""

import mathusereval as mue

from . import qwen25_suite as suite

TASK = suite.task(
    "minerva_math",
    "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2",
    "Minerva Math (272), zero-shot boxed",
    question=lambda row: suite.text(row, "problem"),
    gold=lambda row: mue.boxed_answer(suite.text(row, "solution")) or suite.text(row, "solution"),
)
