"""Canonical text of an answer, and exact numbers read from it without evaluating anything.

The normaliser turns the many ways of writing one answer into one string (TeX spacing, ``\\dfrac``,
``\\text{}`` wrappers, full-width characters, units, money signs) so that the cheap comparisons —
string equality and exact rationals — settle most pairs before any symbolic work. It is pure string
processing over bounded input.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

MAX_NUMBER_DIGITS = 400
"""Longer digit strings are not read as numbers (bounds Fraction work and Python's int-from-str limit)."""

_DOUBLE_ESCAPED = re.compile(r"\\\\(?=[a-zA-Z])")
_SINGLE_COMMAND = re.compile(r"(?<!\\)\\[a-zA-Z]")
_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textnormal|textrm|mathrm|mathbf|mathit|mbox|operatorname|boldsymbol)\s*\{([^{}]*)\}"
)
_SPACING = re.compile(r"(?<!\\)\\[,;: ]|\\q?quad|~|\\displaystyle|\\limits")
_MATRIX_ENV = re.compile(r"\\begin\{(?:[bB]?matrix|smallmatrix|array)\}(?:\{[lcr| ]*\})?")
_MATRIX_END = re.compile(r"\\end\{(?:[bB]?matrix|smallmatrix|array)\}")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_HALF = re.compile(r"\\frac\s*(\d)(?=\s*\{)|\\frac\s*(\{[^{}]*\})\s*(\d)")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d+|[a-zA-Z])")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree|\s*degrees?\b")
_PERCENT = re.compile(r"\\?%|\s*(?:percent(?:age)?|pct)\b")
_MONEY = re.compile(r"\\\$|\$|€|¥|£|\\euro|\s*(?:dollars?|cents?|yuan|元)\b")
_THOUSANDS = re.compile(r"^-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$|^-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^-?(?:0|\d{4,}|\d),\d+$")
_MAGNITUDES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_MAGNITUDE_TAIL = re.compile(r"^(.*\d)\s*(" + "|".join(_MAGNITUDES) + r")s?$")
_MATH_WORDS = frozenset(
    "pi sqrt sin cos tan cot sec csc log ln exp lim sum int frac cdot times infty arcsin arccos arctan "
    "sinh cosh tanh mod pmod gcd lcm det max min deg".split()
)
_EXPONENT = r"\s*\^\s*\{?\s*-?\d\s*\}?"
_UNIT_FACTORS = (
    rf"(?:{_EXPONENT})?(?:\s+[a-zA-Z]{{2,}}(?:{_EXPONENT})?|\s*[a-zA-Z]{_EXPONENT}"
    rf"|\s*(?:/|\\cdot|\*)\s*[a-zA-Z]+(?:{_EXPONENT})?)*"
)
"""After a unit's first word: its power and more factors, "kcal m^{-2} yr^{-1}", "km/h", "cm^2"."""
_UNIT_TAIL = re.compile(
    rf"^(?P<num>-?[\d.,/]*\d)\s*(?P<unit>(?:[a-zA-Z\u4e00-\u9fff]{{2,}}|[\u4e00-\u9fff]){_UNIT_FACTORS})$"
)
_UNIT_AFTER_MATH = re.compile(rf"^(?P<num>.*?\d\}}?)\s*(?P<unit>[a-zA-Z]{{2,}}{_UNIT_FACTORS})$")
_NOT_UNIT_WORDS = frozenset(
    "or nor is are was were not no wrong incorrect than maybe perhaps possibly probably".split()
)
"""Words that qualify or negate a value ("18 or fewer", "18 is wrong"): the tail is no unit, the value stays
unread (issue 34 §2)."""
_SHORT_UNIT_TAIL = re.compile(r"^(?P<num>-?[\d.,/]*\d)\s+(?P<unit>[a-zA-Z](?:\s*\^\s*\{?[23]\}?)?)$")
"""One-letter units after a space ("5 m", "3 s", "2 g", "4 L"), only when `UNITS` knows them: "5t" stays
an expression."""
_MEMBERSHIP = re.compile(r"^[A-Za-z]\s*(?:\\in|∈)\s*(?=\S)")
_EMPTY_SET = re.compile(r"^(?:\\varnothing|\\emptyset|∅|\\\{\s*\\\}|\{\s*\}|\\O)$")
_NO_SOLUTION = re.compile(
    r"^(?:there\s+(?:is|are)\s+)?no\s+(?:real\s+|such\s+)?(?:solutions?|roots?|values?|numbers?)(?:\s+exists?)?$"
    r"|^(?:none|empty\s+set|the\s+empty\s+set|无解|无实数解|不存在|空集)$",
    re.IGNORECASE,
)


