"""Find the final answer in a model response or a worked reference solution.

Model output is hostile, so everything here is linear-time scanning and regexes without nested
quantifiers over a bounded tail of the text; nothing is parsed into maths.

Order (docs/design-notes.md §4): the *strong* candidates are the last group of
``\\boxed{}``/``\\fbox{}``, the Minerva line "Final Answer: The final answer is X. I hope it is
correct", "the answer is X" / "answer: X", ``#### X``, a line ``A: X`` and the Chinese anchors
(答案是 / 答案为 / 答案： / 故选 / 所以 ...). Of those, the one that comes *last* in the text wins, so a
response that boxes an intermediate value and then states a different final answer is graded on the
final statement. Only when there is none: markdown bold, then the last LaTeX span, then the last number.
"""

from __future__ import annotations

import re

from .compare import split_top_level
from .hedge import hedge_in
from .spans import box_group, boxed_spans, last_box_group, mask_code, window_inside_a_box

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_INPUT_CHARS",
    "boxed_spans",
    "extract_answer",
    "extract_reference",
    "last_box_group",
    "last_boxed",
    "states_answer",
]

MAX_INPUT_CHARS = 20_000
"""Only the tail of a response is searched: final answers come last, and this bounds every scan."""

MAX_ANSWER_CHARS = 2_000
"""An extracted answer longer than this is not an answer; it is cut (and will not match)."""

_MINERVA = re.compile(r"final answer is\s*(?P<ans>.{1,500}?)\.?\s*I hope it is correct", re.IGNORECASE | re.DOTALL)
_ANCHOR_WORDS = (
    r"(?:(?:final\s+)?answer\s+(?:is|would be|should be)|final answer\s*[:：]|(?<![a-z])answer\s*[:：]"
    r"|(?<![a-z])answer\s+(?=\$|\\\(|\\\[)|答案\s*(?:应该|应)?\s*(?:是|为|[:：])|【答案】|故选|所以\s*选|因此\s*选|(?:所以|因此|故|综上所述?)[^。\n=$]{0,20}?(?:=|(?<!不)为|(?<!不)是))"
    r"\s*[:：]?\s*"
)
_ANCHOR = re.compile(_ANCHOR_WORDS + r"(?P<ans>.{1,300})", re.IGNORECASE | re.DOTALL)
_ANCHOR_HEAD = re.compile(_ANCHOR_WORDS, re.IGNORECASE | re.DOTALL)
"""The anchor alone: the last one is found even when an earlier anchor's 300-character answer window
would swallow it ("the answer is 41 ... actually the answer is 42")."""
_HASHES = re.compile(r"####\s*(?P<ans>[^\n#]{1,200})")  # "######" noise is not an anchor
_CHOICE_STATEMENT = re.compile(
    r"(?:(?i:correct\s+(?:answer|choice|option)|(?:choice|option))\s+(?i:is)|正确选项\s*(?:是|为)|选项\s*(?:是|为))"
    r"\s*[:：]?\s*\(?(?P<ans>[A-E])\)?(?![A-Za-z])"
    r"|(?<![A-Za-z])(?:(?i:option|choice)\s*)?\(?(?P<ans2>[A-E])\)?\s+(?i:is\s+(?:the\s+)?correct)"
)
_ASIDE = re.compile(
    r"\s*[(（][^()（）]*?(?:\b(?i:not|reject\w*|discard\w*|extraneous|invalid|exclud\w*|ignor\w*|impossible)\b"
    r"|舍|不合|不符|不满足)[^()（）]*[)）]"
)
_TRAILING_PROSE = re.compile(r"(?<=\S)\s*[(（](?=[^()（）]*(?:[A-Za-z]{2,}|[\u4e00-\u9fff]))[^()（）]*[)）]\s*$")
_ANSWER_SHAPED = re.compile(r"[0-9\\∅\u4e00-\u9fff]|^\(?[A-E]\)?$|^[A-Za-z]+$")
_BOLD_PREFIX = re.compile(r"^(?i:final\s+answer|answer)\s*[:：]\s*|^(?:最终)?答案\s*[:：是为]\s*")
_BOLD_TAIL_CHARS = 300
"""A bold answer this close to the end of a response is a final statement, beating earlier anchors."""
_A_LINE = re.compile(r"(?m)^\s*A\s*:\s*(?P<ans>[^\n]{1,200})$")
_BOLD = re.compile(r"\*\*(?P<ans>[^*\n]{1,200})\*\*")
_LATEX_SPAN = re.compile(
    r"\$\$(?P<a>[^$]{1,2000}?)\$\$|\\\[(?P<b>.{1,2000}?)\\\]|\\\((?P<c>.{1,2000}?)\\\)|\$(?P<d>(?:[^$\n\\]|\\.){1,1000})\$",
    re.DOTALL,
)
_NUMBER = re.compile(r"(?<![A-Za-z])-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|(?<![\d.])-?\.\d+")
_SENTENCE_END = re.compile(r"(?<=[^\d\s\\])\.(?:\s|$)|(?<=\d)\.(?:\s|$)|。|；|;\s|\n|<eo[ae]>|【")
_WORDS = re.compile(r"[A-Za-z]{2,}|[\u4e00-\u9fff]+")
"""Words of prose: "x < - 2" has none, "Jane started growing Sphere 3 hours ago" several."""
_EQUALS = re.compile(r"(?<![<>!\\])=")  # "=", not "<=", ">=", "!=" or "\="


