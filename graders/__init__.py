"""Built-in graders. A grader is ``(Sample, Generation) -> Grade``, registered by name."""

from mathusereval.registry import register

from .answer import answer_grader, grade_answer, is_equivalent

register("graders", "answer", answer_grader)

__all__ = ["answer_grader", "grade_answer", "is_equivalent"]