def states_empty_set(answer: str) -> bool:
    """The empty set in any spelling, or "no solution" in words (for a reference that is the empty set)."""
    s = normalize(answer)
    return s == "\\emptyset" or bool(_NO_SOLUTION.match(s))


_MIXED_NUMBER = re.compile(r"^(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$|^(-?)(\d+)\s+(\d+)/(\d+)$")
_PLAIN = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_SCIENTIFIC = re.compile(
    r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:[eE]|\\times\s*10\s*\^|\*\s*10\s*\*\*|\\cdot\s*10\s*\^)\s*\{?([+-]?\d{1,3})\}?$"
)
_POWER_OF_TEN = re.compile(r"^10\^\{?([+-]?\d{1,3})\}?$")
_FRACTION = re.compile(r"^([+-]?)\\frac\{([+-]?[\d.]+)\}\{([+-]?[\d.]+)\}$|^([+-]?[\d.]+)\s*/\s*([+-]?[\d.]+)$")


def _unescape(s: str) -> str:
    """JSON-in-JSON answers arrive as ``\\\\frac``: halve backslashes when no single-escaped command exists."""
    if _DOUBLE_ESCAPED.search(s) and not _SINGLE_COMMAND.search(_DOUBLE_ESCAPED.sub("", s)):
        return s.replace("\\\\", "\\")
    return s


_ORDINAL = re.compile(r"(\d)\s*\^\s*\{\s*(?:st|nd|rd|th)\s*\}")
_ONE_CHAR_SCRIPT = re.compile(r"([_^])\{\s*([A-Za-z0-9])\s*\}")
_ROOT_WORD = re.compile(r"根号下?\s*\(?(\d+(?:\.\d+)?|[a-z])\)?")


def normalize(answer: str) -> str:
    """Canonical spelling of one answer (still TeX: ``\\frac{1}{2}`` stays a fraction, not 0.5)."""
    s = unicodedata.normalize("NFKC", answer[:5000]).strip()
    s = s.replace("。", ".").replace("，", ",").replace("、", ",").replace("；", ";").replace("−", "-")
    s = _unescape(s)
    s = re.sub(r"^\$+|\$+$", "", s.strip())
    s = s.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    s = re.sub(r"\\left\s*|\\right\s*|\\big+l?r?\s*|\\Big+l?r?\s*", "", s)
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    s = re.sub(r",\\!\s*", ",", s).replace("\\!", "")
    s = re.sub(r"\s*\{\s*,\s*\}\s*", ",", s)
    s = _SPACING.sub(" ", s)
    s = _MATRIX_END.sub(r"\\end{pmatrix}", _MATRIX_ENV.sub(r"\\begin{pmatrix}", s))
    s = re.sub(r"^[(\[]\s*(\\begin\{pmatrix\}.*\\end\{pmatrix\})\s*[)\]]$", r"\1", s, flags=re.DOTALL)
    for _ in range(3):  # nested wrappers such as \text{\textbf{5}}
        s = _WRAPPERS.sub(r"\1", s)
    s = re.sub(r"\\[dtc]frac", r"\\frac", s)
    s = _ORDINAL.sub(r"\1", s)  # 12^{th} is 12
    s = _ONE_CHAR_SCRIPT.sub(r"\1\2", s)  # X_{d} is X_d, x^{2} is x^2
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF.sub(lambda m: f"\\frac{{{m.group(1)}}}" if m.group(1) else f"\\frac{m.group(2)}{{{m.group(3)}}}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    s = s.replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ").replace("\\lt", "<").replace("\\gt", ">")
    s = s.replace(">=", "\\geq ").replace("<=", "\\leq ").replace("!=", "\\neq ").replace("≤", "\\leq ")
    s = s.replace("≥", "\\geq ").replace("≠", "\\neq ").replace("×", "\\times ").replace("π", "\\pi ")
    s = s.replace("√", "\\sqrt").replace("∞", "\\infty ").replace("∪", "\\cup ")
    # Chinese plain-text radicals and products: 根号3 / 根号下3 = \sqrt{3}, 2·3 = 2\cdot 3
    s = _ROOT_WORD.sub(lambda m: f"\\sqrt{{{m.group(1)}}}", s).replace("·", "\\cdot ").replace("⋅", "\\cdot ")
    s = " ".join(s.split()).strip().rstrip(".,;: ").strip()
    s = re.sub(r"^\((\s*[A-Ea-e])\s*\)$", r"\1", s)  # "(C)" as a choice
    s = _MEMBERSHIP.sub("", s)  # "x \in \{1, 2\}" is the set itself
    if _EMPTY_SET.match(s):
        return "\\emptyset"
    return s


