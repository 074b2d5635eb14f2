"""The answer grader's error classes seen on held-out pairs, each as its own table of true and false pairs
written for this project (the held-out set stays held out): units, complex numbers, big exact values,
named equations, where the final answer is, sets, fragments of very long answers, noise after the answer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mathusereval.graders import GradingPolicy, grade_answer
from mathusereval.graders.normalize import UNITS

# (reference, extracted answer, equivalent?)
UNITS_CASES = [
    ("12 kg", "12 g", False),
    ("12 kg", "12 kilograms", True),
    ("12", "12 kg", True),  # a unit on one side only is tolerated
    ("12 kg", "12", True),
    ("2 days", "2 weeks", False),
    ("14 days", "2 weeks", True),
    ("30^\\circ", "30 rad", False),
    ("30°", "30 degrees", True),
    ("500 cm", "5 m", True),
    ("5 m", "5 cm", False),
    ("3 hours", "180 minutes", True),
    ("3 hours", "3 minutes", False),
    ("12 kg", "12 s", False),  # different dimensions never match
    ("4 L", "4000 mL", True),
    ("10 \\text{ cm}^2", "10 square centimeters", True),
    ("10 cm^2", "10 m^2", False),
    ("5 apples", "5", True),
    ("7 km", "7000 m", True),
    ("6 ft", "72 inches", True),
]
COMPLEX_CASES = [
    ("3-4i", "(2-i)^2", True),
    ("1+i", "\\sqrt{2}e^{i\\pi/4}", True),
    ("-i", "i^3", True),
    ("\\frac35+\\frac45 i", "\\frac{3+4i}{5}", True),
    ("3-4i", "3+4i", False),
    ("2+3j", "3j+2", True),
    ("i", "-1", False),
    ("1+i", "\\sqrt{2}", False),
]
BIG_CASES = [
    ("\\frac{1}{99!}", "\\frac{1}{100!}", False),
    ("2^{200}", "2^{200}+1", False),
    ("2^{200}", "1606938044258990275541962092341162602522202993782792835301376", True),
    ("\\frac{1}{99!}", "\\frac{100}{100!}", True),
    ("10^{30}", "10^{30}+1", False),
    ("123456789012345678901234567890", "123456789012345678901234567891", False),
    ("3^{100}", "3^{100}", True),
]
EQUATION_CASES = [
    ("a = 7", "b = 7", False),
    ("a = 7", "a=7", True),
    ("x = 7", "7", True),  # a bare value matches either
    ("7", "y = 7", True),
    ("f(x) = 2x+1", "f(x) = 1+2x", True),
    ("k = 3", "K = 3", False),
    ("f(x) = 2x + 3", "y = 2x + 3", True),  # y = f(x): the usual name of a function's value
    ("f(x) = 1", "g(x) = 1", False),
]
SET_CASES = [
    ("\\emptyset", "\\varnothing", True),
    ("\\emptyset", "\\{\\}", True),
    ("∅", "\\emptyset", True),
    ("\\varnothing", "no solution", True),
    ("\\emptyset", "There are no real solutions", True),
    ("\\emptyset", "0", False),
    ("\\emptyset", "\\{0\\}", False),
    ("\\{1, 2\\}", "x \\in \\{1, 2\\}", True),
    ("\\{1, 2\\}", "x \\in \\{1, 3\\}", False),
    ("\\{1, 2\\}", "x = 1 or x = 2", True),
    ("1, 2", "x=1 \\text{ or } x=2", True),
    ("(1, 3)", "x \\in (1, 3)", True),
    ("(1, 3)", "x \\in [1, 3]", False),
]


@pytest.mark.parametrize(
    ("ref", "pred", "expected"), UNITS_CASES + COMPLEX_CASES + BIG_CASES + EQUATION_CASES + SET_CASES
)
def test_answer_classes(ref: str, pred: str, expected: bool) -> None:
    verdict = grade_answer(ref, pred, is_response=False)
    assert verdict.correct is expected, verdict


def test_unit_conversion_is_a_policy() -> None:
    strict = GradingPolicy(units="strict")
    assert grade_answer("500 cm", "5 m", is_response=False).correct
    assert not grade_answer("500 cm", "5 m", is_response=False, policy=strict).correct
    assert grade_answer("5 m", "5 m", is_response=False, policy=strict).correct


# (reference, whole response, equivalent?): where the final answer is
FINAL_CASES = [
    ("5", "The answer is 5 (not 7).", True),
    ("5", "So x = 5 (x = -3 is rejected since x > 0).", True),
    ("5", "所以答案是 5（舍去负根）。", True),
    ("5", "Candidates: 3 and 5. The answer is 3 or 5; checking both, only one works.\n\n**5**", True),
    ("3", "Candidates: 3 and 5. The answer is 3 or 5; checking both, only one works.\n\n**5**", False),
    ("B", "Option A gives 3, which is wrong. Option C gives 7. The answer is 5, so the correct option is B.", True),
    ("B", "Let us check each. (A) fails. (B) works. Therefore B is correct.", True),
    ("5", "**答案：5**", True),
    ("25%", "We compute the rate; the answer might be 0.3. Rechecking carefully:\n\n**25%**", True),
    ("42", "The answer is 41. Wait, let me recheck. Actually, the answer is 42.", True),
    ("41", "The answer is 41. Wait, let me recheck. Actually, the answer is 42.", False),
    ("41", "The answer is 41. I am confident the answer is correct.", True),
    ("yes", "The answer is yes.", True),
]
# noise after a committed final answer (degenerate sampling): the answer stands
NOISE_CASES = [
    ("42", "Thus \\boxed{42}. ######## ###### #### ## ##", True),
    ("42", "Thus \\boxed{42}. The answer is #### ## #", True),
    ("##", "Thus \\boxed{42}. ######## ##", False),
    ("12", "Natalia sold 12 clips.\n#### 12", True),
]


@pytest.mark.parametrize(("ref", "response", "expected"), FINAL_CASES + NOISE_CASES)
def test_where_the_final_answer_is(ref: str, response: str, expected: bool) -> None:
    verdict = grade_answer(ref, response)
    assert verdict.correct is expected, verdict


def test_a_fragment_of_a_very_long_answer_is_never_graded() -> None:
    long_box = "\\boxed{" + "1+" * 200_000 + "1}"
    verdict = grade_answer("1", "We sum up: " + long_box)
    assert verdict.correct is False and verdict.reason == "no answer found"
    assert grade_answer("2", "Work: " + "1+" * 200_000 + "1 = 200001, so \\boxed{2}").correct
    unclosed = "The answer is \\boxed{" + "x" * 50_000 + " 7"
    assert grade_answer("7", unclosed).correct is False
    assert grade_answer("1", "x" * 30_000 + " The answer is \\boxed{1}").correct


_DIMENSIONS: dict[str, list[str]] = {}
for _word, _unit in UNITS.items():
    if _unit.factor:  # radians never convert; every other pair of dimensions is distinct
        _DIMENSIONS.setdefault(_unit.dimension, []).append(_word)


@given(
    st.sampled_from(sorted(_DIMENSIONS)),
    st.sampled_from(sorted(_DIMENSIONS)),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=10**6),
    st.data(),
)
@settings(max_examples=400, deadline=None)
def test_units_of_different_dimensions_never_match(dim_a: str, dim_b: str, a: int, b: int, data: st.DataObject) -> None:
    if dim_a == dim_b:
        return
    unit_a = data.draw(st.sampled_from(_DIMENSIONS[dim_a]))
    unit_b = data.draw(st.sampled_from(_DIMENSIONS[dim_b]))
    verdict = grade_answer(f"{a} {unit_a}", f"{b} {unit_b}", is_response=False)
    assert verdict.correct is False, (unit_a, unit_b, verdict)
