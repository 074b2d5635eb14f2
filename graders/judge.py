"""LLM judges as graders: the AlignBench multi-dimensional judge and Math-Critique.

A judge is a frozen description (prompt, parser, pass threshold); the model that plays the judge is a
backend chosen at run time (``--judge MODEL``) and driven by `mathusereval.run.judging`, which adds the
cache, the bounded retries of unparseable replies, the cascade and the budget.

`parse_judgment` reads what judges really write (AlignBench judge.py and the ChatGLM-Math paper's App. B;
docs/design-notes.md §2-3): single- or
double-quoted keys, JSON or Python dicts, a dict spread over lines, full-width colons, ``[[8]]``, ``[[8]``,
``评分：8``, decimals. A score outside 1–10 is rejected, a percentage is no score, and a reply with no score
is a failure with its reason, never a silent 1 or 0. `upstream_score` reproduces upstream ``judge.py``
exactly (-1 when its regexes miss), for ``--parity upstream`` comparisons.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mathusereval.plugins.metrics import mean_with_stderr, per_sample_scores
from mathusereval.records import Generation, Grade, Message, MetricValue, Sample, Settled

from . import judge_prompts
from .answer import grade_many
from .extract import last_boxed, states_answer

Style = Literal["alignbench", "math-critique"]
OVERALL = "综合得分"
LOW, HIGH = 1.0, 10.0
MAX_JUDGMENT_CHARS = 16_000
"""Only the tail is parsed: the verdict comes last, and upstream's backtracking regex stays bounded."""

_NUM = r"(-?\d+(?:\.\d+)?)(?![\d.]*\s*(?:%|percent|per cent))"
"""A number that is not a percentage: ``打分: 2.3%`` in a reply is a share of something, never a rating."""
_Q = "'\"‘’“”「」『』`"
_DICT = re.compile(r"\{[^{}]*\}")
_PAIR = re.compile(rf"[{_Q}]?\s*([^{_Q}:：,，{{}}\n]+?)\s*[{_Q}]?\s*[:：]\s*[{_Q}]?\s*{_NUM}")
_OVERALL = re.compile(rf"综合得分\s*[{_Q}]?\s*(?:[:：]|为|是)\s*[{_Q}]?\s*\**\s*{_NUM}")
_BRACKETS = re.compile(rf"\[\[\s*{_NUM}\s*\]\]?")
_RATING = re.compile(rf"(?:评分|打分|得分|分数|rating|score)\s*(?:为|是)?\s*[:：]?\s*\**\s*{_NUM}", re.IGNORECASE)

# upstream judge.py: r"{(.*?)}(?![^{]*{)" for the last {...} (see `_upstream_last_dict`), then 'key': int pairs,
# then a direct search for the overall score
UPSTREAM_DICT = r"{(.*?)}(?![^{]*{)"
_UPSTREAM_PAIR = re.compile(r"'(.*?)': (\d+)")
_UPSTREAM_OVERALL = re.compile(r"'综合得分': (\d+(\.\d{1,2})?)")

# Verdicts the cascade accepts as settled: an exact match of any kind, or a definite mismatch between two
# numbers or two choice letters. A mismatch of free text against a worked-solution reference is left to
# the judge, since extraction from prose references is where rule graders err (docs/design-notes.md §4).
_CLEAR_WRONG = frozenset({"numeric", "choice letter"})
_UNSETTLED = frozenset({"no answer found", "timeout", "memory limit", "parse failure"})
CURATED_REFERENCE_CHARS = 40


@dataclass(frozen=True, slots=True)
class Judgment:
    """A parsed judge reply: the overall score (None when unusable), per-dimension scores, and why it failed."""

    score: float | None
    dimensions: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _in_range(value: float) -> bool:
    return LOW <= value <= HIGH


_BRACKET_FORMS = str.maketrans("【】〔〕", "[][]")
QUOTE_MASK_MIN_CHARS = 16
"""A whole answer at least this long that the judge reproduces is blanked out before parsing; shorter answers
("2") would blank the judge's own digits, and `_Quotation` covers them."""


@dataclass(frozen=True, slots=True)
class _Score:
    end: int
    kind: str  # "dict", "dims", "overall", "brackets", "rating"
    value: float
    dims: dict[str, float] = field(default_factory=dict)
    suspect: bool = False
    """Its text occurs in the answer (but not inside answer text the judge reproduced): it counts only when
    the judge wrote no score of its own beside it."""


