"""Built-in graders. A grader is ``(Sample, Generation) -> Grade``, registered by name."""

from mathusereval.registry import register

from .answer import AnswerGrade, GradingPolicy, answer_grader, grade_answer, grade_many, is_equivalent

register("graders", "answer", answer_grader)

__all__ = ["AnswerGrade", "GradingPolicy", "answer_grader", "grade_answer", "grade_many", "is_equivalent"]
