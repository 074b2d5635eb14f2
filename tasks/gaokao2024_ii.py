"""gaokao2024_II: GaoKao 2024 II: 14 problems of the 2024 national paper II (single, multi-answer choice, blanks).

Qwen2.5-Math ``evaluation/data/gaokao2024_II/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``answer`` (option letters for choice items); options read
from the question.
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "gaokao2024_II",
    "55cc8057d85c5bdf0a993cda2d37b3aee6f733761c70b101a6d086d213732acc",
    "GaoKao 2024 II (14), Chinese, choice and blanks",
    question=lambda row: suite.text(row, "question"),
    gold=lambda row: suite.text(row, "answer").strip(),
    options=lambda row: suite.inline_options(suite.text(row, "question")),
    graders=("choice",),
)
