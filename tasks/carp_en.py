"""carp_en: CARP (English): 976 middle-school algebra problems, expression answers.

Qwen2.5-Math ``evaluation/data/carp_en/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`). Fields
as ``evaluation/parser.py`` reads them: gold: ``answer``; question: ``content`` (parse_ground_truth,
parse_question).
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "carp_en",
    "f93f00bed6273d7f6795f674d8458662be596950f81ef433d8b80592ba3aae64",
    "CARP-en (976), expressions",
    question=lambda row: suite.text(row, "content"),
    gold=lambda row: suite.text(row, "answer"),
)
