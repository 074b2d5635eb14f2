"""aqua: AQuA-RAT: 254 algebra word problems with five options, graded by the option letter.

Qwen2.5-Math ``evaluation/data/aqua/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`). Fields as
``evaluation/parser.py`` reads them: gold: ``correct``; question: ``question`` then ``Answer Choices: (A) ...
(E) ...`` (parse_question).
"""

from . import qwen25_suite as suite


def _options(row: suite.Row) -> list[str]:
    options = row.get("options")
    if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
        raise ValueError("field 'options' must be a list of texts")
    return options


TASK = suite.task(
    "aqua",
    "de41581881ef95c5588c44ddc701c77fd480839241dd422a0d181262af24520c",
    "AQuA-RAT (254), five options, zero-shot",
    question=lambda row: suite.with_options(row, suite.letters_of(_options(row))),
    gold=lambda row: suite.text(row, "correct").strip(),
    options=lambda row: suite.letters_of(_options(row)),
    graders=("choice",),
)
