"""Append-only JSONL record files and atomic JSON files: the byte-level half of the run store.

Each record is written with a single ``write(2)`` on an ``O_APPEND`` descriptor, so a killed process leaves
at worst one torn final line. Only a run's writer cuts that line off when it reopens the file (it was never
acknowledged); readers never change a file: they skip an unterminated last line in memory, since a live run
may still be writing it. Any other bad line is corruption, reported with its file and line number. Run
files must be regular files: a symbolic link (which could point outside the results tree) is refused,
never followed. Every record line carries a ``digest`` chained to the line before it (`record_digest`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import DataError

T = TypeVar("T")


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so readers never see half a file; a full disk leaves the
    old file whole and no half-written temporary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def strict(data: Any) -> Any:
    """`data` with every non-finite float (NaN, inf) as null: JSON as ``JSON.parse`` and ``jq`` read it.
    Records say why a value is missing themselves (`MetricValue.to_json`); this is the safety net."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: strict(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(v) for v in data]
    return data


def non_finite(data: Any) -> bool:
    """Whether `data` holds a NaN or an infinity anywhere."""
    if isinstance(data, float):
        return not math.isfinite(data)
    if isinstance(data, dict):
        return any(non_finite(v) for v in data.values())
    if isinstance(data, (list, tuple)):
        return any(non_finite(v) for v in data)
    return False


def json_text(data: Any) -> bytes:
    """Strict, sorted, indented JSON; a lone surrogate (hostile text) is written as a \\u escape."""
    data = strict(data)
    try:
        return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    except UnicodeEncodeError:
        return (json.dumps(data, ensure_ascii=True, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json_text(data))


def no_link(path: Path) -> None:
    if path.is_symlink():
        raise DataError(f"{path} is a symbolic link; run files must be regular files inside the run directory")


def open_read(path: Path) -> Any:
    """A run file opened for reading without following a symbolic link (checked, and O_NOFOLLOW for races)."""
    no_link(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    return os.fdopen(fd, "rb")


def read_json(path: Path) -> Any:
    try:
        with open_read(path) as fh:
            return json.loads(fh.read().decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc.__class__.__name__})") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc


def _repair_torn_tail(path: Path) -> None:
    """Cut a final line that has no newline: the write that a crash interrupted."""
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        step = min(size, 1 << 16)
        while True:  # search backwards for the last newline
            fh.seek(size - step)
            idx = fh.read(step).rfind(b"\n")
            if idx >= 0:
                keep = size - step + idx + 1
                break
            if step == size:
                keep = 0
                break
            step = min(size, step * 2)
        fh.truncate(keep)
    print(f"mue-eval: note: dropped a torn last line in {path} (left by an interrupted run)", file=sys.stderr)


def parsed_lines(path: Path, parse: Callable[[dict[str, Any]], T]) -> Iterator[tuple[int, T]]:
    """(byte offset, record) of every line of a JSONL record file; any bad line is an error naming
    file:line. Never writes: an unterminated last line (a crash, or a write still under way) is skipped here
    and said once on stderr."""
    if not path.exists() and not path.is_symlink():
        return
    with open_read(path) as fh:
        offset = 0
        for lineno, raw in enumerate(fh, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.endswith(b"\n"):
                print(f"mue-eval: note: ignored an unfinished last line in {path}:{lineno}", file=sys.stderr)
                return
            if not raw.strip():
                continue
            try:
                record = parse(json.loads(raw.decode("utf-8")))
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                reason = exc.__class__.__name__ if isinstance(exc, RecursionError) else exc
                raise DataError(f"{path}:{lineno}: corrupt record ({reason}); fix or remove this line") from exc
            yield start, record


def read_records(path: Path, parse: Callable[[dict[str, Any]], T]) -> Iterator[T]:
    """Every record of a JSONL record file (see `_parsed_lines`)."""
    for _, record in parsed_lines(path, parse):
        yield record


DIGEST = "digest"


def record_digest(previous: str, record: dict[str, Any]) -> str:
    """The chain value of one record line: sha256 of the previous line's digest ("" for the first line, or
    after a line written without one) and the record's canonical JSON (sorted keys, ASCII escapes, without
    its own digest). `mathusereval.store.integrity` recomputes the chain to show a run edited after it was written."""
    return _chained(previous, json.dumps(record, ensure_ascii=True, sort_keys=True))


def _chained(previous: str, canonical: str) -> str:
    return hashlib.sha256((previous + canonical).encode()).hexdigest()[:32]


def _last_line(path: Path) -> bytes:
    """The file's last complete line ("" for an empty file)."""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        step = min(size, 1 << 16)
        while step:
            fh.seek(size - step)
            block = fh.read(step)
            cut = block.rstrip(b"\n").rfind(b"\n")
            if cut >= 0 or step == size:
                return block[cut + 1 :]
            step = min(size, step * 2)
    return b""


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


SEAL = "seal"


def seal_of(data: dict[str, Any]) -> str:
    """The seal of a JSON file the writer owns (``manifest.json``, ``summary.json``): sha256 of its canonical
    JSON without the seal. An edit by hand breaks it; recomputing it is a forgery this does not stop."""
    body = json.dumps({k: v for k, v in data.items() if k != SEAL}, ensure_ascii=True, sort_keys=True, default=str)
    return hashlib.sha256(f"mue-seal\0{body}".encode()).hexdigest()[:32]


def sealed(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, SEAL: seal_of(strict(data))}


def _chain_tail(path: Path) -> str:
    try:
        last = json.loads(_last_line(path) or b"{}")
    except (ValueError, RecursionError):
        return ""
    value = last.get(DIGEST) if isinstance(last, dict) else None
    return value if isinstance(value, str) else ""


class JsonlAppender:
    """Append one JSON object per line; each line goes out in one write, flushed to the OS immediately.
    Each line carries a ``digest`` chained to the line before it (`record_digest`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        no_link(path)
        self._previous = ""
        self.lines = 0
        if path.exists():
            _repair_torn_tail(path)
            self._previous = _chain_tail(path)
            self.lines = _count_lines(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self._size = os.fstat(self._fd).st_size

    def append(self, obj: dict[str, Any]) -> int:
        """Write one record; returns the byte offset its line starts at (one writer per run: the lock)."""
        canonical = json.dumps(obj, ensure_ascii=True, sort_keys=True)
        digest = _chained(self._previous, canonical)
        if "\\u" not in canonical and canonical != "{}":
            # nothing escaped: the canonical text is the line as written, the digest goes last (one encoding
            # of a 20 KB answer per line instead of two)
            data = f'{canonical[:-1]}, "{DIGEST}": "{digest}"}}\n'.encode()
        else:
            line = {**obj, DIGEST: digest}
            try:
                data = (json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n").encode()
            except UnicodeEncodeError:  # a lone surrogate: \u escapes keep the line valid UTF-8 and round-trip
                data = (json.dumps(line, ensure_ascii=True, sort_keys=True) + "\n").encode()
        view = memoryview(data)
        try:
            while view:  # write(2) on a regular file is complete in practice; loop for the rare short write
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:  # ENOSPC, EFBIG, EIO: say which file
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        self._previous = digest
        self.lines += 1
        offset, self._size = self._size, self._size + len(data)
        return offset

    @property
    def last_digest(self) -> str:
        return self._previous

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
