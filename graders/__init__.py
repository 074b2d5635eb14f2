"""Built-in graders, registered by name.

A rule grader is ``(Sample, Generation) -> Grade`` (``answer``); an LLM judge (``alignbench-judge``,
``math-critique``) is an `LLMJudge` that the pipeline runs through the judge backend (``--judge MODEL``).
"""

from mathusereval.plugins.registry import register

from .answer import AnswerGrade, GradingPolicy, answer_grader, grade_answer, grade_many, is_equivalent
from .choice import ChoiceGrader, choice_grader
from .judge import ALIGNBENCH_JUDGE, MATH_CRITIQUE, Judgment, LLMJudge, parse_judgment, upstream_score
from .verifier import VERIFIER, LLMVerifier

register("graders", "answer", answer_grader)
register("graders", "choice", choice_grader)
register("graders", ALIGNBENCH_JUDGE.name, ALIGNBENCH_JUDGE)
register("graders", MATH_CRITIQUE.name, MATH_CRITIQUE)
register("graders", VERIFIER.name, VERIFIER)

__all__ = [
    "AnswerGrade",
    "ChoiceGrader",
    "GradingPolicy",
    "Judgment",
    "LLMJudge",
    "LLMVerifier",
    "answer_grader",
    "choice_grader",
    "grade_answer",
    "grade_many",
    "is_equivalent",
    "parse_judgment",
    "upstream_score",
]