_QUOTES = str.maketrans({c: "'" for c in "'\"‘’“”「」『』`"})
GRAM = 10
"""Answer text reproduced in a reply is found by runs of this many characters (white space aside) that
both hold."""
CONTEXT = 12
"""A score sits inside a quotation when the reproduced answer text reaches this far beyond it: farther than
a verdict's own label ("Rating:", "综合得分：") reaches, so a judge writing the label the answer also has is
not taken for a quote."""


def _normal(text: str) -> tuple[str, list[int]]:
    """`text` without white space and with every quote mark as ``'`` (judges re-quote what they cite), and
    for each kept character its index in `text`."""
    kept, where = [], []
    for k, ch in enumerate(text.translate(_QUOTES)):
        if not ch.isspace():
            kept.append(ch)
            where.append(k)
    return "".join(kept), where


class _Quotation:
    """Where a reply reproduces the answer: the places, not just the strings (an answer that happens to
    contain the judge's own verdict string must not veto it)."""

    def __init__(self, tail: str, answer: str) -> None:
        self.answer, _ = _normal(answer)
        text, self.where = _normal(tail)
        grams = {self.answer[k : k + GRAM] for k in range(len(self.answer) - GRAM + 1)}
        self.covered = bytearray(len(text))
        for k in range(len(text) - GRAM + 1):
            if text[k : k + GRAM] in grams:
                self.covered[k : k + GRAM] = b"\1" * GRAM

    def inside(self, start: int, end: int) -> bool:
        """Whether the reply's [start, end) lies within reproduced answer text that reaches `CONTEXT`
        characters beyond it on one side."""
        first, last = bisect.bisect_left(self.where, start), bisect.bisect_left(self.where, end) - 1
        if first > last or not all(self.covered[first : last + 1]):
            return False
        low, high = first, last
        while low > 0 and self.covered[low - 1]:
            low -= 1
        while high + 1 < len(self.covered) and self.covered[high + 1]:
            high += 1
        return first - low >= CONTEXT or high - last >= CONTEXT

    def suspect(self, span: str) -> bool:
        key = _normal(span)[0]
        return bool(self.answer) and key in self.answer


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _prepare(text: str) -> str:
    """Full-width digits, brackets and colons read as ASCII (NFKC), lenticular brackets as ``[``."""
    return unicodedata.normalize("NFKC", text).translate(_BRACKET_FORMS)


def _scores(tail: str, answer: str) -> tuple[list[_Score], int]:
    """Every score-shaped span of the reply the judge wrote, and how many were the answer's.

    Judges quote answers, and an answer must never write its own score (``{'综合得分': 10}`` or ``Rating:
    [[10]]`` inside the answer, quoted back). A whole answer reproduced verbatim is blanked; a score inside
    answer text the reply reproduces (whatever its spacing or quote marks) is dropped; a score whose text
    merely also occurs in the answer is kept as suspect (`parse_judgment` uses it only when the judge wrote
    no other score).
    """
    answer = _prepare(answer)
    dropped = 0
    whole = answer.strip()
    if len(whole) >= QUOTE_MASK_MIN_CHARS and whole in tail:
        tail = tail.replace(whole, " " * len(whole))
        dropped += any(p.search(whole) for p in (_DICT, _OVERALL, _BRACKETS, _RATING))
    quotation = _Quotation(tail, answer)
    found: list[_Score] = []

    def add(match: re.Match[str], kind: str, value: float, dims: dict[str, float] | None = None) -> None:
        nonlocal dropped
        if quotation.inside(match.start(), match.end()):
            dropped += 1
            return
        found.append(_Score(match.end(), kind, value, dims or {}, quotation.suspect(match.group())))

    for match in _DICT.finditer(tail):
        pairs = {k.strip(): float(v) for k, v in _PAIR.findall(match.group()[1:-1])}
        if pairs:
            add(match, "dict" if OVERALL in pairs else "dims", pairs.get(OVERALL, float("nan")), pairs)
    for kind, pattern in (("overall", _OVERALL), ("brackets", _BRACKETS), ("rating", _RATING)):
        for match in pattern.finditer(tail):
            add(match, kind, float(match.group(1)))
    own = [f for f in found if not f.suspect]
    if any(f.kind != "dims" for f in own):  # the judge's own verdict outweighs text the answer also holds
        dropped += len(found) - len(own)
        found = own
    return found, dropped


