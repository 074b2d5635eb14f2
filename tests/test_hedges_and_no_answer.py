"""Hedged answers are not answers, and no final answer means no answer (issue 34 §2, §3): the choice grader's
hedges between options, and responses cut off at the token limit. The answer grader's hedge and code/tool
tables are in test_answer_formats.py (the bench runs them against Math-Verify)."""

from __future__ import annotations

import pytest

from mathusereval.graders import grade_answer, grade_many
from mathusereval.graders.choice import HEDGE, chosen
from mathusereval.graders.hedge import hedge_in
from mathusereval.plugins import registry
from mathusereval.records import Generation, Sample

# (response, gold, correct): Qwen2.5-Math's choice_answer_clean would read the first six as "A" (its last
# letter rule reads "B"); a hedge between options chooses none, on single- and multi-answer items alike.
CHOICE_HEDGES = [
    ("The answer is A or B.", "A", False),
    ("答案是A或B", "A", False),
    ("选A或者B", "A", False),
    ("The answer is A / B", "A", False),
    ("The answer is A & B", "A", False),
    ("answer: A-B", "A", False),
    ("The answer is (A) or (B).", "B", False),
    ("\\boxed{A \\text{ or } B}", "AB", False),  # a hedge is not the set written as a set
    ("答案是A或B", "AB", False),
    ("\\boxed{A, B}", "AB", True),  # the gold set written as a set
    ("故选：AB", "AB", True),
    ("The answer is A and B.", "AB", True),
    ("The answer is A.", "A", True),
    ("The answer is Ａ.", "A", True),  # a full-width letter is the letter
    ("答案是Ｃ", "C", True),
    ("The answer is A - because the others fail.", "A", True),  # a dash before words is no hedge
    # found by a probe after round 4: hedges spelt with more words between the options
    ("The answer is A and/or B.", "A", False),
    ("The answer is A (or B).", "A", False),
    ("The answer is A or maybe B.", "A", False),
    ("The answer is A. Or B.", "A", False),
    ("The answer is A, unless B", "A", False),
    ("答案是A或是B", "A", False),
    ("答案是A，也可能是B", "A", False),
    ("The answer is \\boxed{A} or \\boxed{B}", "AB", False),  # two boxes joined by "or" are not a set
    ("The answer is \\boxed{A} or equivalently the first option.", "A", True),
    ("The answer is B. Or rather, B is the only one left.", "B", True),
]


@pytest.mark.parametrize(("response", "gold", "correct"), CHOICE_HEDGES)
def test_a_hedge_between_options_chooses_none(response: str, gold: str, correct: bool) -> None:
    sample = Sample("t", "1", ({"role": "user", "content": "q"},), gold, {})
    grade = registry.rule_grader("choice")(sample, Generation("1", 0, "m", response, "stop"))
    assert grade.correct is correct, grade.details
    if not correct:
        assert grade.details["reason"] == HEDGE and chosen(response, None) == (None, HEDGE)


# (word that hedges, answer): what counts as a hedge, and what does not
HEDGE_WORDS = [
    ("or any", "18 or any other number"),
    ("is wrong", "18 is wrong"),
    ("or fewer", "\\text{18 or fewer}"),
    ("at least", "at least 18"),
    ("not", "not 18"),
    ("maybe", "maybe 18"),
    ("或其他", "18或其他数"),
    ("不是", "不是18"),
    (None, "x = 1 or x = 2"),  # "or" between values: a solution set
    (None, "\\text{does not exist}"),  # words without a value: a text answer
    (None, "x \\notin \\{1, 2\\}"),  # \not, \notin are TeX, not words
    (None, "18"),
]


@pytest.mark.parametrize(("hedge", "answer"), HEDGE_WORDS)
def test_what_counts_as_a_hedge(hedge: str | None, answer: str) -> None:
    assert hedge_in(answer) == hedge


LOOP = "Let me compute. We have x = 5. Hmm, wait. Let me recompute. We have x = 5. Hmm, wait. Let me recompute. We"
# (reference, response cut off at the token limit, correct when truncated, correct when it had stopped)
TRUNCATED = [
    ("5", LOOP, False, True),  # never committed: its last number is no answer
    ("5", "So \\boxed{5}. Let me double-check this once more: 2 + 3 = 5, and then 6 +", True, True),
    ("5", "The answer is 5. Now let me verify it by another route: first 7", True, True),
    ("6", "The answer is 5. Now let me verify it by another route: first 6", False, False),
    ("1", "Therefore the answer is \\boxed{1", False, True),  # cut inside the box; stopped, the 1 is its last number
    ("5", "**5**", False, True),  # bold is a fallback, not a commitment
]


@pytest.mark.parametrize(("reference", "response", "cut", "stopped"), TRUNCATED)
def test_a_truncated_response_is_graded_on_what_it_committed_to(
    reference: str, response: str, cut: bool, stopped: bool
) -> None:
    assert grade_answer(reference, response, truncated=True).correct is cut
    assert grade_answer(reference, response).correct is stopped
    sample = Sample("t", "1", ({"role": "user", "content": "q"},), reference, {})
    for grader in ("answer", "choice"):
        grade = registry.rule_grader(grader)(sample, Generation("1", 0, "m", response, "length"))
        assert grade.correct is cut, (grader, grade.details)
    answer = registry.lookup("graders", "answer")
    batch = answer.grade_batch([(sample, Generation("1", 0, "m", response, "length"))])  # type: ignore[union-attr]
    assert batch[0].correct is cut


def test_grade_many_takes_the_truncation_of_each_pair() -> None:
    pairs = [("5", LOOP), ("5", LOOP)]
    assert [v.correct for v in grade_many(pairs, workers=1, truncated=[True, False])] == [False, True]
    with pytest.raises(ValueError, match="truncated flags"):
        grade_many(pairs, workers=1, truncated=[True])