def _last_match(pattern: re.Pattern[str], text: str, pos: int = 0) -> re.Match[str] | None:
    """The last (non-overlapping) match; one linear pass."""
    last = None
    for last in pattern.finditer(text, pos):  # noqa: B007 - the loop variable is the result
        pass
    return last


def last_boxed(text: str) -> str | None:
    """Content of the last non-empty balanced box."""
    spans = boxed_spans(text[-MAX_INPUT_CHARS:])
    return spans[-1][2] if spans else None


def _span_content(match: re.Match[str]) -> str:
    """The inside of whichever delimiter pair matched."""
    return next(g for g in match.groups() if g is not None).strip()


def _math_spans(text: str) -> list[tuple[int, str]]:
    spans = []
    for m in _LATEX_SPAN.finditer(text):
        content = _span_content(m)
        if content:
            spans.append((m.start(), content))
    return spans


_NEXT_BLANK = re.compile(r"\s*([^\n。；;，,]{1,30}?)\s*(?:[。.]?\s*$|[\n。])")


def _blank_follows(ans: str, cut: re.Match[str]) -> bool:
    """ "1；3": a semicolon between two short answers joins the blanks of one answer (GaoKao cloze keys
    write "$5$;$10$"); a clause after it ("；又因为 ...") ends the statement."""
    if cut.group() not in ("；", "; ", ";\n"):
        return False
    rest = _NEXT_BLANK.match(ans, cut.end())
    if rest is None:
        return False
    return not _WORDS.search(rest.group(1)) and bool(re.search(r"[\d\\]", rest.group(1)))


def _clip_statement(ans: str) -> str:
    """The answer part of "the answer is X. Because ..." — up to the end of the sentence."""
    cut = None
    for cut in _SENTENCE_END.finditer(ans):
        # a sentence end inside math ("$x = 3.$", "\\[ \n 9 \n \\]") does not end the statement
        before = ans[: cut.start()]
        balanced = before.count("\\[") <= before.count("\\]") and before.count("\\(") <= before.count("\\)")
        if before.count("$") % 2 == 0 and balanced and not _blank_follows(ans, cut):
            break
    else:
        cut = None
    sentence = (ans[: cut.start()] if cut else ans).strip().rstrip(".。,，").strip("*").strip()
    # asides after the answer: "5 (x = -3 is rejected)", "5 (not 7)", "5 （舍去负根）"
    sentence = _TRAILING_PROSE.sub("", _ASIDE.sub("", sentence)).strip().rstrip(".。,，")
    box = last_box_group(sentence)
    if box is not None:
        return box[1]
    sentence = _after_last_is(sentence)
    spans = _math_spans(sentence)
    if spans:
        # "$x = 3$ and $y = 4$": every math span of the statement, not the prose around them.
        return ", ".join(_last_equation_side(c, computation=True) for _, c in spans)
    if len(_WORDS.findall(sentence)) > 2 and not re.search(r"\\[a-zA-Z]", sentence) and not hedge_in(sentence):
        # Prose ("Jane started growing Sphere 3 hours ago"): the number it states. A hedge ("18 or something
        # else") states no number: it is kept whole, and graded as the hedge it is.
        numbers = _NUMBER.findall(sentence)
        if len(numbers) == 1:
            return str(numbers[0])
    return sentence


