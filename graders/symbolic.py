"""The symbolic stage: LaTeX → sympy with latex2sympy2_extended, compared by Math-Verify's ``verify``.

Runs only inside a sandbox worker (`sandbox.py`): parsing and simplifying hostile text can take
unbounded time and memory (``2^{2^{2^{99}}}``, ``10000!``), so the worker is killed from outside when it
overruns. Math-Verify's own ``signal.alarm`` timeouts are switched off (they fail off the main thread,
docs/design-notes.md §4) and only its LaTeX extractor is used: its expression extractor runs sympy's
``parse_expr``, which evaluates Python code.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from .compare import GradingPolicy, Outcome, within_rounding
from .normalize import Number, to_number

_DEGREE_IN_EXPR = re.compile(r"\^\s*\{?\s*\\circ\s*\}?")
_NUMERIC_DIGITS = 40


_TRAILING_LETTER = re.compile(r"(?<=[}\d])\s*([a-zA-Z])\s*$")


def _trailing_variable(latex: str, other: str) -> str:
    """``\\frac{37}{4}m`` when the other side has an ``m``: a coefficient written outside the fraction, made an
    explicit product; Math-Verify would drop a trailing ``m``, ``s``, ``h`` as a unit (metres, seconds, hours)."""
    match = _TRAILING_LETTER.search(latex)
    if match is None or not re.search(rf"(?<![\\a-zA-Z]){match.group(1)}(?![a-zA-Z])", other):
        return latex
    return f"{latex[: match.start()]}*{match.group(1)}"


def _parse(latex: str) -> list[Any]:
    from math_verify import LatexExtractionConfig, parse  # heavy: imported in the worker only

    if re.search(r"\\(?:sin|cos|tan|cot|sec|csc)", latex):
        # Degrees inside trigonometry are an angle unit: sin(90° - x) is cos x.
        latex = _DEGREE_IN_EXPR.sub(r"\\cdot\\frac{\\pi}{180}", latex)
    return list(parse(f"\\boxed{{{latex}}}", [LatexExtractionConfig(boxed_match_priority=0)], parsing_timeout=None))


def _kind(parsed: list[Any]) -> str:
    import sympy

    obj = parsed[0]
    if isinstance(obj, sympy.MatrixBase):
        return "set/interval/tuple rule"
    if isinstance(obj, sympy.core.relational.Relational):
        return "equation rule"
    if isinstance(obj, sympy.Set | sympy.Tuple):
        return "set/interval/tuple rule"
    return "symbolic"


def _real_value(parsed: list[Any]) -> Fraction | None:
    """The exact side as a high-precision rational, when it is a real constant."""
    import sympy

    obj = parsed[0]
    if not isinstance(obj, sympy.Expr) or obj.free_symbols:
        return None
    value = obj.evalf(_NUMERIC_DIGITS)
    if not value.is_real or not value.is_finite:
        return None
    return Fraction(str(value))


def _approximation(
    ref_num: Number | None,
    pred_num: Number | None,
    ref_parsed: list[Any],
    pred_parsed: list[Any],
    policy: GradingPolicy,
) -> bool:
    """A decimal on one side against a constant (√3/2, π, 90°) on the other, by the policy's rounding rule."""
    pairs: list[tuple[Number, list[Any]]] = []
    if pred_num is not None and pred_num.decimals is not None and ref_num is None:
        pairs.append((pred_num, ref_parsed))
    if ref_num is not None and ref_num.decimals is not None and pred_num is None:
        pairs.append((ref_num, pred_parsed))
    for approx, exact_parsed in pairs:
        exact = _real_value(exact_parsed)
        if exact is not None and within_rounding(exact, approx.value, approx, policy):
            return True
    return False


def _degrees_to_radians(
    ref_num: Number | None, pred_num: Number | None, ref_parsed: list[Any], pred_parsed: list[Any]
) -> bool:
    """``90^\\circ`` against ``\\frac{\\pi}{2}``: the same angle."""
    import sympy

    for number, other in ((ref_num, pred_parsed), (pred_num, ref_parsed)):
        if number is not None and number.degrees:
            value = _real_value(other)
            target = sympy.Rational(number.value.numerator, number.value.denominator) * sympy.pi / 180
            if value is not None and abs(value - Fraction(str(target.evalf(_NUMERIC_DIGITS)))) < Fraction(1, 10**30):
                return True
    return False


