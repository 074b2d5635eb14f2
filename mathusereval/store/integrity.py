"""Was a run edited after it was written? The checks behind ``mue-eval verify`` and the leaderboard's mark.

What the writer leaves for them (versions from 0.2 on, which say so in ``mathusereval_version``):

- every record line carries a ``digest`` chained to the line before it (`jsonl.record_digest`): changing,
  inserting or deleting a line breaks the chain from there on, and a line without one is an error; so does
  every line of ``batches.jsonl`` (a batch id swapped for another run's shows here);
- ``manifest.json`` and ``summary.json`` carry a ``seal`` over their content (`jsonl.seal_of`);
- the manifest holds the writer's checkpoint at the end of each finished run: every record file's line
  count and last digest, so a line deleted from a file's end shows too;
- ``summary.json`` must agree with the metrics and counts recomputed from the records.

This catches edits by hand or by a script that does not know these rules; it is a checksum, not a
signature: someone who recomputes the digests and seals is not detected. Runs of earlier versions are
checked as far as they carry digests ("not checkable" lines are counted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MueError
from ..records import MetricValue, RunCounts
from .jsonl import DIGEST, SEAL, read_json, record_digest, seal_of
from .run_store import BATCHES, MANIFEST, RECORD_FILES, STEPS, SUMMARY

SEALED_SINCE = (0, 2)
"""The first version whose runs carry seals, checkpoints and a digest on every line."""
UNCHECKED_COUNTS = frozenset({"reused"})
"""Counts a summary keeps that the records cannot tell (how much of this invocation was resumed)."""


@dataclass
class Verdict:
    directory: Path
    lines: int = 0
    unprotected: int = 0
    """Lines written without a digest by a version before 0.2: they cannot be checked."""
    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Shards of this run that are not there (the run is partial, not edited)."""
    unchecked: list[str] = field(default_factory=list)
    """Why part of the run could not be checked (a file that cannot be opened, records that cannot be read
    back to recompute the summary): neither ok nor, on its own, edited."""

    @property
    def edited(self) -> bool:
        return bool(self.problems)

    @property
    def checked(self) -> bool:
        return not self.unchecked


def _unreadable(exc: MueError) -> bool:
    """The file could not be opened (permissions, a vanished file): that says nothing about an edit."""
    return isinstance(exc.__cause__, OSError)


def _version(text: object) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text).split(".")[:2])
    except ValueError:
        return (0,)


def _check_file(path: Path, verdict: Verdict, sealed: bool, point: Any, finished: bool) -> None:
    if path.is_symlink():
        verdict.problems.append(f"{path} is a symbolic link")
        return
    try:
        _check_lines(path, verdict, sealed, point, finished)
    except OSError as exc:
        verdict.unchecked.append(f"{path}: cannot be read ({exc.strerror or exc})")


def _check_lines(path: Path, verdict: Verdict, sealed: bool, point: Any, finished: bool) -> None:
    digests = [""]  # digest after each line, by line number
    if path.exists():
        previous = ""
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n") and finished:
                    # a writer marks its manifest unfinished before it appends (`RunStore.writing`)
                    verdict.problems.append(
                        f"{path}:{lineno}: an unfinished line after the run finished (appended since)"
                    )
                    break  # the last line: the checkpoint is still checked
                if not raw.endswith(b"\n") or not raw.strip():
                    continue  # an unfinished last line of a run under way is not part of the run yet
                verdict.lines += 1
                try:
                    record = json.loads(raw)
                    digest = record.pop(DIGEST, None) if isinstance(record, dict) else None
                except (ValueError, RecursionError):
                    verdict.problems.append(f"{path}:{lineno}: not a JSON record")
                    return
                if digest is None:
                    if sealed:
                        verdict.problems.append(f"{path}:{lineno}: a record without its digest (removed by hand)")
                        return
                    verdict.unprotected += 1
                    previous = ""
                elif digest != record_digest(previous, record):
                    verdict.problems.append(f"{path}:{lineno}: changed after it was written (digest chain broken)")
                    return  # every later line would differ too
                else:
                    previous = digest
                digests.append(previous)
    if isinstance(point, dict) and isinstance(point.get("lines"), int):
        lines = point["lines"]
        if len(digests) - 1 < lines:
            verdict.problems.append(
                f"{path}: holds {len(digests) - 1} records, the writer left {lines}: lines were deleted"
            )
        elif digests[lines] != point.get("last"):
            verdict.problems.append(f"{path}:{lines}: not the line the writer left there")