def _strong_candidates(text: str) -> list[tuple[int, str]]:
    """Every strong statement of a final answer, with where it starts; the last one wins. A boxed answer
    beats every statement before it, so with a box only the text after the box is searched: a reasoning
    model's 20 KB reply boxed at the end costs a scan of its tail, not of the whole window."""
    candidates: list[tuple[int, str]] = []
    group = box_group(text)
    box = None if group is None else (group[0], group[2])
    start = 0
    if box is not None and group is not None:
        candidates.append(box)
        start = group[1]  # a phrase inside the box ("所以 m=2" in a boxed derivation) is part of its content
    minerva = _last_match(_MINERVA, text, start)
    if minerva is not None:
        candidates.append((minerva.start(), _clip_statement(minerva.group("ans") + "\n")))
    anchored = _last_stated(text, box is not None, start)
    if anchored is not None:
        candidates.append(anchored)
    for pattern in (_HASHES, _A_LINE):
        last = _last_match(pattern, text, start)
        if last is not None:
            ans = _clip_statement(last.group("ans"))
            # "so our answer is correct" after a box is a remark, not a new answer; noise ("answer is ##")
            # after a committed answer never replaces it
            if ans and not (box is not None and (_is_prose(ans) or not _ANSWER_SHAPED.search(ans))):
                candidates.append((last.start(), ans))
    tail = text[start:]
    lowered = tail.lower()
    has_choice_words = "correct" in lowered or "option" in lowered or "choice" in lowered or "选项" in tail
    choice = _last_match(_CHOICE_STATEMENT, text, start) if has_choice_words else None
    if choice is not None:
        candidates.append((choice.start(), choice.group("ans") or choice.group("ans2")))
    return candidates


def _last_stated(text: str, boxed: bool, start: int = 0) -> tuple[int, str] | None:
    """The last answer phrase ("the answer is X", 答案是 X) that states an answer: a later "the answer is
    correct" or noise does not replace an earlier "the answer is 41". With nothing answer-shaped, the last
    phrase stands (a text answer: "the answer is yes"), unless the response boxed its answer.

    The tail is searched first (`_TAIL_CHARS`): a phrase found there is the last one of the whole text, so
    the rest is scanned only when the tail states nothing."""
    tail = len(text) - _TAIL_CHARS
    if tail > start:
        found = _answer_shaped(text, _heads(text, tail))
        if found is not None:
            return found
    heads = _heads(text, start)
    found = _answer_shaped(text, heads)
    if found is None and heads and not boxed:
        ans = _clip_statement(text[heads[-1][1] : heads[-1][1] + 300])
        return (heads[-1][0], ans) if ans else None
    return found


def _heads(text: str, start: int) -> list[tuple[int, int]]:
    """The last `_MAX_ANCHORS` answer phrases from `start` on: (where the phrase starts, where its answer starts)."""
    heads: list[tuple[int, int]] = []
    for match in _ANCHOR.finditer(text, start):
        heads.append((match.start(), match.start("ans")))
        # a later phrase inside this one's 300-character answer window
        heads += [(h.start(), h.end()) for h in _ANCHOR_HEAD.finditer(text, match.start("ans"), match.end("ans"))]
    return heads[-_MAX_ANCHORS:]


def _answer_shaped(text: str, heads: list[tuple[int, int]]) -> tuple[int, str] | None:
    for where, ans_start in reversed(heads):
        ans = _clip_statement(text[ans_start : ans_start + 300])
        if ans and _ANSWER_SHAPED.search(ans) and not _is_prose(ans):
            return where, ans
    return None


_TAIL_CHARS = 3_000
_MAX_ANCHORS = 20


