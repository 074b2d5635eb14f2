"""gaokao2024_mix: GaoKao 2024 mix: 91 collected problems of the 2024 Chinese college entrance exams.

Qwen2.5-Math ``evaluation/data/gaokao2024_mix/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``choice_answer`` when set, else ``answer``
(parse_ground_truth); options read from the question.
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "gaokao2024_mix",
    "d00cf32da2252408cb7abd49e8e13adcb801dc08e74a9bd57d1df92c0416935c",
    "GaoKao 2024 mix (91), Chinese, choice and open",
    question=lambda row: suite.text(row, "question"),
    gold=suite.choice_or_answer,
    options=suite.options_if_choice,
    graders=("choice",),
)
