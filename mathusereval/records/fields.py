"""Records read back from JSON are checked against their declared field types, so a stored line of the wrong
type (``"score": "abc"``, ``"n_index": "0"``, ``"details": "x"``, a NaN or a list where text is due) is refused
where it is read, naming the field, instead of failing later inside a metric, a table or a plot.

The rule follows the dataclass annotations: ``str``, ``int`` (never a bool; within 64 bits), ``float`` (an
int or a finite float; NaN and infinities are refused, and ``abs`` at most `MAX_NUMBER`, so sums and squares
stay finite), ``bool``, ``X | None``, ``dict[str, Any]`` (a JSON object), ``dict[str, str]``, ``tuple[X, ...]``
(a JSON array). The store turns the `TypeError` into a ``file:line`` message (`mathusereval.store.jsonl`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
MAX_NUMBER = 1e15
"""The largest magnitude a stored float may have: far beyond any score (0-1, 1-10), token count or cost, and
small enough that the sum of squares of a million of them is finite (1e308 as a score overflowed a
standard error)."""


Check = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class _Field:
    hint: Any
    check: Check
    wants_float: bool


_FIELDS: dict[type, dict[str, _Field]] = {}


def _fields(cls: type) -> dict[str, _Field]:
    """Each field of a record class with its compiled check (built once per class: reading a record is on
    the path of every line a reader parses)."""
    if cls not in _FIELDS:
        names = {f.name for f in dataclasses.fields(cls)}
        hints = {name: hint for name, hint in typing.get_type_hints(cls).items() if name in names}
        _FIELDS[cls] = {
            name: _Field(hint, checker(hint), hint is float or float in typing.get_args(hint))
            for name, hint in hints.items()
        }
    return _FIELDS[cls]


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    names = {str: "text", int: "an integer", float: "a finite number", bool: "true/false", type(None): "null"}
    if hint in names:
        return names[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is dict:
        return "an object" if args[1] is Any else f"an object of {_describe(args[1])}"
    if origin is tuple:
        return f"an array (each item {_describe(args[0])})"
    return str(getattr(hint, "__name__", hint))


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):  # compared as an int: a 400-digit integer does not convert to a float
        return abs(value) <= MAX_NUMBER
    return math.isfinite(value) and abs(value) <= MAX_NUMBER


MAX_INTEGER = 2**63 - 1
"""The largest magnitude a stored integer may have (a 64-bit seed fits; a 400-digit count would not convert
to a float)."""


def _integer(value: Any) -> bool:
    return type(value) is int and abs(value) <= MAX_INTEGER


def checker(hint: Any) -> Check:
    """The check of one annotated type (see the module docstring)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return lambda value: True
    if origin in (typing.Union, types.UnionType):
        if len(args) == 2 and type(None) in args:  # X | None, the common case, without a loop
            inner = checker(next(a for a in args if a is not type(None)))
            return lambda value: value is None or inner(value)
        checks = [checker(arg) for arg in args]
        return lambda value: any(check(value) for check in checks)
    simple: dict[Any, Check] = {
        type(None): lambda value: value is None,
        bool: lambda value: type(value) is bool,
        int: _integer,
        float: _number,
        str: lambda value: isinstance(value, str),
    }
    if hint in simple:
        return simple[hint]
    if origin is dict:
        if args[1] is Any:  # JSON object keys are always text; only the values may need a look
            return lambda value: isinstance(value, dict)
        item = checker(args[1])
        return lambda value: isinstance(value, dict) and all(item(v) for v in value.values())
    if origin is tuple:
        element = checker(args[0])
        return lambda value: isinstance(value, (list, tuple)) and all(element(v) for v in value)
    return (lambda value: isinstance(value, hint)) if isinstance(hint, type) else (lambda value: True)


def conforms(value: Any, hint: Any) -> bool:
    """Whether a JSON value is of the annotated type (see the module docstring)."""
    return checker(hint)(value)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def from_json_fields(cls: type[T], data: Any, unchecked: frozenset[str] = frozenset()) -> T:
    """Build a record from a JSON object, ignoring unknown keys so newer files stay readable, and refusing
    (`TypeError`, naming the field) a value not of its field's declared type. Fields in `unchecked` are the
    caller's to check. A float field given an integer gets the float."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    fields = _fields(cls)
    values: dict[str, Any] = {}
    for name, value in data.items():
        spec = fields.get(name)
        if spec is None:
            continue
        if not spec.check(value) and name not in unchecked:
            raise TypeError(
                f"field {name!r} must be {_describe(spec.hint)}, not {type(value).__name__} {_preview(value)}"
            )
        values[name] = float(value) if spec.wants_float and type(value) is int else value
    return cls(**values)
