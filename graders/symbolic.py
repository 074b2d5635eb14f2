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


def symbolic_compare(ref: str, pred: str, policy: GradingPolicy) -> Outcome:
    """Decide one value pair with sympy (called by `compare` inside the worker)."""
    from math_verify import verify

    ref_parsed = _parse(ref)
    if not ref_parsed:
        return False, "parse failure"
    pred_parsed = _parse(pred)
    if not pred_parsed:
        return False, "parse failure"
    ref_num, pred_num = to_number(ref), to_number(pred)
    if policy.approximation == "rounded" and _approximation(ref_num, pred_num, ref_parsed, pred_parsed, policy):
        return True, "numeric"
    if _degrees_to_radians(ref_num, pred_num, ref_parsed, pred_parsed):
        return True, "numeric"
    # float_rounding only matters inside structures (matrices, equations) now: plain decimals were
    # settled exactly by the numeric rule before this point.
    same = verify(ref_parsed, pred_parsed, timeout_seconds=None, allow_set_relation_comp=True)
    return bool(same), _kind(ref_parsed)
