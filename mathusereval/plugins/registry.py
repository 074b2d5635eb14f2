"""One registry for every plugin kind: tasks, graders, backends and renderers, found by name.

Built-ins register themselves when their package is imported (`mathusereval.tasks`,
`mathusereval.graders`, `mathusereval.backends`, `mathusereval.leaderboard`). Third-party packages declare
entry points in the groups ``mathusereval.tasks``, ``mathusereval.graders``, ``mathusereval.backends`` and
``mathusereval.renderers``; an entry point's name is the plugin name and its object is what gets registered
(a `Task`, a grader, a backend factory, or a renderer). Entry points are loaded only when a name is not
found among the built-ins, or when all names are listed.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from ..errors import ConfigError
from .contracts import check_plugin, is_judge

if TYPE_CHECKING:
    from .contracts import BackendFactory, JudgeGrader, Renderer, RuleGrader
    from .task import Task, TaskGroup

Kind = Literal["tasks", "graders", "backends", "renderers", "groups"]
KINDS: tuple[Kind, ...] = ("tasks", "graders", "backends", "renderers", "groups")
_BUILTIN_PACKAGES: dict[Kind, str] = {
    "tasks": "mathusereval.tasks",
    "groups": "mathusereval.tasks",
    "graders": "mathusereval.graders",
    "backends": "mathusereval.backends",
    "renderers": "mathusereval.leaderboard",
}
_registry: dict[Kind, dict[str, Any]] = {kind: {} for kind in KINDS}
_entry_points_loaded: set[Kind] = set()
F = TypeVar("F")


def register(kind: Kind, name: str, obj: Any, origin: str | None = None) -> None:
    """Register `obj` under `name`, checked against its kind's contract (`mathusereval.plugins.contracts`);
    registering another object under a taken name is an error. `origin` names where it came from."""
    if kind not in KINDS:
        raise ConfigError(f"unknown plugin kind {kind!r} (one of {', '.join(KINDS)})")
    check_plugin(kind, name, obj, origin or f"registered by {getattr(obj, '__module__', None) or 'unknown module'}")
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


def preload(kind: Kind, also: tuple[str, ...] = (), after: float = 1.0) -> None:
    """Import the built-in plugins of `kind` (and the modules `also` names) in a background thread `after`
    seconds from now, so a process that needs them only at the end (the leaderboard after a run) pays for the
    imports while it waits on the network, not after it. The delay keeps the import off the start-up path
    (loading data and sending the first requests); a process done sooner imports them itself, as without."""

    def load() -> None:
        time.sleep(after)
        try:
            _load_builtins(kind)
            for module in also:
                importlib.import_module(module)
        except Exception:  # noqa: BLE001 - `lookup` imports again in the foreground and reports the error
            pass

    threading.Thread(target=load, name=f"preload-{kind}", daemon=True).start()


def _load_entry_points(kind: Kind) -> None:
    if kind in _entry_points_loaded:
        return
    from importlib.metadata import entry_points  # scanning every installed package: only when needed

    _entry_points_loaded.add(kind)
    for ep in entry_points(group=f"mathusereval.{kind}"):
        if ep.name in _registry[kind]:
            continue
        origin = f"entry point {ep.name} = {ep.value} in group mathusereval.{kind}"
        try:
            obj = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the built-ins
            raise ConfigError(f"plugin {ep.name!r} ({origin}) failed to load: {exc}") from exc
        register(kind, ep.name, obj, origin)


@overload
def lookup(kind: Literal["tasks"], name: str) -> Task: ...
@overload
def lookup(kind: Literal["graders"], name: str) -> RuleGrader | JudgeGrader: ...
@overload
def lookup(kind: Literal["backends"], name: str) -> BackendFactory: ...
@overload
def lookup(kind: Literal["renderers"], name: str) -> Renderer: ...
@overload
def lookup(kind: Literal["groups"], name: str) -> TaskGroup: ...
def lookup(kind: Kind, name: str) -> Any:
    """The plugin registered as `name` (typed per kind); a clear error listing the known names otherwise."""
    _load_builtins(kind)
    if name not in _registry[kind]:
        _load_entry_points(kind)
    try:
        return _registry[kind][name]
    except KeyError:
        known = ", ".join(sorted(_registry[kind])) or "none"
        raise ConfigError(f"unknown {kind[:-1]} {name!r} (known: {known})") from None


def registered(kind: Kind) -> dict[str, Any]:
    """What is registered of `kind` so far, without importing anything (the built-ins may not be yet)."""
    return dict(_registry[kind])


def names(kind: Kind) -> list[str]:
    """Every registered name of this kind, built-ins and entry points."""
    _load_builtins(kind)
    _load_entry_points(kind)
    return sorted(_registry[kind])


def rule_grader(name: str) -> RuleGrader:
    """The rule grader registered as `name`; an LLM judge there is a `ConfigError`."""
    grader = lookup("graders", name)
    if is_judge(grader):
        raise ConfigError(f"grader {name!r} is an LLM judge, not a rule grader")
    return grader  # type: ignore[return-value]


def judge_grader(name: str) -> JudgeGrader:
    """The LLM judge registered as `name`; a rule grader there is a `ConfigError`."""
    grader = lookup("graders", name)
    if not is_judge(grader):
        raise ConfigError(f"grader {name!r} is a rule grader, not an LLM judge")
    return grader  # type: ignore[return-value]
