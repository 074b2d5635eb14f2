"""The ``choice`` grader: multiple-choice items graded by the option letter(s) the response chooses.

An item is a choice item when its gold is option letters (``C``; ``ABD`` for a multi-answer GaoKao item);
any other item of the same set (a blank, an open question) is graded by the answer grader. The protocol is
Qwen2.5-Math's (``evaluation/math_eval.py``: a letter gold takes the prediction's letters;
``evaluation/parser.py::choice_answer_clean`` reads them after "answer is"): the response chooses

1. the letters in its last ``\\boxed{}`` (``\\boxed{C}``, ``\\boxed{(B)}``, ``\\boxed{A, C}``, ``\\boxed{\\text{D}}``);
2. else the letters after its last answer phrase ("the answer is (B)", "答案是C", "故选：BD", "【答案】A");
3. else the letters alone on its last line ("(B)");
4. else, when the sample carries its options, the one option whose text equals the response's final answer
   by the answer grader (``\\boxed{-6}`` for "C. -6"): the option's text counts, not only its letter.

Several different choices in one box or phrase are read as a multi-answer choice; a multi-answer item is
correct only with exactly its set of letters (the exams give no partial credit in this protocol).

A hedge between options chooses none: "A or B", "答案是A或B", "选A或者B", "A / B", "A & B", "A-B". Qwen's
``choice_answer_clean`` takes the last letter of such an answer; we read it as no choice, stricter on purpose
(issue 34 §2): it is wrong on a single-answer item, and on a multi-answer item too, which only the set itself
written as a set ("A, C", "AC", "A和C", ``\boxed{A, C}``) answers. Full-width letters (``Ａ``) are letters.
"""

from __future__ import annotations

import re
import unicodedata

from mathusereval.plugins.metrics import accuracy
from mathusereval.plugins.task import EMPTY_REFERENCE, boxed_answer
from mathusereval.records import Generation, Grade, Sample

from .answer import grade_answer, is_truncated, not_graded
from .normalize import normalize

LETTERS = "ABCDE"
HEDGE = "hedge between options"
_GOLD = re.compile(r"[A-E]{1,5}")
_JOINERS = re.compile(r"\\text\s*\{([^{}]*)\}|\\mathrm\s*\{([^{}]*)\}|\\textbf\s*\{([^{}]*)\}")
_SEPARATORS = re.compile(r"[\s()（）{}\[\],，、;；.。和与及]|and|\\quad|\\,|~")
_HEDGE = re.compile(
    r"(?<![A-Za-z])[A-E][)）]?[,，.;；]?\s*[(（]?\s*"
    r"(?:(?i:\band/or\b|\bor\b|\bunless\b)|或者?是?|还是|也?可能是|/|\\?&|-|–|\\lor|\\vee|\|)"
    r"(?:\s*(?i:maybe|perhaps|possibly|probably|even|also)\b)?\s*[(（]?[A-E](?![A-Za-z])"
)
"""Two options joined by "or" (also "and/or", "or maybe", "(or B)", ". Or B", "unless"), "或", "或是", "也可能是",
"/", "&", "-": a hedge between them, not a set of answers."""
_BOXES_OR = re.compile(r"\\boxed\s*\{[^{}]{0,20}\}\s*(?:\\text\s*\{\s*)?(?:\bor\b|或者?)\s*\}?\s*\\boxed")
"""``\\boxed{A} or \\boxed{B}``: two boxes joined by "or" are a hedge, not a set."""
_PHRASE = re.compile(
    r"(?i:answer is|answer:|choice is|correct option is|答案是|答案为|答案应为|答案选|故选|应选|选择|选|【答案】)"
    r"\s*[:：]?\s*(?i:option\s*)?[(（]?\s*([A-E](?:\s*(?:[,，、和与及]|and)?\s*[A-E])*)(?![A-Za-z])"
)
_LONE = re.compile(r"^\W*[(（]?([A-E](?:\s*[,，、]\s*[A-E])*)[)）]?\W*$")


def hedges(answer: str) -> bool:
    """Does the answer hedge between options ("A or B", "A/B", "A 或 B")?"""
    return bool(_HEDGE.search(_unwrap(answer)))


def _unwrap(answer: str) -> str:
    return _JOINERS.sub(lambda m: next(g for g in m.groups() if g is not None), answer)


def letters_in(answer: str) -> str | None:
    """The option letters an extracted answer consists of (``(B)``, ``A, C``, ``\\text{D}``), else None."""
    unwrapped = _unwrap(answer)
    bare = _SEPARATORS.sub("", unwrapped)
    if bare and len(bare) <= len(LETTERS) and all(c in LETTERS for c in bare):
        return "".join(sorted(set(bare)))
    return None


def _plain(text: str) -> str:
    return " ".join(normalize(text).split()).lower()


def chosen(text: str, options: dict[str, str] | None) -> tuple[str | None, str]:
    """(the letters the response chooses, how they were found), (None, why not) when it chooses none."""
    text = unicodedata.normalize("NFKC", text[-20_000:])  # full-width "Ａ" is the letter A
    box = boxed_answer(text)
    if box is not None:
        if hedges(box) or _BOXES_OR.search(text[-3000:]):
            return None, HEDGE
        letters = letters_in(box)
        if letters:
            return letters, "boxed letter"
    tail = text[-3000:]
    phrases = list(_PHRASE.finditer(tail))
    if phrases:
        last = phrases[-1]
        if hedges(tail[last.start(1) : last.end(1) + 40]):
            return None, HEDGE
        letters = letters_in(last.group(1))
        if letters:
            return letters, "answer phrase"
    last_line = tail.strip().rsplit("\n", 1)[-1]
    lone = _LONE.match(last_line)
    if lone:
        letters = letters_in(lone.group(1))
        if letters:
            return letters, "letter on the last line"
    if options:
        if box is not None:  # the option written out as it stands in the question
            same = [letter for letter, body in options.items() if _plain(body) and _plain(body) == _plain(box)]
            if len(same) == 1:
                return same[0], "option text"
        matches = [letter for letter, body in options.items() if body.strip() and grade_answer(body, text).correct]
        if len(matches) == 1:
            return matches[0], "option text"
        if len(matches) > 1:
            return None, f"the final answer equals {len(matches)} options"
    return None, "no option chosen"


class ChoiceGrader:
    """The registered ``choice`` grader (see the module docstring)."""

    score_range = (0.0, 1.0)
    aggregate = staticmethod(accuracy)

    def __call__(self, sample: Sample, generation: Generation) -> Grade:
        gold = re.sub(r"[\s,，、]", "", sample.reference)  # "A B D": a multi-answer item's letters
        if not _GOLD.fullmatch(gold):  # an open item of a mixed set: the answer grader's verdict
            verdict = grade_answer(sample.reference, generation.text, truncated=is_truncated(generation))
            if verdict.reason == EMPTY_REFERENCE:
                return not_graded(sample, generation, "choice")
            details = {"extracted": verdict.extracted, "reference": verdict.reference, "reason": verdict.reason}
            return Grade(sample.id, generation.n_index, "choice", float(verdict.correct), verdict.correct, details)
        raw = sample.metadata.get("options")
        options = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else None
        letters, how = chosen(generation.text, options)
        correct = letters == "".join(sorted(set(gold)))
        details = {"extracted": letters, "reference": gold, "reason": how}
        return Grade(sample.id, generation.n_index, "choice", 1.0 if correct else 0.0, correct, details)


choice_grader = ChoiceGrader()