def parse_judgment(text: str, style: Style = "alignbench", answer: str = "") -> Judgment:
    """The overall score, the dimension scores and the failure reason of one judge reply.

    Args:
        text: the judge's reply, untrusted; only its last `MAX_JUDGMENT_CHARS` characters are read.
        style: ``"alignbench"`` (upstream format: the score dict with ``综合得分``) or ``"math-critique"``
            (upstream format: ``[[n]]``).
        answer: the judged answer. Score-shaped text that comes from it never counts (see `_scores`).

    The judge's own final verdict decides: the upstream format when every occurrence of it agrees, else
    the last score written in the reply in any format (``[[n]]``, the dict, ``综合得分：n``, ``评分：n``,
    ``Rating: n``). A reply whose only scores come from the answer is a failure. Upstream's own choice
    (`upstream_score`) reads the first matching format anywhere, quoted text included.
    """
    tail = _prepare(text[-MAX_JUDGMENT_CHARS:])
    found, from_answer = _scores(tail, answer)
    dicts = [f for f in found if f.kind in ("dict", "dims")]
    dims = {k: v for k, v in (dicts[-1].dims if dicts else {}).items() if k != OVERALL and _in_range(v)}
    scores = [f for f in found if f.kind != "dims"]
    upstream_kind = "dict" if style == "alignbench" else "brackets"
    upstream = {f.value for f in scores if f.kind == upstream_kind}
    if len(upstream) == 1:
        score = upstream.pop()
    elif scores:
        score = max(scores, key=lambda f: (f.end, f.kind == upstream_kind)).value
    else:
        reason = "only scores quoted from the answer" if from_answer else "no score found"
        return Judgment(None, dims, reason)
    if not _in_range(score):
        return Judgment(None, dims, f"score {score:g} is outside {LOW:g}-{HIGH:g}")
    return Judgment(score, dims)


def _upstream_last_dict(text: str) -> str | None:
    """What ``re.search(UPSTREAM_DICT, text).group(1)`` returns, in linear time (the regex is quadratic on
    brace-heavy text: 2 s for 16,000 "{").

    The lookahead admits only a ``}`` after the text's last ``{``; ``.`` stops at newlines, so the first
    such ``}`` must share a line with that ``{``, and the leftmost match starts at the first ``{`` of the
    line. tests/test_judge_parsing.py checks the equivalence on generated texts.
    """
    last_open = text.rfind("{")
    if last_open < 0:
        return None
    close = text.find("}", last_open)
    if close < 0 or "\n" in text[last_open:close]:
        return None
    start = text.find("{", text.rfind("\n", 0, last_open) + 1)
    return text[start + 1 : close]


def upstream_score(text: str, style: Style = "alignbench") -> float:
    """The score upstream code would record, -1 included (AlignBench/ChatGLM-Math ``judge.py``
    ``post_process``; for Math-Critique, whose code is unreleased, the paper's strict ``[[n]]``)."""
    tail = text[-MAX_JUDGMENT_CHARS:]
    if style == "math-critique":
        strict = re.findall(r"\[\[(\d+)\]\]", tail)
        return float(strict[-1]) if strict else -1.0
    body = _upstream_last_dict(tail)
    rating = {k: int(v) for k, v in _UPSTREAM_PAIR.findall(body)} if body is not None else {}
    if OVERALL in rating:
        return float(rating[OVERALL])
    direct = _UPSTREAM_OVERALL.search(tail)
    return float(direct.group(1)) if direct else -1.0


