"""gaokao_math_qa: GaoKao Math QA: 351 four-option problems (AGIEval), graded by the option letter.

Qwen2.5-Math ``evaluation/data/gaokao_math_qa/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``label``; question: ``question`` then ``选项: (A) ... (D)
...`` (parse_question).
"""

from . import qwen25_suite as suite


def _options(row: suite.Row) -> dict[str, str]:
    options = row.get("options")
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise ValueError("field 'options' must map option letters to texts")
    return {str(k): v for k, v in options.items()}


TASK = suite.task(
    "gaokao_math_qa",
    "4717f8ab70130e277da9056261e3d63f1f6b062049b97b2d204299917da656fb",
    "GaoKao Math QA (351), Chinese, four options",
    question=lambda row: suite.with_options(row, _options(row), "选项"),
    gold=lambda row: suite.text(row, "label").strip(),
    options=_options,
    graders=("choice",),
)
