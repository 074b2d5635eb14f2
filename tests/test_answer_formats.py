"""The answer grader on answers as real models write them, one table per class, written for this project
(the held-out set stays held out). Each class names the convention it comes from and holds true and false
pairs; benchmarks/grader_bench.py runs the same tables against Math-Verify."""

from __future__ import annotations

import pytest

from mathusereval.graders import grade_answer

# (reference, whole response, correct?)
CHINESE_EXAM = [  # AGIEval / GaoKao-Bench answer keys (【答案】…<eoa>, 【解析】…<eoe>), Chinese textbook "答：" lines
    ("3", "【解析】由题意得 2x=6，所以 x=3。<eoe>\n【答案】3<eoa>", True),
    ("3", "【解析】由题意得 2x=6，所以 x=3。<eoe>\n【答案】4<eoa>", False),
    ("\\frac{1}{2}", "【答案】$\\frac{1}{2}$<eoa>", True),
    ("5", "解：由已知得 a+b=5，故答案为：5.", True),
    ("5", "解：由已知得 a+b=5，故答案为：6.", False),
    ("2\\sqrt{2}", "由勾股定理，所以 |AB| 的长为 $2\\sqrt{2}$。", True),
    ("12", "解：5+7=12（个）\n答：小明一共有12个苹果。", True),
    ("12", "解：5+8=13（个）\n答：小明一共有13个苹果。", False),
    ("x<-2", "解不等式得 x<-2，所以答案为 x < - 2。", True),
    ("\\{1,2\\}", "因此集合 A 为 $\\{1,2\\}$。", True),
]
PLAIN_TEXT_MATH = [  # answers without LaTeX: radicals and pi in words or symbols, fractions, full-width forms
    ("\\sqrt{3}", "所以答案是根号3", True),
    ("\\sqrt{3}", "所以答案是根号2", False),
    ("2\\sqrt{2}", "The answer is √8", True),
    ("2\\sqrt{2}", "The answer is 2√2.", True),
    ("\\sqrt{14}", "The answer is sqrt(14).", True),
    ("14\\pi", "The answer is 14π.", True),
    ("\\frac{3\\pi}{4}", "The answer is 3π/4", True),
    ("\\frac{2}{3}", "答案为 2/3", True),
    ("x^2", "The answer is x^2", True),
    ("x \\leq 3", "答案是 x≤3", True),
    ("x \\geq 3", "答案是 x≤3", False),
    ("12", "答案是１２", True),
    ("-3", "答案为－３", True),
    ("6", "答案为 2·3", True),
]
TEXT_AND_BLANKS = [  # text answers, option letters, several blanks in one answer (GaoKao cloze keys use ";")
    ("分层抽样", "应采用的抽样方法是分层抽样。\n故答案为：分层抽样", True),
    ("分层抽样", "故答案为：简单随机抽样", False),
    ("甲", "由以上推理可知去过的城市最多的是甲。答案：甲", True),
    ("C", "答案：C. $-6$", True),
    ("C", "The answer is (B) $3$.", False),
    ("1,3", "故答案为 1和3", True),
    ("1,3", "故答案为 1；3", True),
    ("5;10", "所以 a_1=5，a_2+a_3+a_4=10，故答案为：5, 10", True),
    ("5;10", "故答案为：5, 11", False),
]
STRAY_GOLDS = [  # golds with stray spacing or punctuation; "\\# \\#" joins two accepted forms
    ("0. 98.", "The answer is 0.98", True),
    ("-3 .", "\\boxed{-3}", True),
    ("\\frac{3}{10} \\# \\# 0.3", "\\boxed{0.3}", True),
    ("\\frac{3}{10} \\# \\# 0.3", "\\boxed{\\frac{3}{10}}", True),
    ("\\frac{3}{10} \\# \\# 0.3", "\\boxed{0.4}", False),
]
PERCENT = [  # the percent policy: 23% equals 0.23 (either side may carry the sign)
    ("0.23", "The answer is 23%.", True),
    ("0.23", "So the investment gives a return of 23%.", True),
    ("0.23", "So the investment gives a return of 32%.", False),
]
TOOLS_AND_THINKING = [  # tool-integrated reasoning (ToRA / Qwen2.5-Math TIR) and reasoning models' <think>
    ("7", "```python\nprint(3 + 4)\n```\n```output\n7\n```\nSo the answer is $\\boxed{7}$.", True),
    ("7", "```python\nprint(3 + 6)\n```\n```output\n9\n```\nThat is off by two; redoing it gives \\boxed{7}.", True),
    ("7", "```python\nprint(3 + 4)\n```\n```output\n7\n```\nHmm, but then the answer is \\boxed{9}.", False),
    ("42", "<think>maybe \\boxed{41}? no, recheck ... it is 42</think>\n\nThe answer is 42.", True),
    ("42", "<think>it could be 42, let me check ... no.</think>\n\nThe answer is \\boxed{41}.", False),
]
HEDGED = [  # issue 34 §2: words that qualify or negate a value make it another answer; Qwen2.5-Math's strip_string
    # drops a trailing \text{...} and would grade the first three as 18. "or" between values lists solutions.
    ("18", "\\boxed{\\text{18 or any other number}}", False),
    ("18", "\\boxed{\\text{18 fails}}", False),  # a probe's cases after round 4: words that qualify
    ("18", "\\boxed{\\text{18 以上}}", False),  # "18 and above"
    ("18", "\\boxed{\\text{18左右}}", False),  # "about 18"
    ("18", "\\boxed{\\text{18 吧}}", False),  # "18, I suppose"
    ("18", "\\boxed{\\text{18 is wrong}}", False),
    ("18", "\\boxed{\\text{18 or fewer}}", False),
    ("18", "The answer is 18 or something else.", False),
    ("18", "The answer is at least 18.", False),
    ("18", "The answer is maybe 18.", False),
    ("18", "答案是18或其他数。", False),
    ("18", "所以答案不是18。", False),
    ("18", "It is not 18.", False),
    ("18", "\\boxed{18}", True),
    ("18", "The answer is 18 (not 17).", True),  # an aside about another value
    ("18", "It is not 10; it is 18.", True),
    ("1, 2", "The answer is x = 1 or x = 2.", True),
    ("1, 2", "\\boxed{x = 1 \\text{ or } x = 2}", True),
    ("\\text{does not exist}", "\\boxed{\\text{does not exist}}", True),  # words alone: a text answer
    ("at least 18", "\\boxed{\\text{at least 18}}", True),  # the reference itself qualifies its value
]
_SEARCH = (  # a failed code search (ToRA / Qwen2.5-Math tool-integrated reasoning: ```python, then ```output)
    "Let me search with code.\n```python\nimport math\nfor n in range(100):\n"
    "    if math.isclose(n * n, 2, rel_tol=1e-9):\n        print(n)\n```\n```output\n\n```\nNothing printed."
)
_VERIFY = "\\boxed{42}\n\nLet's verify with Python.\n```python\nprint(6 * 7 + 1)\n```\n```output\n43\n```"
_TOOL = (  # Hermes / Qwen2.5 function calling
    '<tool_call>\n{"name": "python", "arguments": {"code": "print(3 * 4)"}}\n</tool_call>\n'
    "<tool_response>\n12\n</tool_response>"
)
CODE_AND_TOOLS = [  # issue 34 §3: numbers inside code, tool calls and their output are not final answers
    ("100", _SEARCH, False),
    ("9", _SEARCH, False),
    ("42", _VERIFY, True),  # boxed, then checked in code: the box stands
    ("43", _VERIFY, False),
    ("12", "```python\nprint(3 * 4)\n```\n```output\n12\n```\nSo there are 12 apples.", True),
    ("12", "```python\nprint(3 * 4)\n```\n```output\n12\n```", False),  # never stated
    ("12", _TOOL, False),
    ("12", _TOOL + "\nThe answer is 12.", True),
    ("7", "```python\nprint('\\\\boxed{7}')\n```", False),
    ("7", "We need x.\n```python\nx = 3 + 4\nprint(f'The answer is {x}')", False),  # cut off inside its code
]
POWERS_OF_TEN = [  # issue 34 §4: scientific notation against powers of ten (Minerva, College Math golds)
    ("10^{-8}", "\\boxed{1e-8}", True),
    ("1e-8", "\\boxed{10^{-8}}", True),
    ("10^{11}", "\\boxed{1e11}", True),
    ("1e11", "\\boxed{10^{11}}", True),
    ("10^{11}", "\\boxed{1e12}", False),
    ("10^{-8}", "\\boxed{1e8}", False),
]
COEFFICIENTS_AND_SUBSCRIPTS = [  # issue 34 §4: a coefficient inside or outside a fraction; subscript braces
    ("\\frac{37m}{4}", "\\boxed{\\frac{37}{4}m}", True),
    ("\\frac{37}{4}m", "\\boxed{\\frac{37m}{4}}", True),
    ("\\frac{37m}{4}", "\\boxed{\\frac{37}{4}n}", False),
    ("\\frac{37m}{4}", "\\boxed{\\frac{37}{4}}", False),
    ("X_d = 125-1.25P", "\\boxed{X_{d}=125-1.25P}", True),
    ("X_d = 125-1.25P", "\\boxed{X_{s}=125-1.25P}", False),
]
HYPERBOLIC = [  # issue 34 §4: hyperbolic functions against their exponential forms (College Math, Minerva)
    ("\\frac{\\sinh(at)}{a}", "\\boxed{\\frac{1}{2a}(e^{at}-e^{-at})}", True),
    ("\\frac{\\sinh(at)}{a}", "\\boxed{\\frac{1}{2a}(e^{at}+e^{-at})}", False),
    ("\\cosh(x)", "\\boxed{\\frac{e^{x}+e^{-x}}{2}}", True),
]
UNITS_AND_ORDINALS = [  # issue 34 §4: units in \text{} with negative powers (Minerva); ordinals
    ("15000", "\\boxed{15000 \\text{ kcal m}^{-2}\\text{ yr}^{-1}}", True),
    ("15000", "\\boxed{1500 \\text{ kcal m}^{-2}\\text{ yr}^{-1}}", False),
    ("12", "\\boxed{12^{\\mathrm{th}}}", True),
    ("12", "\\boxed{13^{\\text{th}}}", False),
]
SETS_AND_BOXES = [  # issue 34 §4: one unordered set in another order; several boxes making the reference's tuple
    ("(45,2),(-10,-9)", "\\boxed{(-10,-9),(45,2)}", True),
    ("(45,2),(-10,-9)", "\\boxed{(-10,-9),(45,3)}", False),
    ("x=0 or x=2", "\\boxed{x=2 \\text{ or } x=0}", True),
    ("x=0 or x=2", "\\boxed{x=2}", False),  # one of two solutions (the reference was read as "x = 2" before)
    ("(2, 3)", "The width is \\boxed{2} and the height is \\boxed{3}.", True),
    ("(2, 3)", "\\boxed{3} and \\boxed{2}", False),
]
_PIECEWISE = "C(p)=\\left\\{\\begin{array}{rl}6 p+1.5 & 1 \\leq p \\leq 5 \\\\ 5.5 p & p \\geq 6\\end{array}\\right."
_ROCKET = "The rocket reaches its maximum height of 500 feet 10 seconds after lift-off."
SELF_CONSISTENCY = [  # issue 34 §1: a reference boxed verbatim is right (Qwen2.5-Math compares normalised text first)
    (_PIECEWISE, f"So the final answer is $\\boxed{{{_PIECEWISE}}}$.", True),
    (_PIECEWISE, f"So the final answer is $\\boxed{{{_PIECEWISE.replace('5.5', '6.5')}}}$.", False),
    (_ROCKET, f"So the final answer is $\\boxed{{{_ROCKET}}}$.", True),
    (_ROCKET, f"So the final answer is $\\boxed{{{_ROCKET.replace('500', '400')}}}$.", False),
    ("x=\\frac{1}{5} or x=5", "So the final answer is $\\boxed{x=\\frac{1}{5} or x=5}$.", True),
    ("x=\\frac{1}{5} or x=5", "So the final answer is $\\boxed{x=5}$.", False),
    (
        "f(x)=a x+b$, where $b$ is an integer",
        "So the final answer is $\\boxed{f(x)=a x+b$, where $b$ is an integer}$.",
        True,
    ),
]
CLASSES = {
    "chinese exam": CHINESE_EXAM,
    "plain-text math": PLAIN_TEXT_MATH,
    "text and blanks": TEXT_AND_BLANKS,
    "stray golds": STRAY_GOLDS,
    "percent": PERCENT,
    "tools and thinking": TOOLS_AND_THINKING,
    "hedged answers": HEDGED,
    "code and tool output": CODE_AND_TOOLS,
    "powers of ten": POWERS_OF_TEN,
    "coefficients/subscr.": COEFFICIENTS_AND_SUBSCRIPTS,
    "hyperbolic": HYPERBOLIC,
    "units and ordinals": UNITS_AND_ORDINALS,
    "sets and boxes": SETS_AND_BOXES,
    "self-consistency": SELF_CONSISTENCY,
}
CASES = [(name, *case) for name, cases in CLASSES.items() for case in cases]


@pytest.mark.parametrize(("kind", "reference", "response", "correct"), CASES)
def test_answer_formats(kind: str, reference: str, response: str, correct: bool) -> None:
    grade = grade_answer(reference, response)
    assert grade.correct is correct, (kind, grade)


def test_every_class_has_true_and_false_pairs() -> None:
    assert all({ok for _, _, ok in cases} == {True, False} for cases in CLASSES.values())
