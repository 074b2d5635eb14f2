"""Hedged answers: a value stated with words that qualify or negate it is a different answer.

``\\boxed{\\text{18 or any other number}}``, "18 is wrong", "18 or fewer", "at least 18", "不是18" do not
state 18 (issue 34 §2). "x = 1 or x = 2" is not a hedge: "or" between values lists a solution set; only
"or" followed by a qualifier ("or more", "or something else") is. Words alone ("does not exist") are a text
answer, not a hedged value: a hedge needs a value (a digit or a TeX command) beside the words.
"""

from __future__ import annotations

import re

from .normalize import normalize

_NOT_A_COMMAND = r"(?<![\\A-Za-z])"  # "\not", "\notin" and words inside words are not hedges
_ALTERNATIVE = (
    r"\bor\s+(?:any|some|another|other|more|fewer|less|greater|smaller|larger|higher|lower|above|below|so|"
    r"something|anything|else|whatever|not)\b|\b(?:something|anything|someone)\s+else\b"
)
_NEGATION = (
    _NOT_A_COMMAND + r"(?:not|isn't|aren't|wasn't|never|cannot|can't)\b"
    r"|\b(?:is|are|was|seems?|be)\s+(?:wrong|incorrect|false|invalid|impossible)\b"
)
_UNSURE = _NOT_A_COMMAND + r"(?:maybe|perhaps|possibly|probably|unsure|uncertain|guess|fails|kidding)\b"
_BOUND = r"\b(?:at\s+(?:least|most)|more\s+than|less\s+than|fewer\s+than|greater\s+than|up\s+to)\b"
_CHINESE = (
    r"或者?其[他它]|或者?更[多少大小]|不是|不一定|不确定|可能是|也可能|也许|或许|至少|至多|不少于|不超过"
    r"|以上|以下|左右|吧"
)
_HEDGE = re.compile(f"{_ALTERNATIVE}|{_NEGATION}|{_UNSURE}|{_BOUND}|{_CHINESE}", re.IGNORECASE)
_VALUE = re.compile(r"\d|\\[a-zA-Z]")
_INEQUALITY = re.compile(r"[<>≤≥≠]|\\[lg]eq?\b|\\[lg]eqslant|\\[lg]t\b|\\neq?\b")


def hedge_in(answer: str) -> str | None:
    """The words that hedge the value an answer states ("or fewer", "is wrong"), or None."""
    text = normalize(answer)  # "\text{does not exist}" unwrapped is words, not a value
    if not _VALUE.search(text):
        return None
    match = _HEDGE.search(text)
    return match.group() if match else None


def is_hedged_against(prediction: str, *references: str) -> bool:
    """A hedged prediction, against references that state their value plainly (a reference that is itself an
    inequality or a qualified value, "at least 3", is compared as usual)."""
    if hedge_in(prediction) is None:
        return False
    return not any(hedge_in(r) is not None or _INEQUALITY.search(r) for r in references)
