"""Which stored answers take part in a training set, and with what verdict (`mathusereval.results.training_data`):
the export's selection options and each answer's pass/fail decision under them."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Literal

from .runs import StoredAnswer


@dataclass(frozen=True)
class Selection:
    """What an export keeps; the CLI's ``mue-eval export`` options.

    Attributes:
        judge: the judge grader whose score decides (None: the first judge the runs were graded with).
        rule: the rule grader (the answer grader by default).
        decide: ``judge``, ``rule``, ``both`` (they must agree; disagreements are dropped) or ``auto``
            (the judge when the runs have one, else the rule grader).
        min_score: a judge score at or above this passes (7: the paper's hard-split mark).
        per_problem: RFT answers kept per problem; KTO answers per problem and label.
        margin: DPO: the least judge-score gap between chosen and rejected.
        pairs_per_problem / max_reuse: DPO: pairs per problem; uses of one answer across pairs.
        chat: conversational rows (message lists) instead of plain strings.
        schema: ``trl``, or ``openrlhf`` (adds ``margin`` to DPO rows).
        provenance: add a ``meta`` field to each row (run, model, sample, scores).
    """

    judge: str | None = None
    rule: str = "answer"
    decide: Literal["auto", "judge", "rule", "both"] = "auto"
    min_score: float = 7.0
    per_problem: int = 4
    margin: float = 3.0
    pairs_per_problem: int = 4
    max_reuse: int = 2
    chat: bool = True
    schema: Literal["trl", "openrlhf"] = "trl"
    provenance: bool = True


@dataclass(frozen=True)
class Candidate:
    """An answer with a verdict: `score` orders answers and measures DPO gaps."""

    answer: StoredAnswer
    position: int
    passed: bool
    score: float
    judge_score: float | None
    rule_correct: bool | None

    @property
    def text(self) -> str:
        assert self.answer.generation is not None
        return self.answer.generation.text

    @property
    def norm(self) -> str:
        return normalised(self.text)


def normalised(text: str) -> str:
    """The identity of an answer for de-duplication: NFKC, case-folded, all white space removed."""
    folded = "".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()


def _judge_verdict(answer: StoredAnswer, judge: str | None) -> tuple[float | None, str]:
    grade = answer.grades.get(judge) if judge else None
    if grade is None:
        return None, "no judge verdict"
    if grade.details.get("parse_failure"):
        return None, "unparseable judgment"
    if grade.score is None:
        return None, "judge error"
    return grade.score, ""


def _rule_verdict(answer: StoredAnswer, rule: str) -> tuple[bool | None, str]:
    grade = answer.grades.get(rule)
    if grade is None:
        return None, "no rule verdict"
    if grade.score is None or grade.correct is None:
        return None, "rule grader error"
    return grade.correct, ""


def assess(answer: StoredAnswer, position: int, sel: Selection) -> Candidate | str:
    """The answer's verdict under ``sel.decide`` (resolved, not ``auto``), or why it takes no part."""
    decide = sel.decide
    gen = answer.generation
    if gen is None:
        return "not generated"
    if gen.error is not None:
        return "generation error"
    if not gen.text.strip():
        return "empty answer"
    judge_score, judge_why = _judge_verdict(answer, sel.judge)
    rule_correct, rule_why = _rule_verdict(answer, sel.rule)
    if decide in ("judge", "both") and judge_score is None:
        return judge_why
    if decide in ("rule", "both") and rule_correct is None:
        return rule_why
    judge_pass = judge_score is not None and judge_score >= sel.min_score
    if decide == "both" and judge_pass != rule_correct:
        return "judge and rule grader disagree"
    passed = judge_pass if decide in ("judge", "both") else bool(rule_correct)
    if passed and gen.finish_reason == "length":
        return "truncated"
    score = judge_score if judge_score is not None and decide != "rule" else float(passed)
    return Candidate(answer, position, passed, score, judge_score, rule_correct)
