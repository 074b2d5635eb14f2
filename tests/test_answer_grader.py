"""The answer grader's behaviour, one rule per case, plus the public API and the data checks."""

from __future__ import annotations

import json

import pytest

from mathusereval.graders import GradingPolicy, grade_answer, grade_many, is_equivalent
from mathusereval.graders.answer import answer_pool, extract_answer, extract_reference

# (reference, extracted prediction, equivalent?) — already-extracted answers.
ANSWERS = [
    ("1/2", "\\frac{1}{2}", True),
    ("\\frac12", "0.5", True),
    ("2/4", "1/2", True),
    ("1\\frac12", "1.5", True),
    ("1 1/2", "11/2", False),
    ("7425000", "7,425,000", True),
    ("32349", "32, 349", False),
    ("11,\\!111,\\!111,\\!100", "11111111100", True),
    ("2.0000001", "2.0000003", False),
    ("\\frac13", "0.33", True),
    ("\\frac13", "0.3", False),  # one significant digit is not an approximation
    ("\\frac{\\sqrt{3}}{2}", "0.8660254037844386", True),
    ("\\frac{\\sqrt{3}}{2}", "0.87", True),
    ("\\frac{\\sqrt{3}}{2}", "0.86", False),
    ("5", "5.001", False),
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("\\frac{9}{4}\\pi", "\\frac94\\pi", True),
    ("25\\%", "25", True),
    ("25\\%", "0.25", True),
    ("0.5", "50", False),  # no x100 guessing without a percent sign
    ("90^\\circ", "90", True),
    ("90^\\circ", "\\frac{\\pi}{2}", True),
    ("\\sin(90^{\\circ}-x)", "\\cos(x)", True),
    ("1+2i", "2i+1", True),
    ("\\{1, 2\\}", "\\{2, 1\\}", True),
    ("2, -3", "-3, 2", True),
    ("(1, 2)", "(2, 1)", False),
    ("[1, 2)", "[1, 2)", True),
    ("[1, 2)", "(1, 2)", False),
    ("[-3,2]", "(-3,2)", False),
    ("(-\\infty, 3]", "x \\le 3", True),
    ("(1,3) \\cup (4,\\infty)", "(4,\\infty)\\cup(1,3)", True),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", True),
    ("\\pm 2021", "2021", False),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", True),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}", False),
    ("y = 2x + 1", "2x - y + 1 = 0", True),
    ("x = 3", "3", True),
    ("3", "x = 3", True),
    ("a + 3z = 0", "0", False),
    ("x = 1, y = 2", "1, 2", True),
    ("\\sin(x) = \\frac{42}{59}", "\\cos(x) = \\frac{42}{59}", False),
    ("\\text{Evelyn}", "evelyn", True),
    ("\\text{odd}", "oddd", False),
    ("C", "\\text{(C)}", True),
    ("C", "D", False),
    ("10 \\text{ cm}", "10", True),
    ("3 \\text{ million}", "3", False),  # a unit that changes the magnitude is not dropped
    ("3 \\text{ million}", "3000000", True),
    ("\\$10", "10", True),
    ("１２", "12", True),  # full-width digits
]


@pytest.mark.parametrize(("reference", "prediction", "expected"), ANSWERS)
def test_equivalence_rules(reference, prediction, expected):
    verdict = grade_answer(reference, prediction, is_response=False)
    assert verdict.correct is expected, verdict


RESPONSES = [
    ("14", "Adding up, $x = 7 + 7 = 14$, so the answer is $\\boxed{14}$.", "14"),
    ("12", "First $\\boxed{10}$ apples... wait, I forgot two. The answer is 12.", "12"),
    ("3", "Final Answer: The final answer is $3$. I hope it is correct.", "3"),
    ("18", "She makes 9 * 2 = $18.\n#### 18", "18"),
    ("18", "9 * 2 = 18\nA: 18", "18"),
    ("5", "所以答案是 5。", "5"),
    ("B", "分析各选项……故选 B。", "B"),
    ("42", "We compute a lot and get **42** in the end", "42"),
    ("-2, 1", "Therefore, the answers are $\\boxed{-2}$ and $\\boxed{1}$.", "-2, 1"),
    ("44", "so $17^{-1}\\equiv \\boxed{44}\\pmod{83}$. We may check: ... so our answer is correct.", "44"),
    ("19", "The maximum number of points in the domain of $f(x)$ is 19.", "19"),
]


@pytest.mark.parametrize(("reference", "response", "extracted"), RESPONSES)
def test_extraction_from_responses(reference, response, extracted):
    verdict = grade_answer(reference, response)
    assert verdict.extracted == extracted
    assert verdict.correct, verdict
    assert is_equivalent(reference, response)


