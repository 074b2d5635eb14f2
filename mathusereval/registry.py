"""One registry for every plugin kind: tasks, graders and backends, found by name.

Built-ins register themselves when their package is imported (`mathusereval.tasks`,
`mathusereval.graders`, `mathusereval.backends`). Third-party packages declare entry points in the groups
``mathusereval.tasks``, ``mathusereval.graders`` and ``mathusereval.backends``; an entry point's name is
the plugin name and its object is what gets registered (a `Task`, a grader, or a backend factory). Entry
points are loaded only when a name is not found among the built-ins, or when all names are listed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Literal, TypeVar

from .errors import ConfigError

Kind = Literal["tasks", "graders", "backends"]
KINDS: tuple[Kind, ...] = ("tasks", "graders", "backends")
_BUILTIN_PACKAGES: dict[Kind, str] = {
    "tasks": "mathusereval.tasks",
    "graders": "mathusereval.graders",
    "backends": "mathusereval.backends",
}
_registry: dict[Kind, dict[str, Any]] = {kind: {} for kind in KINDS}
_entry_points_loaded: set[Kind] = set()
F = TypeVar("F")


def register(kind: Kind, name: str, obj: Any) -> None:
    """Register `obj` under `name`; registering the same name twice is a programming error."""
    table = _registry[kind]
    if name in table and table[name] is not obj:
        raise ConfigError(f"two {kind} plugins are both named {name!r}")
    table[name] = obj


def registers(kind: Kind, name: str) -> Callable[[F], F]:
    """Decorator form of `register`."""

    def deco(obj: F) -> F:
        register(kind, name, obj)
        return obj

    return deco


def _load_builtins(kind: Kind) -> None:
    importlib.import_module(_BUILTIN_PACKAGES[kind])


def _load_entry_points(kind: Kind) -> None:
    if kind in _entry_points_loaded:
        return
    _entry_points_loaded.add(kind)
    for ep in entry_points(group=f"mathusereval.{kind}"):
        if ep.name in _registry[kind]:
            continue
        try:
            register(kind, ep.name, ep.load())
        except Exception as exc:  # a broken third-party plugin must not break the built-ins
            raise ConfigError(
                f"plugin {ep.name!r} ({ep.value}) in group mathusereval.{kind} failed to load: {exc}"
            ) from exc


def lookup(kind: Kind, name: str) -> Any:
    """The plugin registered as `name`; a clear error listing the known names otherwise."""
    _load_builtins(kind)
    if name not in _registry[kind]:
        _load_entry_points(kind)
    try:
        return _registry[kind][name]
    except KeyError:
        known = ", ".join(sorted(_registry[kind])) or "none"
        raise ConfigError(f"unknown {kind[:-1]} {name!r} (known: {known})") from None


def names(kind: Kind) -> list[str]:
    """Every registered name of this kind, built-ins and entry points."""
    _load_builtins(kind)
    _load_entry_points(kind)
    return sorted(_registry[kind])
