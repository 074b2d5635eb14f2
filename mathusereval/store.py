"""Run directories: append-only JSONL records plus a manifest and a summary.

Layout of one run (one model on one task)::

    results/<model-slug>/<task>/
        manifest.json       what the run is (RunManifest), rewritten atomically
        samples.jsonl       the samples as sent (prompt, reference, metadata), for audits and leaderboards
        generations.jsonl   one Generation per line, appended as each finishes
        grades.jsonl        one Grade per line, appended as each finishes
        judgments.jsonl     one JudgeCall per line: the judge model's raw replies, the judge cache
        summary.json        metrics and counts, rewritten atomically at the end of each run

Each record is written with a single ``write(2)`` on an ``O_APPEND`` descriptor, so a killed process leaves
at worst one torn final line. Only the run's writer cuts that line off when it reopens the file (it was
never acknowledged); readers (``leaderboard``, ``export``, ``grade`` before it writes) never change a file:
they skip an unterminated last line in memory, since a live run may still be writing it. Any other bad
line is corruption and is reported with its file and line number. When a key appears twice the later
line wins, which is how a retried error is replaced. Run files must be regular files: a symbolic link
(which could point outside the results tree) is refused, never followed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError, DataError
from .records import Generation, Grade, JudgeCall, RunManifest, Sample

T = TypeVar("T")
MANIFEST = "manifest.json"
SUMMARY = "summary.json"


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


def write_json_atomic(path: Path, data: Any) -> None:
    try:
        text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        encoded = text.encode()
    except UnicodeEncodeError:  # a lone surrogate somewhere: \u escapes instead
        encoded = (json.dumps(data, ensure_ascii=True, indent=2, sort_keys=True) + "\n").encode()
    write_atomic(path, encoded)


def _no_link(path: Path) -> None:
    if path.is_symlink():
        raise DataError(f"{path} is a symbolic link; run files must be regular files inside the run directory")


def _open_read(path: Path) -> Any:
    """A run file opened for reading without following a symbolic link (checked, and O_NOFOLLOW for races)."""
    _no_link(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    return os.fdopen(fd, "rb")


def read_json(path: Path) -> Any:
    try:
        with _open_read(path) as fh:
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


def _parsed_lines(path: Path, parse: Callable[[dict[str, Any]], T]) -> Iterator[tuple[int, T]]:
    """(byte offset, record) of every line of a JSONL record file; any bad line is an error naming
    file:line. Never writes: an unterminated last line (a crash, or a write still under way) is skipped here
    and said once on stderr."""
    if not path.exists() and not path.is_symlink():
        return
    with _open_read(path) as fh:
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
    for _, record in _parsed_lines(path, parse):
        yield record


DIGEST = "digest"


def record_digest(previous: str, record: dict[str, Any]) -> str:
    """The chain value of one record line: sha256 of the previous line's digest ("" for the first line, or
    after a line written without one) and the record's canonical JSON (sorted keys, ASCII escapes, without
    its own digest). `mathusereval.integrity` recomputes the chain to show a run edited after it was written."""
    body = json.dumps(record, ensure_ascii=True, sort_keys=True)
    return hashlib.sha256((previous + body).encode()).hexdigest()[:32]


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
        _no_link(path)
        self._previous = ""
        if path.exists():
            _repair_torn_tail(path)
            self._previous = _chain_tail(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self._size = os.fstat(self._fd).st_size

    def append(self, obj: dict[str, Any]) -> int:
        """Write one record; returns the byte offset its line starts at (one writer per run: the lock)."""
        digest = record_digest(self._previous, obj)
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
        offset, self._size = self._size, self._size + len(data)
        return offset

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


LOCK = ".lock"


class RunStore:
    """The files of one (model, task) run; see the module docstring for the layout.

    One writer per run: `lock` takes an exclusive kernel advisory lock (``flock``) on ``<run>/.lock``,
    which the kernel releases when the process ends in any way, ``kill -9`` included. A second process
    gets a `ConfigError` naming the holder (pid, host, since when) before it writes anything.
    """

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._lock_fd = -1
        self._offsets: dict[tuple[str, int], int] = {}

    def lock(self) -> None:
        import fcntl
        import socket
        import time

        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / LOCK
        _no_link(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"{self.dir} is being written by another mue-eval ({holder}); nothing was written: wait for it "
                "to finish (it resumes where it stops), or choose another --out"
            ) from None
        since = time.strftime("%Y-%m-%dT%H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}, since {since}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = -1

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    def existing_manifest(self) -> RunManifest | None:
        if not self.manifest_path.exists():
            return None
        data = read_json(self.manifest_path)
        try:
            return RunManifest.from_json(data)
        except (TypeError, AttributeError, ValueError) as exc:  # valid JSON, but not a manifest
            raise DataError(f"{self.manifest_path}: not a run manifest ({exc})") from exc

    def check_compatible(self, manifest: RunManifest) -> RunManifest | None:
        """Refuse to resume a run whose stored settings differ; return the stored manifest if any."""
        old = self.existing_manifest()
        if old is not None and old.fingerprint != manifest.fingerprint:
            changed = [
                name
                for name in ("task_version", "model", "backend", "params", "data_sha256", "prompt_sha256")
                if getattr(old, name) != getattr(manifest, name)
            ]
            raise ConfigError(
                f"{self.dir} holds a run with different settings ({', '.join(changed) or 'fingerprint'} "
                "changed); nothing was overwritten: choose another --out, or delete that directory"
            )
        return old

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._samples = JsonlAppender(self.dir / "samples.jsonl")
        self._generations = JsonlAppender(self.dir / "generations.jsonl")
        self._grades = JsonlAppender(self.dir / "grades.jsonl")
        self._judgments = JsonlAppender(self.dir / "judgments.jsonl")

    def close(self) -> None:
        try:
            for appender in (self._samples, self._generations, self._grades, self._judgments):
                appender.close()
        finally:
            self.unlock()

    def write_manifest(self, manifest: RunManifest) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.manifest_path, manifest.to_json())

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.dir / SUMMARY, summary)

    def add_sample(self, sample: Sample) -> None:
        self._samples.append(sample.to_json())

    def add_generation(self, generation: Generation) -> None:
        offset = self._generations.append(generation.to_json())
        self._offsets[(generation.sample_id, generation.n_index)] = offset

    def generation_index(self) -> dict[tuple[str, int], Generation]:
        """The latest generation per (sample id, n_index) *without its text*: the outcome, finish reason and
        usage a run needs to decide what to redo and to count. Each line is parsed once; the texts are read
        back one at a time by `load_generation`, so memory does not grow with the answers a run holds."""
        index: dict[tuple[str, int], Generation] = {}
        for start, generation in _parsed_lines(self.dir / "generations.jsonl", Generation.from_json):
            key = (generation.sample_id, generation.n_index)
            index[key] = dataclasses.replace(generation, text="", reasoning=None)
            self._offsets[key] = start
        return index

    def load_generation(self, key: tuple[str, int]) -> Generation:
        """The full generation (text included) that `generation_index` or `add_generation` saw last for `key`."""
        with _open_read(self.dir / "generations.jsonl") as fh:
            fh.seek(self._offsets[key])
            return Generation.from_json(json.loads(fh.readline()))

    def add_grade(self, grade: Grade) -> None:
        self._grades.append(grade.to_json())

    def add_judge_call(self, call: JudgeCall) -> None:
        self._judgments.append(call.to_json())

    def samples(self) -> dict[str, Sample]:
        return {s.id: s for s in read_records(self.dir / "samples.jsonl", Sample.from_json)}

    def generations(self) -> dict[tuple[str, int], Generation]:
        """Latest generation per (sample id, n_index)."""
        return {(g.sample_id, g.n_index): g for g in read_records(self.dir / "generations.jsonl", Generation.from_json)}

    def grades(self) -> dict[tuple[str, int, str], Grade]:
        """Latest grade per (sample id, n_index, grader)."""
        return {(g.sample_id, g.n_index, g.grader): g for g in read_records(self.dir / "grades.jsonl", Grade.from_json)}

    def judge_calls(self) -> dict[str, JudgeCall]:
        """Latest judge reply per cache key."""
        return {c.key: c for c in read_records(self.dir / "judgments.jsonl", JudgeCall.from_json)}


def run_directory(out: Path, model_slug: str, task: str) -> Path:
    return out / model_slug / task
