"""The answer grader on answers as real models write them, one table per class, written for this project
(the held-out set stays held out). Each class names the convention it comes from."""

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
CLASSES = {
    "chinese exam": CHINESE_EXAM,
    "plain-text math": PLAIN_TEXT_MATH,
    "text and blanks": TEXT_AND_BLANKS,
    "stray golds": STRAY_GOLDS,
    "percent": PERCENT,
    "tools and thinking": TOOLS_AND_THINKING,
}
CASES = [(name, *case) for name, cases in CLASSES.items() for case in cases]


@pytest.mark.parametrize(("kind", "reference", "response", "correct"), CASES)
def test_answer_formats(kind: str, reference: str, response: str, correct: bool) -> None:
    grade = grade_answer(reference, response)
    assert grade.correct is correct, (kind, grade)
