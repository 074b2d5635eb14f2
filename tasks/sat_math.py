"""sat_math: SAT Math: 32 four-option SAT questions (from AGIEval), graded by the option letter.

Qwen2.5-Math ``evaluation/data/sat_math/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``Answer``; question: ``question`` then ``Answer Choices:
(A) ... (D) ...`` (parse_question).
"""

import re

from . import qwen25_suite as suite


def _listed(row: suite.Row) -> str:
    """``A) x B) y`` -> ``(A) x (B) y``, as parse_question writes the options."""
    listed = "(" + suite.text(row, "options").strip()
    return re.sub(r" ([B-D])\) ", r" (\1) ", listed)


def _question(row: suite.Row) -> str:
    return f"{suite.text(row, 'question').strip()}\nAnswer Choices: {_listed(row)}"


TASK = suite.task(
    "sat_math",
    "96720a1dc496ea72f80db55250290cf9c48e95b657ac2183b7deb1dc4627351f",
    "SAT Math (32), four options, zero-shot",
    question=_question,
    gold=lambda row: suite.text(row, "Answer").strip(),
    options=lambda row: suite.inline_options(_listed(row)),
    graders=("choice",),
)
