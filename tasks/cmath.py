"""cmath: CMATH: 600 Chinese elementary-school word problems (grades 1-6), a number as answer.

Qwen2.5-Math ``evaluation/data/cmath/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`). Fields
as ``evaluation/parser.py`` reads them: gold: ``answer``; question: ``question``.
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "cmath",
    "e2ceabf05d10b37f207eaebbe8db24dbfc961e1a4f07337d2fc4db42a7f44fdb",
    "CMATH (600), Chinese, numeric",
    question=lambda row: suite.text(row, "question"),
    gold=lambda row: suite.number(row, "answer"),
)