def _final_bold(text: str, after: int) -> tuple[int, str] | None:
    """A bold answer at the very end ("**25%**", "**答案：5**") that comes after every other candidate."""
    bold = _last_match(_BOLD, text, max(after, len(text) - _BOLD_TAIL_CHARS))
    if bold is None:
        return None
    ans = _clip_statement(_BOLD_PREFIX.sub("", bold.group("ans").strip()))
    if not ans or not re.search(r"[0-9\\]|^\(?[A-E]\)?$", ans) or len(re.findall(r"[A-Za-z]{3,}", ans)) > 1:
        return None
    return bold.start(), ans


def _is_prose(ans: str) -> bool:
    return not re.search(r"[\d\\$^=]", ans) and (len(ans.split()) > 1 or ans.lower() in _REMARKS)


_REMARKS = frozenset("correct right wrong positive negative valid invalid true false yes no".split())


def _after_last_is(ans: str) -> str:
    """ "The largest $n$ is 34" → "34": an anchor followed by a sentence names the answer after its verb;
    "2 + 3 = 5" → "5". Solutions joined by "or"/"and"/"," ("x = 1 or x = 2") are a solution set, kept whole."""
    rest = re.split(r"\s(?:is|are|equals|was)\s", ans)[-1].strip()
    parts = re.split(r"\s=\s", rest)
    if len(parts) > 1 and not re.search(r"\b(?:or|and)\b|[,;]", rest):
        return parts[-1].strip()
    return rest


def states_answer(text: str) -> bool:
    """True when the text states its final answer explicitly (a box, an answer phrase, ``####``), rather
    than leaving it to the fallbacks' guess from the last number or formula."""
    return bool(_strong_candidates(mask_code(text[-MAX_INPUT_CHARS:])[0]))


def extract_answer(response: str, *, truncated: bool = False) -> str | None:
    """The final answer stated in a response, or None when it states none.

    Code blocks, tool calls and tool output are not searched (`spans.mask_code`): a value there is a final
    answer only when the response states it afterwards. A `truncated` response (cut off at the token limit)
    is graded on the answer it committed to (a box, an answer phrase), never on the fallbacks' guess from its
    last number or formula: a reply that loops until it is cut off states no answer."""
    text = response[-MAX_INPUT_CHARS:]
    if len(response) > MAX_INPUT_CHARS and window_inside_a_box(response, MAX_INPUT_CHARS):
        return None  # the final box is longer than the window: never grade a fragment of it
    text, code_end = mask_code(text)
    candidates = _strong_candidates(text)
    if candidates:
        last = max(candidates, key=lambda c: c[0])
        final_bold = _final_bold(text, last[0] + 1)
        answer = (final_bold or last)[1].strip()
        if truncated and _cut_short(text, final_bold or last, answer):
            return None
        return answer if answer and len(answer) <= MAX_ANSWER_CHARS else None
    if truncated:
        return None
    return _fallback(text[code_end:])


def _cut_short(text: str, candidate: tuple[int, str], answer: str) -> bool:
    """A statement the cut-off ended ("the answer is \\boxed{1", "the answer is 12" as the last words): it
    may have gone on ("12" of "125"), so it commits to nothing. A closed box is committed."""
    closed_box = text.startswith(("\\boxed", "\\fbox"), candidate[0])
    return not closed_box and text.rstrip().rstrip("$").rstrip().endswith(answer)


def _fallback(text: str) -> str | None:
    """A response without a stated answer (`text`: what follows its last code block): bold, a bare answer,
    then whichever comes last of the last LaTeX span and the last number."""
    bold = _last_match(_BOLD, text)
    if bold is not None and re.search(r"\d", bold.group("ans")):
        return _clip_statement(bold.group("ans"))[:MAX_ANSWER_CHARS]
    stripped = text.strip()
    if (
        "\n" not in stripped
        and len(stripped) <= 200
        and "$" not in stripped
        and ("\\" in stripped or not re.search(r"[A-Za-z]{3,}", stripped))
    ):
        # the response is a bare answer: "\frac{10}{9}", "(1, 2)"
        return _last_equation_side(stripped, computation=True) or None
    # asides ("(x = -3 is rejected)") left out
    text = _ASIDE.sub("", text)
    span = _last_match(_LATEX_SPAN, text)
    number = _last_match(_NUMBER, text, span.end() + 1 if span else 0)
    if number is not None:
        sentence = _sentence_around(text, number.start(), number.end())
        if hedge_in(sentence):  # "It is not 18.": the number is what the sentence denies
            return sentence
        # "a return of 23%": the percent sign belongs to the number
        return number.group() + ("%" if text[number.end() : number.end() + 1] in ("%", "％") else "")
    if span is not None:
        return _last_equation_side(_span_content(span), computation=True)[:MAX_ANSWER_CHARS] or None
    return None