@dataclass(frozen=True, slots=True)
class Number:
    """An exact value read from text, with what the text said about it."""

    value: Fraction
    decimals: int | None  # digits after the point when written as a decimal (None: exact form)
    percent: bool = False
    degrees: bool = False
    unit: Unit | None = None
    """A unit the text named and `UNITS` knows; an unknown unit word ("apples") is dropped and leaves None."""


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of measure: its dimension and its size in the dimension's base unit (exact)."""

    name: str
    dimension: str
    factor: Fraction


def _units() -> dict[str, Unit]:
    table: dict[str, Unit] = {}
    spec = {
        "length": {"mm millimeter millimetre 毫米": "1/1000", "cm centimeter centimetre 厘米": "1/100",
                   "dm decimeter 分米": "1/10", "m meter metre 米": "1", "km kilometer kilometre 千米 公里": "1000",
                   "in inch": "127/5000", "ft foot feet": "381/1250", "yd yard": "1143/1250", "mi mile": "201168/125"},
        "mass": {"mg milligram 毫克": "1/1000000", "g gram gramme 克": "1/1000", "kg kilogram 千克 公斤": "1",
                 "tonne 吨": "1000", "lb pound": "45359237/100000000", "oz ounce": "45359237/1600000000"},
        "time": {"s sec second 秒": "1", "min minute 分钟": "60", "h hr hour 小时": "3600", "day 天": "86400",
                 "week 周 星期": "604800", "year yr 年": "31536000"},
        "volume": {"ml milliliter millilitre 毫升": "1/1000", "l liter litre 升": "1"},
        "angle": {"degree": "1", "rad radian 弧度": "0"},  # 0: radians never convert exactly to degrees
        "area": {"mm^2": "1/1000000", "cm^2": "1/10000", "m^2": "1", "km^2": "1000000", "hectare ha": "10000",
                 "acre": "316160658/78125"},
    }  # fmt: skip
    for dimension, rows in spec.items():
        for names, factor in rows.items():
            words = names.split()
            for word in words:
                table[word] = Unit(words[0], dimension, Fraction(factor))
    return table


UNITS = _units()
_SQUARE = re.compile(r"^(?:square|sq\.?)\s+(\w+)$|^(\w+)\s*\^\s*\{?2\}?$|^平方(\w+)$")


def unit_named(word: str) -> Unit | None:
    """The unit a trailing word names ("cm", "kilograms", "cm^2", "square meters", "小时"), if known."""
    text = word.strip().lower().replace("²", "^2")
    square = _SQUARE.match(text)
    if square:
        base = unit_named(next(g for g in square.groups() if g))
        return UNITS.get(f"{base.name}^2") if base is not None and base.dimension == "length" else None
    if text in UNITS:
        return UNITS[text]
    for plural in ("es", "s"):  # "inches", "hours"
        if text.endswith(plural) and text[: -len(plural)] in UNITS and len(text) > 3:
            return UNITS[text[: -len(plural)]]
    return None


