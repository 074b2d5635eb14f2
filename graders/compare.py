"""Equivalence of two extracted answers: cheap rules first, symbolic comparison only when needed.

`compare` walks the structure of an answer — lists, sets, tuples, intervals and unions, ``\\pm``,
named equations (``x = 3``) — down to single values, and settles each value pair by normalised text,
exact rationals or a text rule. A value pair that needs algebra (``\\frac{\\sqrt3}{2}`` vs
``\\sqrt{0.75}``) is handed to the `symbolic` callback; in the parent process there is none, and
`NeedsSymbolic` sends the whole pair to a sandboxed worker (see `sandbox.py`), which runs this same
function with sympy behind the callback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from .normalize import Number, choice_letter, normalize, states_empty_set, to_number


@dataclass(frozen=True, slots=True)
class GradingPolicy:
    """Conventions that graders disagree on (docs/design-notes.md §4), as explicit options.

    - ``list_order``: ``"unordered"`` (default) treats a bare list of answers ``2, -3`` as the set of
      solutions, as Math-Verify does; ``"ordered"`` compares position by position, as hendrycks does.
      Brackets always decide when present: ``(a, b)`` and ``[a, b]`` are ordered, ``\\{a, b\\}`` is not.
    - ``percent``: a ``%`` on one side only. ``"either"`` (default) accepts ``25%`` = ``25`` = ``0.25``
      (Math-Verify's reading); ``"strip"`` accepts only ``25``; ``"value"`` only ``0.25``. No side is ever
      multiplied by 100 when neither has a percent sign (Qwen2.5-Math's ``0.5`` = ``50`` is not followed).
    - ``units``: when both sides name a known unit (`normalize.UNITS`), different dimensions never match
      (``12 kg`` ≠ ``12 s``); ``"convert"`` (default) compares two units of one dimension exactly after
      conversion (``500 cm`` = ``5 m``, ``2 weeks`` = ``14 days``), ``"strict"`` requires the same unit.
      A unit on one side only (or a unit word we do not know) is tolerated: the reference is often a bare
      number. Degrees and radians never convert (π is not rational), so ``30°`` ≠ ``30 rad``.
    - ``approximation``: ``"rounded"`` (default) accepts a decimal for an exact value that it correctly
      rounds at its own number of decimals (``0.33`` for ``\\frac13``, ``2.6667`` for ``\\frac83``) when it
      shows at least ``min_significant_digits`` significant digits. Two decimals are compared exactly
      (``2.0000001`` ≠ ``2.0000003``), and integers are never approximations. ``"exact"`` accepts no rounding.
    """

    list_order: Literal["unordered", "ordered"] = "unordered"
    percent: Literal["either", "strip", "value"] = "either"
    approximation: Literal["rounded", "exact"] = "rounded"
    min_significant_digits: int = 2
    units: Literal["convert", "strict"] = "convert"


Outcome = tuple[bool, str]
SymbolicCompare = Callable[[str, str, GradingPolicy], Outcome]


class NeedsSymbolic(Exception):
    """The cheap rules cannot decide; the pair needs the sandboxed symbolic stage."""


_OPEN = "([{"
_CLOSE = ")]}"
_NAME_LHS = re.compile(r"^(?:[A-Za-z|]|\\[a-zA-Z]+|_\{?[\w,]+\}?|\^\{?'\}?|'|\([A-Za-z, ]*\)|\{|\}|:|\s)+$")
_FUNCTIONS = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc|log|ln|exp|sqrt|arc\w+|sum|int|lim)\b")
_SEPARATORS = re.compile(r"\s*(?:,|;|\band\b|\bor\b|\\text\{\s*(?:and|or)\s*\}|和|或)\s*")
_SPACES = re.compile(r"(?<!\d) | (?!\d)")  # TeX ignores spaces, except between two digits ("1 1/2")
_WORDS = re.compile(r"^[A-Za-z\u4e00-\u9fff][A-Za-z\u4e00-\u9fff' -]*$")


def same_text(a: str, b: str) -> bool:
    """Two normalised answers written alike, spaces aside (TeX ignores them, except between two digits)."""
    return a == b or _SPACES.sub("", a) == _SPACES.sub("", b)


def split_top_level(s: str, pattern: re.Pattern[str]) -> list[str]:
    """Split `s` where `pattern` matches outside brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        elif depth == 0 and (m := pattern.match(s, i)) is not None and m.end() > i:
            parts.append(s[start:i])
            start = i = m.end()
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _wrapped(s: str) -> tuple[str, str, str] | None:
    """(open, inner, close) when one bracket pair encloses the whole of `s`."""
    if len(s) < 2:
        return None
    if s.startswith("\\{") and s.endswith("\\}"):
        opener, closer, inner = "{", "}", s[2:-2]
    elif s[0] in "([" and s[-1] in ")]":
        opener, closer, inner = s[0], s[-1], s[1:-1]
    elif s[0] == "{" and s[-1] == "}":
        opener, closer, inner = "", "", s[1:-1]  # a TeX group, not a set: "{1,3}" is the list 1, 3
    else:
        return None
    depth = 0
    for ch in inner:
        depth += 1 if ch in _OPEN else -1 if ch in _CLOSE else 0
        if depth < 0:
            return None
    return (opener, inner, closer) if depth == 0 else None


@dataclass(frozen=True, slots=True)
class Collection:
    kind: Literal["set", "ordered", "interval-or-tuple", "list"]
    brackets: str
    items: list[str]


def as_collection(s: str) -> Collection | None:
    """A multi-part answer: a union of intervals, a bracketed tuple/interval/set, a bare list, or ``a \\pm b``."""
    union = split_top_level(s, re.compile(r"\\cup"))
    if len(union) > 1:
        return Collection("set", "cup", union)
    wrapped = _wrapped(s)
    if wrapped is not None:
        opener, inner, closer = wrapped
        items = split_top_level(inner, re.compile(r"\s*[,;]\s*"))
        if opener == "{" and closer == "}":
            return Collection("set", "{}", items)
        if opener and len(items) == 2:
            return Collection("interval-or-tuple", opener + closer, items)
        if opener and len(items) > 2:
            return Collection("ordered", opener + closer, items)
        if not opener:
            s = inner
    groups = [g for g in split_top_level(s, re.compile(r"\s*;\s*")) if g]
    if len(groups) > 1 and all(len(split_top_level(g, _SEPARATORS)) > 1 for g in groups):
        # "p=5,q=2; p=7,q=2": solutions separated by ";", each a tuple
        return Collection("list", "", [f"({', '.join(split_top_level(g, _SEPARATORS))})" for g in groups])
    items = [i for i in split_top_level(s, _SEPARATORS) if i]
    if len(items) > 1:
        return Collection("list", "", items)
    pm = split_top_level(s, re.compile(r"\\pm|\\mp|±"))
    if len(pm) == 2:
        base, delta = pm
        if not base:
            return Collection("list", "", [delta, f"-{delta}" if not delta.startswith("-") else delta[1:]])
        return Collection("list", "", [f"{base}+{delta}", f"{base}-({delta})"])
    return None


def _name_equation(s: str) -> tuple[str, str] | None:
    """``x = 3`` → ("x", "3") when the left side only names the answer (x, f(x), |AB|, a_{37}, A:B)."""
    sides = split_top_level(s, re.compile(r"=(?!=)"))
    if len(sides) != 2 or not sides[0] or not sides[1] or s.count("\\leq") or s.count("\\geq"):
        return None
    lhs = sides[0]
    if lhs.startswith("\\frac"):  # \frac{NO}{BO} = ... names a ratio
        lhs = lhs[5:]
    if _NAME_LHS.match(lhs) and not _FUNCTIONS.search(lhs):
        return sides[0], sides[1]
    return None


_FUNCTION_VALUE = re.compile(r"^[A-Za-z]\([A-Za-z]\)$")


def _same_name(a: str, b: str) -> bool:
    """Do two left-hand sides name the same unknown? Equal names do, and so do ``y`` and a function value
    such as ``f(x)`` (y = f(x) is the usual convention for a function's rule)."""
    a, b = _SPACES.sub("", a), _SPACES.sub("", b)
    if a == b:
        return True
    return {a, b} & {"y"} != set() and any(_FUNCTION_VALUE.match(n) for n in (a, b))


def _significant_digits(n: Number) -> int:
    assert n.decimals is not None
    digits = str(abs(n.value.numerator * 10**n.decimals // n.value.denominator))
    return len(digits.lstrip("0"))


def _same_quantity(ref: Number, pred: Number, policy: GradingPolicy) -> bool | None:
    """Units on both sides: False when they cannot be the same quantity, True when equal after an exact
    conversion, None when units do not decide (one side has none, or both the same unit)."""
    a, b = ref.unit, pred.unit
    if a is None or b is None or a.name == b.name:
        return None
    if a.dimension != b.dimension or policy.units == "strict" or not a.factor or not b.factor:
        return False
    return ref.value * a.factor == pred.value * b.factor


def numbers_equal(ref: Number, pred: Number, policy: GradingPolicy) -> bool:
    """Units, exact comparison, percent policy, and the one rounding rule (see `GradingPolicy`)."""
    by_unit = _same_quantity(ref, pred, policy)
    if by_unit is not None:
        return by_unit
    if ref.percent == pred.percent:
        pairs = [(ref.value, pred.value)]
    else:
        pct, other = (ref, pred) if ref.percent else (pred, ref)
        options = {"either": [pct.value, pct.value / 100], "strip": [pct.value], "value": [pct.value / 100]}
        pairs = [(v, other.value) for v in options[policy.percent]]
    for a, b in pairs:
        if a == b:
            return True
        if policy.approximation == "rounded" and (ref.decimals is None) != (pred.decimals is None):
            approx = ref if ref.decimals is not None else pred
            exact = b if approx is ref else a
            shown = a if approx is ref else b
            if within_rounding(exact, shown, approx, policy):
                return True
    return False


def within_rounding(exact: Fraction, shown: Fraction, approx: Number, policy: GradingPolicy) -> bool:
    """Does the decimal `shown` (written with `approx.decimals` decimals) round `exact` correctly?"""
    if approx.decimals is None or approx.decimals < 1 or _significant_digits(approx) < policy.min_significant_digits:
        return False
    return abs(exact - shown) <= Fraction(1, 2 * 10**approx.decimals)


def _text_equal(ref: str, pred: str) -> bool | None:
    if _WORDS.match(ref) and _WORDS.match(pred) and (len(ref) > 1 or len(pred) > 1):
        return ref.casefold().replace(" ", "") == pred.casefold().replace(" ", "")
    return None


def _match_items(
    refs: list[str], preds: list[str], ordered: bool, policy: GradingPolicy, sym: SymbolicCompare | None
) -> bool:
    if ordered:
        if len(refs) != len(preds):
            return False
        return all(compare(r, p, policy, sym)[0] for r, p in zip(refs, preds, strict=True))
    refs, unused = _dedupe(refs), _dedupe(preds)
    if len(refs) != len(unused):
        return False
    # the same items written alike, in another order, pair off by their text first: a long solution list
    # costs one pass, not a comparison of every item with every other
    by_text = {_SPACES.sub("", normalize(p)): p for p in unused}
    alike = {_SPACES.sub("", normalize(r)) for r in refs} & by_text.keys()
    refs = [r for r in refs if _SPACES.sub("", normalize(r)) not in alike]
    unused = [p for key, p in by_text.items() if key not in alike]
    for r in refs:
        hit = next((i for i, p in enumerate(unused) if compare(r, p, policy, sym)[0]), None)
        if hit is None:
            return False
        unused.pop(hit)
    return True


def _dedupe(items: list[str]) -> list[str]:
    """A solution set lists each solution once: ``(3,17,3,7)`` written twice is one element."""
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(_SPACES.sub("", normalize(item)), item)
    return list(seen.values())


def _named_items(col: Collection) -> list[tuple[str, str]] | None:
    """(name, value) for every item of a bare list of named equations (``x = 1, y = 2``), else None."""
    if col.kind != "list":
        return None
    pairs = [_name_equation(item) for item in col.items]
    if any(p is None for p in pairs):
        return None
    return [(_SPACES.sub("", name), value) for name, value in (p for p in pairs if p is not None)]


def _assignments(named: list[tuple[str, str]] | None) -> dict[str, str] | None:
    """``x = 1, y = 2`` → {"x": "1", "y": "2"} when every item names a different unknown."""
    if named is None:
        return None
    names = dict(named)
    return names if len(names) == len(named) else None


def _values(col: Collection, named: list[tuple[str, str]] | None) -> Collection:
    """``x = 1, x = 2`` (one unknown, several solutions) → the values 1, 2."""
    if named is not None and len({name for name, _ in named}) == 1:
        return Collection("list", "", [value for _, value in named])
    return col


def _compare_collections(
    ref: Collection, pred: Collection, policy: GradingPolicy, sym: SymbolicCompare | None
) -> Outcome:
    ref_named, pred_named = _named_items(ref), _named_items(pred)
    ref_names, pred_names = _assignments(ref_named), _assignments(pred_named)
    if ref_names and pred_names and ref_names.keys() == pred_names.keys():
        same = all(compare(ref_names[k], pred_names[k], policy, sym)[0] for k in ref_names)
        return same, "equation rule"
    if ref_names or pred_names:
        # named unknowns against bare values: "x = 1, y = 2" is the tuple (1, 2)
        ref_items = list(ref_names.values()) if ref_names else ref.items
        pred_items = list(pred_names.values()) if pred_names else pred.items
        return _match_items(ref_items, pred_items, True, policy, sym), "equation rule"
    ref, pred = _values(ref, ref_named), _values(pred, pred_named)
    if "interval-or-tuple" in (ref.kind, pred.kind) or (ref.kind == "ordered" and pred.kind == "ordered"):
        # Intervals and tuples: the brackets are part of the answer, the order too.
        if ref.brackets and pred.brackets and ref.brackets != pred.brackets:
            return False, "set/interval/tuple rule"
        return _match_items(ref.items, pred.items, True, policy, sym), "set/interval/tuple rule"
    ordered = policy.list_order == "ordered" and ref.kind == pred.kind == "list"
    if "ordered" in (ref.kind, pred.kind):
        ordered = True
    return _match_items(ref.items, pred.items, ordered, policy, sym), "set/interval/tuple rule"


def compare(ref: str, pred: str, policy: GradingPolicy, symbolic: SymbolicCompare | None = None) -> Outcome:
    """(equivalent, reason) for two extracted answers; raises `NeedsSymbolic` when `symbolic` is None
    and only algebra can decide."""
    r, p = normalize(ref), normalize(pred)
    if same_text(r, p):
        return True, "string match"
    if not p:
        return False, "no answer found"
    if r == "\\emptyset" or p == "\\emptyset":
        return states_empty_set(r) and states_empty_set(p), "set/interval/tuple rule"
    rn, pn = to_number(r), to_number(p)
    if rn is not None and pn is not None:
        return numbers_equal(rn, pn, policy), "numeric"
    if rn is not None and rn.decimals is not None and (pn := to_number(p, decimal_comma=True)) is not None:
        return numbers_equal(rn, pn, policy), "numeric"  # "2,74" written with a decimal comma
    if pn is not None and pn.decimals is not None and (rn := to_number(r, decimal_comma=True)) is not None:
        return numbers_equal(rn, pn, policy), "numeric"
    rc, pc = choice_letter(r), choice_letter(p)
    if rc and pc:
        return rc == pc, "choice letter"
    r_eq, p_eq = _name_equation(r), _name_equation(p)
    if r_eq and p_eq:
        # a named answer on both sides must name the same thing: "a = 7" is not "b = 7"
        if not _same_name(r_eq[0], p_eq[0]):
            return False, "equation rule"
        return compare(r_eq[1], p_eq[1], policy, symbolic)[0], "equation rule"
    if r_eq and not p_eq and "=" not in p:
        return compare(r_eq[1], p, policy, symbolic)[0], "equation rule"
    if p_eq and not r_eq and "=" not in r:
        return compare(r, p_eq[1], policy, symbolic)[0], "equation rule"
    r_col, p_col = as_collection(r), as_collection(p)
    if r_col and p_col:
        return _compare_collections(r_col, p_col, policy, symbolic)
    if r_col or p_col:  # several values against one (the other side is not a collection)
        col, other = (r_col, p) if r_col else (p_col, r)
        assert col is not None
        if col.kind == "list" and len(col.items) > 1 and "=" not in other:
            # The same value boxed in two forms ("15\frac{39}{40}, \frac{639}{40}") still states one answer.
            same = col is p_col and all(compare(r, item, policy, symbolic)[0] for item in col.items)
            return same, "set/interval/tuple rule"
    text = _text_equal(r, p)
    if text is not None:
        return text, "text"
    if symbolic is None:
        raise NeedsSymbolic
    return symbolic(r, p, policy)
