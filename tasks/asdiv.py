"""asdiv: ASDiv: 2215 elementary word problems (answers with the unit removed: ``9 (apples)`` is 9).

Qwen2.5-Math ``evaluation/data/asdiv/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`). Fields
as ``evaluation/parser.py`` reads them: gold: ``answer`` without its parenthesised unit; question: ``body`` then
``question`` (parse_ground_truth, parse_question).
"""

import re

from . import qwen25_suite as suite

TASK = suite.task(
    "asdiv",
    "5759580385e706f961a30d4c07d6925b35c3f7c86d6c50bc413957169693dad2",
    "ASDiv (2215), numeric",
    question=lambda row: f"{suite.text(row, 'body').strip()} {suite.text(row, 'question').strip()}",
    gold=lambda row: re.sub(r"\(.*?\)", "", suite.text(row, "answer")).strip(),
)
