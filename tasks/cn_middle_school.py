"""cn_middle_school: CN Middle School 24: 101 problems of the 2024 Chinese high-school entrance exams; choice items
by letter.

Qwen2.5-Math ``evaluation/data/cn_middle_school/test.jsonl`` at a45202bd, pinned by sha256
(`tasks.qwen25_suite`). Fields as ``evaluation/parser.py`` reads them: gold: ``choice_answer`` when set, else
``answer`` (parse_ground_truth); options read from the question.
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "cn_middle_school",
    "d768b866b72ecd1ddcaa84acb56d7bd70d759fbb2cdb0c2bc63f1e5befdb58d6",
    "CN Middle School 24 (101), Chinese, choice and open",
    question=lambda row: suite.text(row, "question"),
    gold=suite.choice_or_answer,
    options=suite.options_if_choice,
    graders=("choice",),
)
