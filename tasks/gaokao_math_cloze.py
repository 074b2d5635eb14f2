"""gaokao_math_cloze: GaoKao Math Cloze: 118 fill-in-the-blank problems (AGIEval), several blanks joined by ``;``.

Qwen2.5-Math ``evaluation/data/gaokao_math_cloze/test.jsonl`` at a45202bd, pinned by sha256
(`tasks.qwen25_suite`). Fields as ``evaluation/parser.py`` reads them: gold: ``answer`` without ``$``
(parse_ground_truth); question: ``question``.
"""

from . import qwen25_suite as suite

TASK = suite.task(
    "gaokao_math_cloze",
    "088675c147794970a3ed25c7147a3bbc59715d6813837d5f483f46dcb1b5008d",
    "GaoKao Math Cloze (118), Chinese blanks",
    question=lambda row: suite.text(row, "question"),
    gold=lambda row: suite.text(row, "answer").replace("$", "").strip(),
)