@dataclass(frozen=True)
class LLMJudge:
    """A judge grader: how to ask (prompt), how to read the reply (style), and what counts as a pass.

    Attributes:
        name: registry name, also the grader name on every grade it makes.
        style: which prompt and parser.
        threshold: hard-split pass mark, score >= 7 (upstream show_result.py; docs/design-notes.md §1).
        cascade_scores: the scores the answer-grader cascade gives a clear (correct, wrong) final answer:
            the middle of the judge's own bands, so hard-split keeps its meaning (see `mathusereval.run.judging`).
    """

    name: str
    style: Style
    threshold: float = 7.0
    cascade_scores: tuple[float, float] = (8.0, 2.0)
    role: str = "judge"
    score_range: tuple[float, float] = (LOW, HIGH)

    @property
    def template(self) -> str:
        return judge_prompts.MULTI_DIMENSION if self.style == "alignbench" else judge_prompts.MATH_CRITIQUE

    @property
    def prompt_sha256(self) -> str:
        extra = repr(sorted(judge_prompts.DEFINITIONS.items())) if self.style == "alignbench" else ""
        return hashlib.sha256((self.template + extra).encode()).hexdigest()

    def messages(self, sample: Sample, generation: Generation) -> tuple[Message, ...]:
        """One user turn and no system prompt, as upstream sends it."""
        question, reference, answer = sample.question, sample.reference, generation.text
        if self.style == "alignbench":
            category = str(sample.metadata.get("category") or "数学")
            kind = judge_prompts.answer_type(category, str(sample.metadata.get("subcategory") or ""))
            text = judge_prompts.render_multi_dimension(category, kind, question, reference, answer)
        else:
            text = judge_prompts.render_math_critique(question, reference, answer)
        return ({"role": "user", "content": text},)

    def parse(self, text: str, answer: str = "") -> Judgment:
        """The judge's verdict on `answer`; scores quoted from the answer itself never count."""
        return parse_judgment(text, self.style, answer)

    def upstream(self, text: str) -> float:
        return upstream_score(text, self.style)

    def settle(self, items: Sequence[tuple[Sample, Generation]], cascade: bool) -> list[Settled | None]:
        """With ``--judge-cascade``, the answer grader settles clear math items; the rest go to the judge.

        Clear means: the response states its final answer explicitly, the reference is a curated answer
        (boxed, or at most 40 characters), and the verdict is a match, or a mismatch of two numbers or two
        choice letters. Worked-solution references in prose (MathUserEval, AlignBench) are left to the
        judge: on the 567 GPT-4-1106 MathUserEval answers, reading their answer out of the prose settled 21
        items as wrong, most of them against an intermediate value of the reference. The settled score is
        the judge's own band for that outcome (`cascade_scores`), so avg-score is an approximation while
        hard-split (>= 7) keeps its meaning. Such a grade stands only while the cascade is asked for.
        """
        decided: list[Settled | None] = [None] * len(items)
        if not cascade:
            return decided
        candidates = [
            k
            for k, (s, g) in enumerate(items)
            if s.metadata.get("math", True)
            and states_answer(g.text)
            and (len(s.reference.strip()) <= CURATED_REFERENCE_CHARS or last_boxed(s.reference) is not None)
        ]
        verdicts = grade_many([(items[k][0].reference, items[k][1].text) for k in candidates]) if candidates else []
        for k, verdict in zip(candidates, verdicts, strict=True):
            if verdict.reason in _UNSETTLED or not (verdict.correct or verdict.reason in _CLEAR_WRONG):
                continue
            score = self.cascade_scores[0] if verdict.correct else self.cascade_scores[1]
            details = {"rule": verdict.reason, "extracted": verdict.extracted}
            decided[k] = Settled(score, details, standing=False)
        return decided

    def aggregate(self, samples: Sequence[Sample], grades: Sequence[Grade]) -> list[MetricValue]:
        """avg-score and hard-split, the paper's two numbers, when this judge is not the task's own scorer."""
        scores = per_sample_scores(grades)
        judged = [scores[s.id] for s in samples if s.id in scores]
        return [
            mean_with_stderr("avg_score", judged),
            mean_with_stderr("hard_split", [float(v >= self.threshold) for v in judged]),
        ]


ALIGNBENCH_JUDGE = LLMJudge("alignbench-judge", "alignbench", cascade_scores=(8.0, 2.0))
"""Correct -> 8, the score the prompt anchors a reference-quality answer at; wrong -> 2, its band for a
fundamental factual error."""
MATH_CRITIQUE = LLMJudge("math-critique", "math-critique", cascade_scores=(8.0, 3.0))
"""Correct -> 8, inside the 6–8 / 9–10 "right answer" bands; wrong -> 3, inside 1–2 / 3–5."""
