"""olympiadbench: OlympiadBench: 675 English competition math problems with one final answer each (text-only, open-
ended).

Qwen2.5-Math ``evaluation/data/olympiadbench/test.jsonl`` at a45202bd, pinned by sha256 (`tasks.qwen25_suite`).
Fields as ``evaluation/parser.py`` reads them: gold: ``final_answer[0]`` without its ``$`` (parse_ground_truth),
question: ``question``.
"""

from . import qwen25_suite as suite


def _gold(row: suite.Row) -> str:
    answers = row.get("final_answer")
    if not isinstance(answers, list) or not answers or not isinstance(answers[0], str):
        raise ValueError("field 'final_answer' must be a non-empty list of text")
    return answers[0].strip("$")


TASK = suite.task(
    "olympiadbench",
    "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416",
    "OlympiadBench (675), zero-shot boxed",
    question=lambda row: suite.text(row, "question"),
    gold=_gold,
)
