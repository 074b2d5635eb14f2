"""gaokao2024_I: GaoKao 2024 I: 14 problems of the 2024 national paper I (single, multi-answer choice, blanks).

Qwen2.5-Math ``evaluation/data/gaokao2024_I/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``answer`` (option letters for choice items); options read
from the question.
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "gaokao2024_I",
    "9a5bb19a1b767d5cd48be164efc048351784580142b0dd84a6ad7e8ec3ece18e",
    "GaoKao 2024 I (14), Chinese, choice and blanks",
    question=lambda row: suite.text(row, "question"),
    gold=lambda row: suite.text(row, "answer").strip(),
    options=lambda row: suite.inline_options(suite.text(row, "question")),
    graders=("choice",),
)
