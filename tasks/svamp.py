"""svamp: SVAMP: 1000 grade-school word problems with variations, a number as answer.

Qwen2.5-Math ``evaluation/data/svamp/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`). Fields
as ``evaluation/parser.py`` reads them: gold: ``Answer``; question: ``Body`` (a full stop added) then
``Question`` (parse_question).
"""

from . import qwen25_suite as suite


def _question(row: suite.Row) -> str:
    body = suite.text(row, "Body").strip()
    return f"{body if body.endswith('.') else body + '.'} {suite.text(row, 'Question').strip()}"


TASK = suite.task(
    "svamp",
    "d0826ff1264f3860e46fc4e71db9e31d2d188960db87090e22677f9493e67a0d",
    "SVAMP (1000), numeric",
    question=_question,
    gold=lambda row: suite.number(row, "Answer"),
)
