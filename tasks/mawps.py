"""mawps: MAWPS: 2065 word problems (SingleEq, SingleOp, AddSub, MultiArith), a number as answer.

Qwen2.5-Math ``evaluation/data/mawps/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`). Fields
as ``evaluation/parser.py`` reads them: gold: ``target``; question: ``input`` (parse_ground_truth,
parse_question).
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "mawps",
    "00ffe31161be8623a3d36741830edbba87a3aee0109f693810fe40b9d5d91b8b",
    "MAWPS (2065), numeric",
    question=lambda row: suite.text(row, "input"),
    gold=lambda row: suite.number(row, "target"),
)
