"""The answer grader: extract a response's final answer and decide whether it equals the reference.

Public API (documented in README "Answer grader"):

- `is_equivalent(reference, prediction, *, is_response=True) -> bool`
- `grade_answer(reference, prediction, *, is_response=True, policy=...) -> AnswerGrade` — the verdict
  and why: string match, numeric, choice letter, text, set/interval/tuple rule, equation rule, symbolic,
  no answer found, parse failure, timeout, memory limit.
- `grade_many(pairs, *, workers=None, ...) -> list[AnswerGrade]` — many pairs on all cores.

Stages: extraction (`extract.py`) and the cheap rules (`compare.py`: normalised text, exact
rationals, structure) run in-process on bounded text; only pairs that need algebra go to a sandboxed
sympy worker (`sandbox.py`, `symbolic.py`) with a hard time and memory limit.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from mathusereval.plugins.metrics import accuracy
from mathusereval.plugins.task import EMPTY_REFERENCE
from mathusereval.records import Generation, Grade, Sample

from .compare import GradingPolicy, NeedsSymbolic, SymbolicCompare, compare, same_text
from .extract import MAX_INPUT_CHARS, extract_answer, extract_reference, last_boxed
from .hedge import is_hedged_against
from .normalize import normalize
from .sandbox import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, WorkerPool, shared_pool

__all__ = [
    "MAX_INPUT_CHARS",
    "AnswerGrade",
    "AnswerGrader",
    "GradingPolicy",
    "answer_grader",
    "answer_pool",
    "extract_answer",
    "extract_reference",
    "grade_answer",
    "grade_many",
    "is_equivalent",
    "last_boxed",
    "normalize",
]

_HANDLER = "mathusereval.graders.answer:_worker_grade"
DEFAULT_POLICY = GradingPolicy()


@dataclass(frozen=True, slots=True)
class AnswerGrade:
    """The verdict on one (reference, prediction) pair and why it was reached.

    `extracted` is the answer found in the prediction (None: the response states none); `reference`
    and `prediction` are their normalised forms. `reason` says which rule decided; ``"timeout"``,
    ``"memory limit"`` and ``"parse failure"`` are never silently folded into a plain "wrong".
    """

    extracted: str | None
    reference: str
    prediction: str | None
    correct: bool
    reason: str


def _extract(reference: str, prediction: str, is_response: bool, truncated: bool) -> tuple[str, str | None]:
    """(the reference's answer, the prediction's answer or None)."""
    cut = prediction[:MAX_INPUT_CHARS].strip()
    extracted = extract_answer(prediction, truncated=truncated) if is_response else cut
    return extract_reference(reference), extracted or None


HEDGED = "hedged answer"


def _written_alike(reference: str, ref_answer: str, answer: str, ref_norm: str, answer_norm: str) -> bool:
    """The answer is the reference written out: the normalised text of its answer, or of the whole reference
    field, ``$`` signs aside. Checked first, as Qwen2.5-Math's ``math_equal`` compares the normalised strings
    first, so every reference, however little our rules read of it (a sentence, a piecewise function, a
    derivation), is right against itself."""
    if same_text(ref_norm, answer_norm):
        return True
    whole = reference.strip()
    if whole == ref_answer and "$" not in whole + answer:
        return False  # nothing else to compare: the reference field is its answer
    return same_text(normalize(whole.replace("$", "")), normalize(answer.replace("$", "")))


def _grade(
    reference: str,
    prediction: str,
    is_response: bool,
    policy: GradingPolicy,
    symbolic: SymbolicCompare | None,
    truncated: bool = False,
) -> AnswerGrade:
    if not reference.strip():  # a data defect (the task's loader leaves such items out), never a verdict
        return AnswerGrade(None, "", None, False, EMPTY_REFERENCE)
    ref_answer, extracted = _extract(reference, prediction, is_response, truncated)
    ref_norm = normalize(ref_answer)
    if extracted is None:
        return AnswerGrade(None, ref_norm, None, False, "no answer found")
    verdict = AnswerGrade(extracted, ref_norm, normalize(extracted), True, "string match")
    if _written_alike(reference, ref_answer, extracted, ref_norm, verdict.prediction or ""):
        return verdict
    if is_hedged_against(extracted, reference, ref_answer):
        return dataclasses.replace(verdict, correct=False, reason=HEDGED)
    correct, reason = compare(ref_answer, extracted, policy, symbolic)
    return dataclasses.replace(verdict, correct=correct, reason=reason)


def _item(
    reference: str, prediction: str, is_response: bool, policy: GradingPolicy, truncated: bool = False
) -> dict[str, object]:
    """One pair as the JSON a sandbox worker reads."""
    item = {"reference": reference, "prediction": prediction, "is_response": is_response, "policy": asdict(policy)}
    return {**item, "truncated": truncated}


def _worker_grade(item: dict[str, object]) -> dict[str, object]:
    """Runs in a sandbox worker: the whole grading, sympy available."""
    from .symbolic import symbolic_compare

    if item.get("warmup"):
        compare("\\frac{1}{2}", "x^2 - 1", DEFAULT_POLICY, symbolic_compare)  # every import before the clock starts
        return {}
    policy = GradingPolicy(**item["policy"])  # type: ignore[arg-type]
    reference, prediction, is_response = str(item["reference"]), str(item["prediction"]), bool(item["is_response"])
    verdict = _grade(reference, prediction, is_response, policy, symbolic_compare, bool(item.get("truncated")))
    return asdict(verdict)


def _from_worker(
    result: dict[str, object], reference: str, prediction: str, is_response: bool, truncated: bool = False
) -> AnswerGrade:
    if "error" in result:
        ref_answer, extracted = _extract(reference, prediction, is_response, truncated)
        prediction_norm = normalize(extracted) if extracted else None
        return AnswerGrade(extracted, normalize(ref_answer), prediction_norm, False, str(result["error"]))
    return AnswerGrade(**result)  # type: ignore[arg-type]


def grade_answer(
    reference: str,
    prediction: str,
    *,
    is_response: bool = True,
    policy: GradingPolicy = DEFAULT_POLICY,
    timeout: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    truncated: bool = False,
) -> AnswerGrade:
    """Grade one pair. `prediction` is a whole response (`is_response=True`) or an extracted answer;
    `truncated`: the response was cut off at the token limit (``finish_reason == "length"``), so only an
    answer it committed to counts (see `extract_answer`).

    The cheap rules run here; a pair that needs sympy runs in a shared sandbox worker bounded by
    `timeout` seconds and `memory_mb` MiB, and comes back with reason ``"timeout"`` when it overruns.
    An empty reference is never graded: reason ``"empty reference"`` (a data defect).
    """
    try:
        return _grade(reference, prediction, is_response, policy, None, truncated)
    except NeedsSymbolic:
        pass
    pool = shared_pool(_HANDLER, timeout=timeout, memory_mb=memory_mb)
    result = pool.run([_item(reference, prediction, is_response, policy, truncated)])[0]
    return _from_worker(result, reference, prediction, is_response, truncated)


def is_equivalent(reference: str, prediction: str, *, is_response: bool = True) -> bool:
    """True when the prediction (a response, or an extracted answer) states an answer equal to `reference`."""
    return grade_answer(reference, prediction, is_response=is_response).correct


def grade_many(
    pairs: Iterable[tuple[str, str]],
    *,
    is_response: bool = True,
    policy: GradingPolicy = DEFAULT_POLICY,
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    pool: WorkerPool | None = None,
    truncated: Sequence[bool] | None = None,
) -> list[AnswerGrade]:
    """Grade many (reference, prediction) pairs on `workers` processes (default: all cores).

    Every pair is graded whole inside a sandbox worker, so extraction and the cheap rules scale with
    the cores too; each pair still has its own `timeout`. Pass a `pool` from `answer_pool()` to keep
    warm workers across calls (then `workers`, `timeout` and `memory_mb` are the pool's). `truncated`
    marks, pair by pair, the responses cut off at the token limit (as in `grade_answer`).
    """
    pairs = list(pairs)
    if not pairs:
        return []
    cut = list(truncated) if truncated is not None else [False] * len(pairs)
    if len(cut) != len(pairs):
        raise ValueError(f"grade_many: {len(cut)} truncated flags for {len(pairs)} pairs")
    items = [_item(r, p, is_response, policy, t) for (r, p), t in zip(pairs, cut, strict=True)]
    if pool is not None:
        results = pool.run(items)
    else:
        with answer_pool(workers, timeout=timeout, memory_mb=memory_mb) as own:
            results = own.run(items)
    return [_from_worker(res, r, p, is_response, t) for res, (r, p), t in zip(results, pairs, cut, strict=True)]


def answer_pool(
    workers: int | None = None, *, timeout: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB
) -> WorkerPool:
    """Sandboxed grading workers (default: one per core) to reuse across `grade_many` calls; close it after."""
    return WorkerPool(_HANDLER, workers or os.cpu_count() or 1, timeout=timeout, memory_mb=memory_mb)


def is_truncated(generation: Generation) -> bool:
    """Cut off at the token limit: only an answer the response committed to counts."""
    return generation.finish_reason == "length"


def not_graded(sample: Sample, generation: Generation, grader: str) -> Grade:
    """The grade of an item whose reference is empty: no score (never right, never wrong), the data defect
    named, so the run counts it apart (the task's loader leaves such items out and says so)."""
    error = f"{EMPTY_REFERENCE}: item {sample.id!r} has no reference to grade against (a data defect)"
    return Grade(sample.id, generation.n_index, grader, None, None, {"reason": EMPTY_REFERENCE}, error)


def _to_grade(sample: Sample, generation: Generation, verdict: AnswerGrade) -> Grade:
    if verdict.reason == EMPTY_REFERENCE:
        return not_graded(sample, generation, "answer")
    return Grade(
        sample_id=sample.id,
        n_index=generation.n_index,
        grader="answer",
        score=1.0 if verdict.correct else 0.0,
        correct=verdict.correct,
        details={
            "extracted": verdict.extracted,
            "prediction": verdict.prediction,
            "reference": verdict.reference,
            "reason": verdict.reason,
        },
    )


class AnswerGrader:
    """The registered ``answer`` grader: 1.0 for a correct final answer, 0.0 otherwise.

    Called per generation while a run streams; `grade_batch` grades a backlog (a resumed run, a
    re-grade) on all cores.
    """

    score_range = (0.0, 1.0)

    def __call__(self, sample: Sample, generation: Generation) -> Grade:
        verdict = grade_answer(sample.reference, graded_text(generation), truncated=is_truncated(generation))
        return _to_grade(sample, generation, verdict)

    aggregate = staticmethod(accuracy)
    """Its metrics when it is not the task's own scorer (``--graders alignbench-judge,answer``)."""

    def grade_batch(self, items: list[tuple[Sample, Generation]]) -> list[Grade]:
        verdicts = grade_many(
            [(s.reference, graded_text(g)) for s, g in items], truncated=[is_truncated(g) for _, g in items]
        )
        return [_to_grade(s, g, v) for (s, g), v in zip(items, verdicts, strict=True)]


def graded_text(generation: Generation) -> str:
    """What a response is graded on: its text. A tool-integrated answer (`Generation.steps`) whose model text
    boxes nothing is read as upstream reads it (QwenLM/Qwen2.5-Math @a45202bd ``parser.extract_answer`` on
    the whole trajectory: the last ``boxed`` anywhere, a program's output included), where our extraction
    skips program output: that box is the answer. (A text that boxes ends the chain, so then the model's box
    is the last one and the text is graded as it is.)"""
    if not generation.steps or "boxed" in str(generation.steps[-1].get("text", "")):
        return generation.text
    box = last_boxed(generation.text)
    return f"\\boxed{{{box}}}" if box is not None else generation.text


answer_grader = AnswerGrader()