def _check_seal(path: Path, data: Any, sealed: bool, verdict: Verdict) -> None:
    if not isinstance(data, dict):
        verdict.problems.append(f"{path}: not a JSON object")
    elif SEAL in data:
        if data[SEAL] != seal_of(data):
            verdict.problems.append(f"{path}: changed after it was written (its seal does not match)")
    elif sealed:
        verdict.problems.append(f"{path}: its seal was removed")


def _same(old: object, new: float | int | None) -> bool:
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return old is None
    return (
        isinstance(old, (int, float))
        and not isinstance(old, bool)
        and math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12)
    )


def _check_summary(path: Path, summary: dict[str, Any], metrics: Sequence[MetricValue], counts: RunCounts | None,
                   verdict: Verdict) -> None:  # fmt: skip
    stored = {m.get("name"): m for m in summary.get("metrics", []) if isinstance(m, dict)}
    for metric in metrics:
        old = stored.get(metric.name)
        if old is None:
            continue
        for key, value in (("value", metric.value), ("n", metric.n), ("stderr", metric.stderr)):
            if not _same(old.get(key), value):
                verdict.problems.append(f"{path}: {metric.name} {key} = {old.get(key)} but the records give {value}")
    if len(stored) != len(metrics) and metrics:
        verdict.problems.append(f"{path}: {len(stored)} metrics, the records give {len(metrics)}")
    stored_counts: dict[str, Any] = summary["counts"] if isinstance(summary.get("counts"), dict) else {}
    for name, value in (counts.to_json() if counts is not None else {}).items():
        if name in stored_counts and name not in UNCHECKED_COUNTS and stored_counts[name] != value:
            verdict.problems.append(f"{path}: counts.{name} = {stored_counts[name]} but the records give {value}")


def check_run(directory: Path, metrics: Sequence[MetricValue], counts: RunCounts | None = None) -> Verdict:
    """Check one run directory (a shard on its own): seals, the digest chain of every record file, the
    writer's checkpoint, and summary.json against `metrics` and `counts` recomputed from its records by the
    caller (`mathusereval.results.verify_run`)."""
    verdict = Verdict(directory)
    try:
        manifest = read_json(directory / MANIFEST)
    except MueError as exc:
        (verdict.unchecked if _unreadable(exc) else verdict.problems).append(f"{directory}: {exc}")
        return verdict
    sealed = isinstance(manifest, dict) and _version(manifest.get("mathusereval_version")) >= SEALED_SINCE
    finished = isinstance(manifest, dict) and isinstance(manifest.get("finished_at"), str)
    _check_seal(directory / MANIFEST, manifest, sealed, verdict)
    points: dict[str, Any] = {}
    if isinstance(manifest, dict) and isinstance(manifest.get("records"), dict):
        points = manifest["records"]
    for name in (*RECORD_FILES, STEPS):  # steps.jsonl: a TIR run's chain steps (absent elsewhere)
        _check_file(directory / name, verdict, sealed, points.get(name), finished)
    # batches.jsonl has a chain but no checkpoint: its writer is the backend, not the run's writer
    _check_file(directory / BATCHES, verdict, sealed, None, False)
    summary_path = directory / SUMMARY
    if summary_path.exists() and not verdict.problems:
        try:
            summary = read_json(summary_path)
        except MueError as exc:
            (verdict.unchecked if _unreadable(exc) else verdict.problems).append(
                f"{summary_path}: cannot be checked ({exc})"
            )
            return verdict
        _check_seal(summary_path, summary, sealed, verdict)
        if isinstance(summary, dict):
            _check_summary(summary_path, summary, metrics, counts if sealed else None, verdict)
    return verdict
