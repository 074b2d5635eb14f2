"""mmlu_stem: MMLU-STEM: 3018 four-option questions of the 18 STEM subjects of MMLU, graded by the option letter.

Qwen2.5-Math ``evaluation/data/mmlu_stem/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``"ABCD"[answer]``; question: ``question`` then ``Answer
Choices: (A) ... (D) ...`` (parse_question).
"""

from . import qwen25_suite as suite


def _choices(row: suite.Row) -> list[str]:
    choices = row.get("choices")
    if not isinstance(choices, list) or len(choices) != 4 or not all(isinstance(c, str) for c in choices):
        raise ValueError("field 'choices' must be a list of four texts")
    return [c.strip() for c in choices]


def _gold(row: suite.Row) -> str:
    index = row.get("answer")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 4:
        raise ValueError("field 'answer' must be an option index 0-3")
    return "ABCD"[index]


TASK = suite.task(
    "mmlu_stem",
    "fd7c16f96067d285638abb5aaef9cd8a063b11454e14cb64df93141a58691478",
    "MMLU-STEM (3018), four options, zero-shot (the report: 5-shot)",
    question=lambda row: suite.with_options(row, dict(zip("ABCD", _choices(row), strict=True))),
    gold=_gold,
    options=lambda row: suite.letters_of(_choices(row)),
    graders=("choice",),
)
