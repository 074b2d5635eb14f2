"""Reading benchmark data: locating the data directory, JSONL with file:line errors, checksums."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError

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
    official source (`mathusereval.data.sources`), or an error saying what to set."""
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


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _check_field(path: Path, lineno: int, name: str, value: Any, number_ok: bool) -> None:
    """A required field must be text (or a finite number where `number_ok`): never null, an object, NaN or
    a boolean, and never text with an unpaired surrogate escape (it cannot be stored or sent)."""
    if isinstance(value, str):
        if not value.isascii() and any("\ud800" <= ch <= "\udfff" for ch in value):
            raise DataError(f"{path}:{lineno}: field {name!r} holds an unpaired surrogate escape (\\ud800-\\udfff)")
        return
    if number_ok and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return
    wanted = "text or a number" if number_ok else "text"
    raise DataError(f"{path}:{lineno}: field {name!r} should be {wanted}, got {_json_kind(value)}")


def read_jsonl(
    path: Path, required: Sequence[str] = (), numbers: Sequence[str] = ()
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) for each non-blank line; a bad line, a missing or mistyped required field
    (text, or text or a finite number for the `numbers` fields), or a file with no rows names file:line."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    rows = 0
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start + 1})") from exc
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
            except RecursionError:
                raise DataError(f"{path}:{lineno}: JSON nested too deeply") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {_json_kind(row)}")
            for name in required:
                if name not in row:
                    raise DataError(f"{path}:{lineno}: missing required field {name!r}")
                _check_field(path, lineno, name, row[name], name in numbers)
            rows += 1
            yield lineno, row
    if rows == 0:
        raise DataError(f"{path}: no rows (the file is empty)")