_CLAUSE_END = re.compile(r"(?<!\d)[.!?](?!\d)|[。！？；;\n]")


def _sentence_around(text: str, start: int, end: int) -> str:
    """The clause a number stands in: up to the sentence's end or another number on either side (up to 100
    characters before it and 60 after), so "not 10, it is 1,000.99" does not deny 1,000.99."""
    before = re.split(r"\d", _CLAUSE_END.split(text[max(0, start - 100) : start])[-1])[-1]
    after = re.split(r"\d", _CLAUSE_END.split(text[end : end + 60])[0])[0]
    return (before + text[start:end] + after).strip()


def _last_equation_side(latex: str, *, computation: bool = False) -> str:
    """For a chain ``x = 5+5+1 = 11`` the claim is ``x = 11``; a single equation is kept whole."""
    parts = split_top_level(latex, _EQUALS)
    if len(parts) < 2 or not parts[-1] or re.search(r"[,;]|\\text|\\quad|\b(?:and|or)\b", latex):
        return latex.strip()
    numeric_lhs = not re.search(r"[A-Za-z]", re.sub(r"\\[a-zA-Z]+", "", parts[0]))
    if computation and numeric_lhs or len(parts) > 2 and re.search(r"\d", parts[0]):
        return parts[-1]  # "\frac12 \$ = \frac{10}{9}" or "1 = y = 0": a computation ending in its value
    if len(parts) > 2:
        return f"{parts[0]} = {parts[-1]}"
    return latex.strip()


_SINGLE_SPAN = re.compile(r"^\s*(?:\$\$(.+)\$\$|\$(.+)\$|\\\[(.+)\\\]|\\\((.+)\\\))\s*[.。]?\s*$", re.DOTALL)


def extract_reference(reference: str) -> str:
    """The answer inside a benchmark's reference field.

    Curated answers (``$9$``, ``\\frac{1}{2}``, ``10 \\text{ cm}``) are kept whole; worked solutions
    (MATH solutions, MathUserEval references) are reduced like a response, boxes joined when a
    solution boxes several answers ("the answers are \\boxed{-2} and \\boxed{1}").
    """
    text = reference.strip()[-MAX_INPUT_CHARS:]
    single = _SINGLE_SPAN.match(text)
    if single and "$" not in _span_content(single):
        text = _span_content(single)
    box = last_box_group(text)
    if box is not None:
        return box[1]
    if _ANCHOR.search(text) or _MINERVA.search(text) or _HASHES.search(text):
        return extract_answer(text) or text
    if len(text.split()) > 12:
        return _unstated_reference(text)
    return _last_equation_side(text)


_STATED_VALUE = re.compile(r"(?:=|\bis\b|\bequals\b|为|是)\s*(-?\d[\d,]*(?:\.\d+)?(?:/\d+)?)\s*[.。!！]*\s*$")


def _unstated_reference(text: str) -> str:
    """A long reference that states no answer in words: prose naming one number ("the determinant is -1
    times the first") gives that number; a worked solution whose last clause states one value ("So the area
    is 9.", "\\left|...\\right|=6") gives the value; anything else (a derivation, a matrix, a long list, a
    piecewise function, "So x=-119 and y=50.") is the answer as written. A response's last-number guess is
    never used here: the last number of ``c_{1}[...] e^{-t}`` is no answer."""
    words = _WORDS.findall(re.sub(r"\\[a-zA-Z]+", " ", text))
    if len(words) <= 2:
        return text
    numbers = _NUMBER.findall(text)
    if len(numbers) == 1 and not re.search(r"\\[a-zA-Z]", text):
        return str(numbers[0])
    clause = [c for c in _CLAUSE_END.split(text) if c.strip()][-1:]
    stated = _STATED_VALUE.search(clause[0]) if clause else None
    if stated is not None and len(re.findall(r"=|\bis\b|\bequals\b|为|是", clause[0])) == 1:
        return stated.group(1)
    return text