def test_negated_chinese_statement_is_not_an_answer():
    """ "所以它不是一个质数" states a negation: its tail after 是 is not the answer (MathUserEval matheval-64)."""
    assert extract_answer("3599 = 59 × 61，所以它不是一个质数。") != "一个质数"
    assert not grade_answer("是质数", "3599 = 59 × 61，所以它不是一个质数。").correct


def test_reasons_are_reported():
    assert grade_answer("5", "I don't know.").reason == "no answer found"
    assert grade_answer("5", "no answer at all", is_response=True).extracted is None
    assert grade_answer("1/2", "0.5", is_response=False).reason == "numeric"
    assert grade_answer("x^2-1", "(x-1)(x+1)", is_response=False).reason == "symbolic"
    assert grade_answer("(1,2)", "(1,2)", is_response=False).reason == "string match"


def test_policies_are_options():
    ordered = GradingPolicy(list_order="ordered")
    assert grade_answer("10, 4, -2", "4, 10, -2", is_response=False).correct
    assert not grade_answer("10, 4, -2", "4, 10, -2", is_response=False, policy=ordered).correct
    strip = GradingPolicy(percent="strip")
    assert not grade_answer("25\\%", "0.25", is_response=False, policy=strip).correct
    exact = GradingPolicy(approximation="exact")
    assert not grade_answer("\\frac13", "0.333", is_response=False, policy=exact).correct


def test_reference_extraction_from_worked_solutions():
    assert extract_reference("So the answer is $\\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}"
    assert extract_reference("$9$") == "9"
    assert extract_reference("10 \\text{ cm}") == "10 \\text{ cm}"
    assert extract_answer("no numbers here") is None


def test_grade_many_matches_single_grading():
    pairs = [(r, p) for r, p, _ in ANSWERS[:20]]
    with answer_pool(2) as pool:
        batch = grade_many(pairs, is_response=False, pool=pool)
    assert [b.correct for b in batch] == [e for _, _, e in ANSWERS[:20]]
    assert grade_many([]) == []


def test_math_solutions_grade_correct_against_their_own_answers(shared_data):
    """Every MATH-500 solution against its curated answer (the full 5000 run is in benchmarks/)."""
    rows = [json.loads(line) for line in (shared_data / "math" / "math500_test.jsonl").read_text("utf-8").splitlines()]
    verdicts = grade_many([(r["answer"], r["solution"]) for r in rows])
    wrong = [(r["unique_id"], v) for r, v in zip(rows, verdicts, strict=True) if not v.correct]
    assert not wrong, wrong[:5]


@pytest.mark.slow  # a regression sweep: the fast tier stays under a minute
def test_dev_pairs_accuracy_floor(shared_data):
    """Regression floor on the labelled dev pairs (label_kind == math); the benchmark prints the detail."""
    rows = [
        json.loads(line) for line in (shared_data / "grader_pairs" / "upstream_pairs.jsonl").read_text().splitlines()
    ]
    rows = [r for r in rows if r["label_kind"] == "math"]
    verdicts = []
    for kind in ("response", "answer"):
        subset = [r for r in rows if r["pred_type"] == kind]
        got = grade_many([(r["gold"], r["pred"]) for r in subset], is_response=kind == "response")
        verdicts += [(r["label"], v.correct) for r, v in zip(subset, got, strict=True)]
    accuracy = sum(label == got for label, got in verdicts) / len(verdicts)
    negatives = [got for label, got in verdicts if not label]
    tnr = sum(not g for g in negatives) / len(negatives)
    assert accuracy >= 0.98 and tnr >= 0.98, (accuracy, tnr)


REASONING = "We check the case $x = 3$ once more, and the answer is 41 if nothing changes. " * 300  # ~24 KB


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (REASONING + "So the final value is $\\boxed{42}$.", "42"),  # a box beats every statement before it
        (REASONING + "Checking again, the answer is 7.", "7"),  # the tail's statement is the last one
        (REASONING + "Thus the answer is \\boxed{9}. The answer is 10.", "10"),  # a later statement still wins
        ("Hence the answer is 12. " + "We verify it step by step. " * 700 + "So the answer is correct.", "12"),
    ],
)
def test_long_reasoning_finds_the_last_statement(response: str, expected: str) -> None:
    """20 KB replies: the tail is searched first (and only from the box on when there is one); a tail
    without an answer-shaped statement falls back to the whole window."""
    assert extract_answer(response) == expected