def _constant(parsed: list[Any]) -> Any:
    """The parsed value as an evaluated exact constant (``2^{200}``, ``1/99!`` become integers and
    rationals), or None when it has symbols or floats, or is not a plain expression."""
    import sympy

    obj = parsed[0]
    if not isinstance(obj, sympy.Expr) or obj.free_symbols or obj.has(sympy.Float):
        return None
    return obj.doit()


def _exact_constants(ref_parsed: list[Any], pred_parsed: list[Any]) -> bool | None:
    """Two exact constants: rationals compare exactly (Math-Verify rounds to a few decimals, so 1/99! and
    1/100! would pass); other constants differ for sure when their difference, at 100 digits, is far
    outside the evaluation error. None: not decided here."""
    a, b = _constant(ref_parsed), _constant(pred_parsed)
    if a is None or b is None:
        return None
    if a.is_Rational and b.is_Rational:
        return bool(a == b)
    return False if _clearly_different(a, b) else None


def _clearly_different(a: Any, b: Any) -> bool:
    import sympy

    diff = sympy.Abs((a - b).evalf(100))
    scale = sympy.Max(sympy.Abs(a.evalf(30)), sympy.Abs(b.evalf(30)), 1)
    return bool(diff.is_number and scale.is_number and diff > scale * sympy.Float(10) ** -60)


def _as_complex(ref_parsed: list[Any], pred_parsed: list[Any]) -> bool | None:
    """A reference that is a complex constant written with ``i`` (or ``j``): both sides read that letter as
    the imaginary unit and compare as numbers, so ``(2-i)^2`` = ``3-4i`` and ``\\sqrt2 e^{i\\pi/4}`` = ``1+i``."""
    import sympy

    ref, pred = ref_parsed[0], pred_parsed[0]
    if not isinstance(ref, sympy.Expr) or not isinstance(pred, sympy.Expr):
        return None
    units = {s for s in ref.free_symbols if s.name in ("i", "j")}
    if len(units) != 1 or len(ref.free_symbols) != 1:
        return None
    unit = units.pop()
    a = ref.subs(unit, sympy.I).doit()
    b = pred.subs({s: sympy.I for s in pred.free_symbols if s.name == unit.name}).doit()
    if b.free_symbols or sympy.im(a.evalf(30)) == 0:
        return None
    if sympy.simplify(sympy.expand_complex(a - b)) == 0:
        return True
    return bool(sympy.Abs((a - b).evalf(60)) < sympy.Float(10) ** -40)


def symbolic_compare(ref: str, pred: str, policy: GradingPolicy) -> Outcome:
    """Decide one value pair with sympy (called by `compare` inside the worker)."""
    from math_verify import verify

    ref_parsed = _parse(_trailing_variable(ref, pred))
    if not ref_parsed:
        return False, "parse failure"
    pred_parsed = _parse(_trailing_variable(pred, ref))
    if not pred_parsed:
        return False, "parse failure"
    ref_num, pred_num = to_number(ref), to_number(pred)
    if policy.approximation == "rounded" and _approximation(ref_num, pred_num, ref_parsed, pred_parsed, policy):
        return True, "numeric"
    if _degrees_to_radians(ref_num, pred_num, ref_parsed, pred_parsed):
        return True, "numeric"
    complex_same = _as_complex(ref_parsed, pred_parsed)
    if complex_same is not None:
        return complex_same, "symbolic"
    exact = _exact_constants(ref_parsed, pred_parsed)
    if exact is not None:
        return exact, "symbolic"
    # float_rounding only matters inside structures (matrices, equations) now: plain decimals were
    # settled exactly by the numeric rule before this point.
    same = verify(ref_parsed, pred_parsed, timeout_seconds=None, allow_set_relation_comp=True)
    if not same and _hyperbolic_equal(ref_parsed, pred_parsed):
        return True, "symbolic"
    return bool(same), _kind(ref_parsed)


def _hyperbolic_equal(ref_parsed: list[Any], pred_parsed: list[Any]) -> bool:
    """``\\frac{\\sinh(at)}{a}`` against ``\\frac{1}{2a}(e^{at}-e^{-at})``: hyperbolic functions written out as
    exponentials (sympy's simplify does not rewrite them on its own)."""
    import sympy

    a, b = ref_parsed[0], pred_parsed[0]
    if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
        return False
    hyperbolic = (sympy.sinh, sympy.cosh, sympy.tanh, sympy.coth, sympy.sech, sympy.csch)
    if not (a.has(*hyperbolic) or b.has(*hyperbolic)):
        return False
    return bool(sympy.simplify(a.rewrite(sympy.exp) - b.rewrite(sympy.exp)) == 0)
