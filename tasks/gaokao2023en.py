"""gaokao2023en: GaoKao 2023 En: 385 problems of the 2023 Chinese college entrance exams, in English.

Qwen2.5-Math ``evaluation/data/gaokao2023en/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``answer`` without ``$`` (parse_ground_truth), question:
``question``.
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "gaokao2023en",
    "654d8f49bdb86f578c171dbc0dd8f4d9f1bf3d7a7438f60359fda7d643df4951",
    "GaoKao 2023 En (385), zero-shot boxed",
    question=lambda row: suite.text(row, "question"),
    gold=lambda row: suite.text(row, "answer").replace("$", "").strip(),
    options=lambda row: suite.inline_options(suite.text(row, "question")),
    graders=("choice",),  # 46 of its items are multiple choice with a letter gold (math_eval.py grades the letter)
)
