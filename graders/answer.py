"""Rule-based final-answer grader: extract the final answer from a response and compare it to the reference.

Model output is hostile, so nothing here evaluates text: extraction is linear-time scanning and regexes
without nested quantifiers, numbers are parsed into exact `Fraction`s by hand, and inputs are cut to
`MAX_INPUT_CHARS` before any work. (The symbolic layer — sympy under a killable worker — is tracked in the
answer-grader issue; this module is its cheap, always-safe first stage.)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

from mathusereval.records import Generation, Grade, Sample

MAX_INPUT_CHARS = 20_000
"""Only the tail of a response is searched: final answers come last, and this bounds every scan."""

_BOXED_OPENERS = ("\\boxed", "\\fbox")
_ANCHORS = re.compile(
    r"(?:final answer is|the answer is|answer\s*[:：]|答案\s*(?:是|为)?)\s*[:：]?\s*(?P<ans>[^\n]{1,200})",
    re.IGNORECASE,
)
_HASHES = re.compile(r"####\s*(?P<ans>[^\n]{1,100})")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|(?<![\d.])-?\.\d+")
_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{?(\d+)\}?\{?(\d+)\}?$")
_PLAIN_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?$")


@dataclass(frozen=True, slots=True)
class AnswerGrade:
    """The verdict on one (reference, prediction) pair and why it was reached."""

    extracted: str | None
    reference: str
    prediction: str | None
    correct: bool
    reason: str


def _boxed_spans(text: str) -> list[tuple[int, str]]:
    """(position, content) of every balanced, non-empty ``\\boxed{...}`` / ``\\fbox{...}``; one linear scan."""
    spans: list[tuple[int, str]] = []
    pos = 0
    while True:
        starts = [i for i in (text.find(opener, pos) for opener in _BOXED_OPENERS) if i >= 0]
        if not starts:
            return spans
        start = min(starts)
        brace = text.find("{", start)
        if brace < 0:
            return spans
        depth, end = 0, -1
        for i in range(brace, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    end = i
                    break
        if end < 0:
            return spans
        if text[start:brace].strip() in _BOXED_OPENERS and text[brace + 1 : end].strip():
            spans.append((start, text[brace + 1 : end].strip()))
        pos = end + 1


def last_boxed(text: str) -> str | None:
    """Content of the last non-empty balanced ``\\boxed{...}`` or ``\\fbox{...}``."""
    spans = _boxed_spans(text)
    return spans[-1][1] if spans else None


def extract_answer(response: str) -> str | None:
    """The final answer stated in a response.

    The candidates are the last box, the last answer anchor ("the answer is", 答案是 ...) and the last
    ``####`` line; whichever comes last in the text wins, so a boxed intermediate value followed by a
    different stated answer is graded on the stated one. Without any of them, the last number.
    """
    text = response[-MAX_INPUT_CHARS:]
    candidates: list[tuple[int, str]] = []
    spans = _boxed_spans(text)
    if spans:
        candidates.append(spans[-1])
    for pattern in (_HASHES, _ANCHORS):
        matches = list(pattern.finditer(text))
        if matches:
            ans = matches[-1].group("ans").strip().rstrip(".。")
            inner = last_boxed(ans)
            candidates.append((matches[-1].start(), (inner if inner is not None else ans).strip()))
    candidates = [c for c in candidates if c[1]]
    if candidates:
        return max(candidates)[1]
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def normalize(answer: str) -> str:
    """Canonical text of an answer: NFKC (full-width digits), no TeX spacing, wrappers or dollar signs."""
    s = unicodedata.normalize("NFKC", answer[:MAX_INPUT_CHARS]).strip()
    s = s.replace("$", "").replace("\\left", "").replace("\\right", "")
    for spacing in ("\\!", "\\,", "\\;", "\\quad", "~"):
        s = s.replace(spacing, "")
    for _ in range(3):  # nested wrappers such as \text{\textbf{5}}
        s = _TEXT_WRAPPERS.sub(r"\1", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\%", "%")
    s = "".join(s.split()).rstrip(".。")
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):  # thousands separators, not tuples
        s = s.replace(",", "")
    return s


def to_number(answer: str) -> Fraction | None:
    """An exact rational for plain numbers, decimals, a/b, \\frac{a}{b} and percentages; else None."""
    s = answer.removesuffix("%")
    frac = _FRAC.match(s)
    if frac:
        sign, num, den = frac.groups()
        return None if int(den) == 0 else Fraction(int(num), int(den)) * (-1 if sign else 1)
    if len(s) > 100 or not _PLAIN_NUMBER.match(s):
        return None
    if "/" in s:
        num, den = s.split("/")
        return None if int(den) == 0 else Fraction(Fraction(num), int(den))
    return Fraction(s)


def grade_answer(reference: str, prediction: str, *, is_response: bool = True) -> AnswerGrade:
    """Compare a prediction (a whole response, or an extracted answer) with a reference answer."""
    extracted = extract_answer(prediction) if is_response else prediction
    ref = normalize(reference)
    if extracted is None:
        return AnswerGrade(None, ref, None, False, "no answer found")
    pred = normalize(extracted)
    if pred == ref:
        return AnswerGrade(extracted, ref, pred, True, "string match")
    ref_num, pred_num = to_number(ref), to_number(pred)
    if ref_num is not None and pred_num is not None:
        return AnswerGrade(extracted, ref, pred, ref_num == pred_num, "numeric")
    return AnswerGrade(extracted, ref, pred, False, "no rule matched")


def is_equivalent(reference: str, prediction: str, *, is_response: bool = True) -> bool:
    """True when the prediction's final answer equals the reference."""
    return grade_answer(reference, prediction, is_response=is_response).correct


def answer_grader(sample: Sample, generation: Generation) -> Grade:
    """The registered ``answer`` grader: 1.0 for a correct final answer, 0.0 otherwise."""
    verdict = grade_answer(sample.reference, generation.text)
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
