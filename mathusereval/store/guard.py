"""Readers never overwrite a run, nor a file they did not write.

Commands that only read runs and write reports (``leaderboard --out/--markdown``, ``export --out``,
``agreement --out``, ``compare --out``) write every file through `write_output` inside `guarded_outputs`:

- a path inside a run directory (a folder holding a run's ``manifest.json``, ``summary.json`` or record
  files, or below one) is refused, so ``export --out RUN/generations.jsonl`` cannot destroy a run;
- an existing file is overwritten only when it is this tool's own earlier output, unchanged since: each
  folder written to keeps a ledger, ``.mue-outputs.json``, of the sha256 of what was written there. Any
  other existing file (the user's, or one edited since) is refused;
- a symbolic link is never written through;
- an output folder that exists as a file is refused (``compare --out FILE``).

A refusal is one `ConfigError` naming the path, before anything of that command is written; each file is
written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ..errors import ConfigError, MueError
from .jsonl import read_json, write_atomic
from .run_store import MANIFEST, RECORD_FILES, SUMMARY

LEDGER = ".mue-outputs.json"
RUN_FILES = (MANIFEST, SUMMARY, *RECORD_FILES)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_directory_around(path: Path) -> Path | None:
    """The run directory `path` is in (or is), if any."""
    for folder in (path, *path.parents):
        if folder.is_dir() and any((folder / name).exists() for name in RUN_FILES):
            return folder
    return None


class OutputGuard:
    """The files one command writes: checked before, recorded after (see the module docstring)."""

    def __init__(self) -> None:
        self.written: dict[Path, str] = {}

    def _ledger(self, folder: Path) -> dict[str, str]:
        path = folder / LEDGER
        if not path.is_file() or path.is_symlink():
            return {}
        try:
            data = read_json(path)
        except MueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def check(self, path: Path) -> None:
        target = path.absolute()
        folder = path.parent
        while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
            folder = folder.parent  # the nearest folder that exists: the output goes below it
        if not folder.is_dir():
            raise ConfigError(
                f"{folder} exists and is not a directory; nothing was written: name a directory (or a new path) "
                "for the output"
            )
        run = run_directory_around(target.parent if not target.is_dir() else target)
        if run is not None:
            raise ConfigError(
                f"{path} is inside the run directory {run}: a report is never written into a run (it could "
                "replace the run's records); choose a path outside the results' run folders"
            )
        if path.is_symlink():
            raise ConfigError(f"{path} is a symbolic link; outputs are never written through one")
        if not path.exists() or target in self.written:
            return
        if not path.is_file():
            raise ConfigError(f"{path} exists and is not a file")
        if self._ledger(target.parent).get(target.name) != _sha256(path):
            raise ConfigError(
                f"{path} exists and is not an earlier output of mue-eval (or was changed since); nothing was "
                "written: choose another path, or move that file away"
            )

    def record(self, path: Path) -> None:
        target = path.absolute()
        self.written[target] = _sha256(target)

    def close(self) -> None:
        folders: dict[Path, dict[str, str]] = {}
        for path, digest in self.written.items():
            folders.setdefault(path.parent, {})[path.name] = digest
        for folder, entries in folders.items():
            ledger = {**self._ledger(folder), **entries}
            write_atomic(folder / LEDGER, (json.dumps(ledger, indent=1, sort_keys=True) + "\n").encode())


_active: ContextVar[OutputGuard | None] = ContextVar("mue_output_guard", default=None)


@contextmanager
def guarded_outputs() -> Iterator[OutputGuard]:
    """Every `write_output` inside is checked and recorded; the ledgers are written on leaving."""
    guard = OutputGuard()
    token = _active.set(guard)
    try:
        yield guard
    finally:
        _active.reset(token)
        guard.close()


def check_output(path: Path) -> None:
    """Refuse `path` now if the active guard would (a command checks its outputs before it computes them)."""
    guard = _active.get()
    if guard is not None:
        guard.check(path)


def write_output(path: Path, data: bytes) -> None:
    """Write one report file atomically, through the active guard when there is one."""
    guard = _active.get()
    if guard is not None:
        guard.check(path)
    write_atomic(path, data)
    if guard is not None:
        guard.record(path)


def recorded(path: Path) -> None:
    """A file written some other way (streamed): record it with the active guard."""
    guard = _active.get()
    if guard is not None:
        guard.record(path)
