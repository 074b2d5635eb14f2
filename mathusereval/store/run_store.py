"""Run directories: append-only JSONL records plus a manifest and a summary.

Layout of one run (one model on one task)::

    results/<model-slug>/<task>/
        manifest.json       what the run is (RunManifest), rewritten atomically
        samples.jsonl       the samples as sent (prompt, reference, metadata), for audits and leaderboards
        generations.jsonl   one Generation per line, appended as each finishes
        grades.jsonl        one Grade per line, appended as each finishes
        judgments.jsonl     one JudgeCall per line: the judge model's raw replies, the judge cache
        batches.jsonl       the Batch API batches of --batch / --judge-batch (resumed, never paid twice)
        steps.jsonl         tool-integrated answers: each step of a chain stored as it completes, so a
                            killed run resumes mid-chain (`mathusereval.tir.chain`; only TIR runs have it)
        summary.json        metrics and counts, rewritten atomically at the end of each run

Records are appended through `mathusereval.store.jsonl` (one write per line, torn tails cut only by the
writer, symbolic links refused). When a key appears twice the later line wins, which is how a retried error
is replaced. `RunStore.writing` is the one way to become a run's writer.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError, DataError
from ..records import Generation, Grade, JudgeCall, RunManifest, RunSummary, Sample, safe_name
from ..records.items import step_outline
from .jsonl import (
    DIGEST,
    JsonlAppender,
    no_link,
    open_read,
    parsed_lines,
    read_json,
    read_records,
    sealed,
    write_json_atomic,
)

T = TypeVar("T")
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
LOCK = ".lock"
SAMPLES, GENERATIONS, GRADES, JUDGMENTS = "samples.jsonl", "generations.jsonl", "grades.jsonl", "judgments.jsonl"
RECORD_FILES = (SAMPLES, GENERATIONS, GRADES, JUDGMENTS)
BATCHES = "batches.jsonl"
"""The Batch API's batches of a run (`mathusereval.backends.batch_state`): chained like the record files,
written by the backend rather than through `RunStore`."""
STEPS = "steps.jsonl"
"""Chain steps of tool-integrated answers; opened on the first step stored (a plain run has no such file)."""


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
        self._appenders: dict[str, JsonlAppender] = {}
        self._judge_index: dict[str, tuple[int, bool]] | None = None

    @contextmanager
    def writing(self, manifest: RunManifest) -> Iterator[RunManifest]:
        """Become the run's one writer: take the lock, refuse a stored run with other settings, write the
        manifest (keeping the first start time, unfinished until the run writes its summary) and open the
        record files; on leaving, close and unlock.
        Yields the manifest as written. Nothing is written when the lock or the settings check fails."""
        self.lock()
        try:
            previous = self.check_compatible(manifest)
            if previous is not None:
                manifest = dataclasses.replace(manifest, started_at=previous.started_at, records=previous.records)
            # unfinished while a writer is at work: a torn last line is then a write under way, while in a run
            # whose manifest says finished it was appended since (``verify`` says so)
            manifest = dataclasses.replace(manifest, finished_at=None)
            self.write_manifest(manifest)
            self.open()
        except BaseException:
            self.unlock()
            raise
        try:
            yield manifest
        finally:
            self.close()

    def lock(self) -> None:
        import fcntl
        import socket
        import time

        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / LOCK
        no_link(path)
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

    def check_unlocked(self) -> None:
        """Refuse now, the way `lock` would, when another process writes this run; takes no lock and creates
        nothing (``run`` asks before it contacts any server)."""
        import fcntl

        path = self.dir / LOCK
        if not path.is_file() or path.is_symlink():
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            raise ConfigError(
                f"{self.dir} is being written by another mue-eval ({holder}); nothing was sent or written: wait "
                "for it to finish (it resumes where it stops), or choose another --out"
            ) from None
        finally:
            os.close(fd)

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
        """Refuse to resume a run whose stored settings differ, naming each one that changed; return the
        stored manifest if any."""
        old = self.existing_manifest()
        if old is None or old.fingerprint == manifest.fingerprint:
            return old
        changed = [
            name
            for name in ("task_version", "model", "backend", "data_sha256", "prompt_sha256")
            if getattr(old, name) != getattr(manifest, name)
        ]
        for prefix, before_map, now_map in (
            ("params.", old.params, manifest.params),
            ("", old.settings, manifest.settings),
        ):
            for key in sorted(set(before_map) | set(now_map)):
                before, now = before_map.get(key), now_map.get(key)
                if before != now:
                    changed.append(f"{prefix}{key}: {before!r} -> {now!r}")
        raise ConfigError(
            f"{self.dir} holds a run with different settings ({'; '.join(changed) or 'fingerprint'} changed); "
            "nothing was overwritten: keep both runs with --name LABEL (or another --out), or delete that directory"
        )

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._appenders = {name: JsonlAppender(self.dir / name) for name in RECORD_FILES}

    def close(self) -> None:
        try:
            for appender in self._appenders.values():
                appender.close()
        finally:
            self._appenders = {}
            self.unlock()

    def write_manifest(self, manifest: RunManifest) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.manifest_path, sealed(checked("manifest", manifest.to_json())))

    def write_summary(self, summary: RunSummary) -> None:
        write_json_atomic(self.dir / SUMMARY, sealed(checked("summary", summary.to_json())))

    def checkpoint(self, previous: dict[str, Any]) -> dict[str, Any]:
        """Each open record file's line count and last digest, for the manifest. A file that no longer holds
        the previous checkpoint's line (lines deleted while no writer ran) keeps the old checkpoint, so the
        deletion stays visible to ``verify`` instead of being written over."""
        points: dict[str, Any] = {}
        for name, appender in self._appenders.items():
            old = previous.get(name)
            if isinstance(old, dict) and not _holds(self.dir / name, old):
                points[name] = old
            else:
                points[name] = {"lines": appender.lines, "last": appender.last_digest}
        return points

    def existing_summary(self) -> RunSummary | None:
        path = self.dir / SUMMARY
        if not path.exists() and not path.is_symlink():
            return None
        data = read_json(path)
        try:
            return RunSummary.from_json(data)
        except (TypeError, KeyError, AttributeError, ValueError) as exc:  # valid JSON, but not a summary
            raise DataError(f"{path}: not a run summary ({exc.__class__.__name__}: {exc})") from exc

    def add_sample(self, sample: Sample) -> None:
        self._appenders[SAMPLES].append(sample.to_json())

    def add_generation(self, generation: Generation) -> None:
        offset = self._appenders[GENERATIONS].append(generation.to_json())
        self._offsets[(generation.sample_id, generation.n_index)] = offset

    def generation_index(self) -> dict[tuple[str, int], Generation]:
        """The latest generation per (sample id, n_index) *without its text*: the outcome, finish reason and
        usage a run needs to decide what to redo and to count. Each line is parsed once; the texts are read
        back one at a time by `load_generation`, so memory does not grow with the answers a run holds."""
        index: dict[tuple[str, int], Generation] = {}
        for start, generation in parsed_lines(self.dir / GENERATIONS, Generation.from_json):
            key = (generation.sample_id, generation.n_index)
            index[key] = dataclasses.replace(generation, text="", reasoning=None, steps=step_outline(generation.steps))
            self._offsets[key] = start
        return index

    def load_generation(self, key: tuple[str, int]) -> Generation:
        """The full generation (text included) that `generation_index` or `add_generation` saw last for `key`."""
        with open_read(self.dir / GENERATIONS) as fh:
            fh.seek(self._offsets[key])
            return Generation.from_json(json.loads(fh.readline()))

    def add_step(self, record: dict[str, Any]) -> None:
        """One completed step of a tool-integrated chain (`mathusereval.tir.chain.StepRecord`)."""
        if STEPS not in self._appenders:
            self._appenders[STEPS] = JsonlAppender(self.dir / STEPS)
        self._appenders[STEPS].append(record)

    def stored_steps(self, parse: Callable[[dict[str, Any]], T]) -> list[T]:
        """Every stored chain step, in file order, read by `parse` (a bad line is an error naming file:line)."""
        return list(read_records(self.dir / STEPS, parse))

    def add_grade(self, grade: Grade) -> None:
        self._appenders[GRADES].append(grade.to_json())

    def add_judge_call(self, call: JudgeCall) -> None:
        offset = self._appenders[JUDGMENTS].append(call.to_json())
        if self._judge_index is not None:
            self._judge_index[call.key] = (offset, call.generation.ok)

    def stored_judge_call(self, key: str) -> JudgeCall | None:
        """The judge cache: the latest successful reply stored under `key`, or None. The file is parsed once
        per run into offsets (not replies), and a reply is read back only when asked for, so judging does
        not reload the cache for each chunk and memory does not grow with the replies stored."""
        if self._judge_index is None:
            self._judge_index = {
                call.key: (start, call.generation.ok)
                for start, call in parsed_lines(self.dir / JUDGMENTS, JudgeCall.from_json)
            }
        offset, ok = self._judge_index.get(key, (-1, False))
        if not ok:
            return None
        with open_read(self.dir / JUDGMENTS) as fh:
            fh.seek(offset)
            return JudgeCall.from_json(json.loads(fh.readline()))

    def samples(self) -> dict[str, Sample]:
        return {s.id: s for s in read_records(self.dir / SAMPLES, Sample.from_json)}

    def generations(self) -> dict[tuple[str, int], Generation]:
        """Latest generation per (sample id, n_index)."""
        return {(g.sample_id, g.n_index): g for g in read_records(self.dir / GENERATIONS, Generation.from_json)}

    def grades(self) -> dict[tuple[str, int, str], Grade]:
        """Latest grade per (sample id, n_index, grader)."""
        return {(g.sample_id, g.n_index, g.grader): g for g in read_records(self.dir / GRADES, Grade.from_json)}


def line_digest(path: Path, number: int) -> str | None:
    """The digest of a file's `number`-th line (1-based); None when it has fewer lines or none there."""
    if number <= 0:
        return ""
    try:
        with open_read(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                if lineno == number:
                    record = json.loads(raw)
                    value = record.get(DIGEST) if isinstance(record, dict) else None
                    return value if isinstance(value, str) else None
    except (DataError, ValueError, RecursionError):
        return None
    return None


def _holds(path: Path, point: dict[str, Any]) -> bool:
    """Whether `path` still holds the line a checkpoint names."""
    lines, last = point.get("lines"), point.get("last")
    return isinstance(lines, int) and line_digest(path, lines) == last


CHECK_SCHEMAS_ENV = "MUE_CHECK_SCHEMAS"


def checked(name: str, data: dict[str, object]) -> dict[str, object]:
    """`data` as it will be written; with ``$MUE_CHECK_SCHEMAS`` set (the test suite sets it), validated first
    against the schema the package ships (`mathusereval.records.schema`), so a record that drifts from its
    documented form fails the run that writes it."""
    if os.environ.get(CHECK_SCHEMAS_ENV):
        import jsonschema

        from ..records import schema
        from .jsonl import non_finite

        if non_finite(data):
            raise ValueError(f"{name}.json would hold NaN or Infinity")
        as_written = json.loads(json.dumps(data, default=str))  # tuples as lists, as the file holds them
        jsonschema.validate(as_written, schema(name), cls=jsonschema.Draft202012Validator)
    return data


def run_directory(out: Path, model_slug: str, task: str) -> Path:
    """``<out>/<model>/<task>``; both names pass the one path rule (`safe_name`), whoever chose them."""
    return out / safe_name(model_slug, "model") / safe_name(task, "task")
