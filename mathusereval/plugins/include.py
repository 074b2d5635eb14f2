"""``mue-eval --include FILE_OR_DIR``: plugins from plain Python files, for one-off tasks and experiments.

Each file is executed once as a module of its own (``mue_include_<name>_<hash>``); it registers tasks,
graders or backends with the same API a package uses (``mathusereval.register``). A folder includes its
``*.py`` files in name order (not sub-folders, not files starting with ``_``). A file that fails to import
is a one-line error naming the file and line.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from ..errors import ConfigError

_loaded: set[Path] = set()


def _files(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(p for p in target.glob("*.py") if not p.name.startswith("_"))
    if target.is_file() and target.suffix == ".py":
        return [target]
    raise ConfigError(f"--include {target}: not a .py file or a folder of them")


def _module_name(path: Path) -> str:
    return f"mue_include_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def module_of(path: str | Path) -> ModuleType:
    """The module of one included file, imported now unless it already was (benchmarks and tests that need
    a plugin file's own helpers, as the Ray replicas load it)."""
    resolved = Path(path).expanduser().resolve()
    include([resolved])
    return sys.modules[_module_name(resolved)]


def include(targets: Sequence[str | Path]) -> list[Path]:
    """Import every file named (or in a folder named); returns the files imported."""
    done = []
    for target in targets:
        for path in _files(Path(target).expanduser()):
            path = path.resolve()
            if path in _loaded:
                continue
            name = _module_name(path)
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"--include {path}: cannot be imported")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except ConfigError as exc:
                raise ConfigError(f"--include {path}: {exc}") from exc
            except Exception as exc:  # the user's file: say where it broke, in one line
                sys.modules.pop(name, None)
                line = next(
                    (f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == str(path)),
                    None,
                )
                where = f"{path}:{line}" if line else str(path)
                raise ConfigError(f"--include {where}: {exc.__class__.__name__}: {exc}") from exc
            _loaded.add(path)
            done.append(path)
    return done


def included() -> tuple[str, ...]:
    """Every file imported so far, in no particular order (a Ray replica imports the same ones)."""
    return tuple(sorted(str(p) for p in _loaded))


def split_include(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the --include values, the other arguments): --include applies to every command."""
    includes, rest = [], []
    args = iter(argv)
    for arg in args:
        if arg == "--include":
            value = next(args, None)
            if value is None:
                raise ConfigError("--include needs a file or folder")
            includes.append(value)
        elif arg.startswith("--include="):
            includes.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return includes, rest
