"""college_math: College Math: 2818 college-level exercises (algebra, calculus, linear algebra, ...).

Qwen2.5-Math ``evaluation/data/college_math/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``answer`` without ``$`` (parse_ground_truth), question:
``question``.
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "college_math",
    "91131bc4a355b884fc63ef7c4f048c35adb030004a4cb07b1475698f120aa4a6",
    "College Math (2818), zero-shot boxed",
    question=lambda row: suite.text(row, "question"),
    gold=lambda row: suite.text(row, "answer").replace("$", "").strip(),
)
