"""Reading benchmark data: locating the data directory, JSONL with file:line errors, checksums."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import DataError

DATA_DIR_ENV = "MUE_DATA_DIR"


def resolve_data_dir(explicit: str | os.PathLike[str] | None) -> Path | None:
    """`--data-dir` wins, then $MUE_DATA_DIR; None means "use the official sources"."""
    raw = explicit if explicit is not None else os.environ.get(DATA_DIR_ENV) or None
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise DataError(f"data directory {path} does not exist or is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataError(f"data directory {path} is not readable")
    return path


def find_data_file(data_dir: Path | None, relative: str, task: str) -> Path:
    """The file `relative` inside the data directory; without one, the verified cached download of its
    official source (`mathusereval.sources`), or an error saying what to set."""
    if data_dir is None:
        from .sources import fetch

        return fetch(relative, task)
    path = data_dir / relative
    if not path.is_file():
        raise DataError(f"task {task!r}: expected data file {path} is missing")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def read_jsonl(path: Path, required: Sequence[str] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) for each non-blank line; a bad line or missing field names file:line."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    with fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                for name in required:
                    if name not in row:
                        raise DataError(f"{path}:{lineno}: missing required field {name!r}")
                yield lineno, row
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