def _strip_units(s: str) -> tuple[str, int, Unit | None]:
    """Drop a trailing unit word ("10 cm^2", "5 apples"); returns the rest, a magnitude multiplier and the
    unit when it is a known one.

    A unit that changes the magnitude ("3 million") is applied, never dropped into a match.
    """
    mag = _MAGNITUDE_TAIL.match(s)
    if mag:
        return mag.group(1).strip(), _MAGNITUDES[mag.group(2)], None
    unit = _UNIT_TAIL.match(s) or _UNIT_AFTER_MATH.match(s) or _SHORT_UNIT_TAIL.match(s)
    if unit is None:
        return s, 1, None
    if _NOT_UNIT_WORDS & {w.lower() for w in re.findall(r"[A-Za-z]+", unit.group("unit"))}:
        return s, 1, None
    named = unit_named(s[unit.start("unit") :])
    # "5 min" and "3 sec" are units although min and sec are also functions; "5 x" is not a unit
    if named is None and (
        unit.re is _SHORT_UNIT_TAIL or any(w.lower() in _MATH_WORDS for w in unit.group("unit").split())
    ):
        return s, 1, None
    return unit.group("num").strip(), 1, named


def strip_decorations(s: str) -> tuple[str, bool, bool, int, Unit | None]:
    """Remove %, degrees, money and unit words around a value: (rest, percent, degrees, magnitude, unit)."""
    percent = bool(_PERCENT.search(s))
    s = _PERCENT.sub("", s)
    degrees = bool(_DEGREES.search(s))
    s = _DEGREES.sub("", s)
    s = _MONEY.sub("", s).strip()
    s, magnitude, unit = _strip_units(s)
    return s.strip(), percent, degrees, magnitude, unit


def _decimal(text: str) -> tuple[Fraction, int | None] | None:
    text = text.strip()
    if len(text) > MAX_NUMBER_DIGITS:
        return None
    if _PLAIN.match(text):
        decimals = len(text.split(".")[1]) if "." in text else None
        return Fraction(text), decimals
    power = _POWER_OF_TEN.match(text)
    if power:  # "10^{-8}": exact, as "1e-8" is the same value
        return Fraction(10) ** int(power.group(1)), None
    sci = _SCIENTIFIC.match(text)
    if sci:
        mantissa, exp = sci.groups()
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return Fraction(mantissa) * Fraction(10) ** int(exp), max(digits - int(exp), 0)
    return None


def to_number(answer: str, *, decimal_comma: bool = False) -> Number | None:
    """An exact rational for integers, decimals, ``a/b``, ``\\frac{a}{b}``, mixed numbers and scientific
    notation, with %, degrees, money and units stripped; None for anything else."""
    s, percent, degrees, magnitude, unit = strip_decorations(answer)
    if _THOUSANDS.match(s):
        s = s.replace(",", "").replace(" ", "")
    elif decimal_comma and _DECIMAL_COMMA.match(s):
        s = s.replace(",", ".")
    spaced, s = s, s.replace(" ", "")  # "1 1/2" is a mixed number, "11/2" is not
    if s.startswith("+"):
        s = s[1:]
    value: Fraction | None = None
    decimals: int | None = None
    parsed = _decimal(s)
    if parsed is not None:
        value, decimals = parsed
    elif (mixed := _MIXED_NUMBER.match(spaced)) is not None:
        g = [x for x in mixed.groups() if x is not None]
        sign, whole, num, den = g[0] if len(g) == 4 else "", *g[-3:]
        if int(den) == 0:
            return None
        value = (int(whole) + Fraction(int(num), int(den))) * (-1 if sign == "-" else 1)
    elif (frac := _FRACTION.match(s)) is not None:
        sign, num, den = (frac.group(1), frac.group(2), frac.group(3)) if frac.group(2) else ("", *frac.group(4, 5))
        n, d = _decimal(num), _decimal(den)
        if n is None or d is None or d[0] == 0:
            return None
        value = n[0] / d[0] * (-1 if sign == "-" else 1)
    if value is None:
        return None
    if degrees and unit is None:
        unit = UNITS["degree"]
    return Number(value * magnitude, decimals if magnitude == 1 else None, percent, degrees, unit)


_CHOICE = re.compile(r"^\(?([A-E])\)?(?:[.:)]\s.*)?$")


def choice_letter(normalized: str) -> str | None:
    """The letter of an already normalised multiple-choice answer ("C", "(C)", "C. x = 42"), else None."""
    m = _CHOICE.match(normalized)
    return m.group(1) if m else None


def is_choice(answer: str) -> str | None:
    """The letter of a multiple-choice answer ("C", "(c)", "\\text{(C)}", "C. x = 42"), else None."""
    return choice_letter(normalize(answer))
