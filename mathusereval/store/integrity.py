"""Was a run edited after it was written? The checks behind ``mue-eval verify`` and the leaderboard's warning.

Every record line carries a ``digest`` chained to the line before it (`store.record_digest`), so changing,
inserting or deleting a line breaks the chain from there on; a run's ``summary.json`` must agree with the
metrics recomputed from its records. This catches edits by hand or by a script that does not know the
chain; it is a checksum, not a signature: someone who recomputes the chain is not detected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MueError
from ..records import MetricValue
from .jsonl import DIGEST, read_json, record_digest
from .run_store import MANIFEST, RECORD_FILES, SUMMARY


@dataclass
class Verdict:
    directory: Path
    lines: int = 0
    unprotected: int = 0
    """Lines written without a digest (by a version before 0.x): they cannot be checked."""
    problems: list[str] = field(default_factory=list)

    @property
    def edited(self) -> bool:
        return bool(self.problems)


def _check_file(path: Path, verdict: Verdict) -> None:
    if path.is_symlink():
        verdict.problems.append(f"{path} is a symbolic link")
        return
    if not path.exists():
        return
    previous = ""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n") or not raw.strip():
                continue  # an unfinished last line is not part of the run yet
            verdict.lines += 1
            try:
                record = json.loads(raw)
                digest = record.pop(DIGEST, None) if isinstance(record, dict) else None
            except (ValueError, RecursionError):
                verdict.problems.append(f"{path}:{lineno}: not a JSON record")
                previous = ""
                continue
            if digest is None:
                verdict.unprotected += 1
                previous = ""
                continue
            if digest != record_digest(previous, record):
                verdict.problems.append(f"{path}:{lineno}: changed after it was written (digest chain broken)")
                return  # every later line would differ too
            previous = digest


def _check_summary(directory: Path, verdict: Verdict, metrics: Sequence[MetricValue]) -> None:
    summary_path = directory / SUMMARY
    if not summary_path.exists():
        return
    try:
        summary = read_json(summary_path)
        stored = {m["name"]: m["value"] for m in summary.get("metrics", [])}
        recomputed = {m.name: m.value for m in metrics}
    except (MueError, TypeError, KeyError, AttributeError) as exc:
        verdict.problems.append(f"{summary_path}: cannot be checked ({exc})")
        return
    for name, value in recomputed.items():
        if name not in stored:
            continue
        old = stored[name]
        if old is None:  # strict JSON: a metric with nothing behind it is stored as null
            same = math.isnan(value)
        else:
            same = isinstance(old, (int, float)) and math.isclose(old, value, rel_tol=1e-9, abs_tol=1e-12)
        if not same:
            verdict.problems.append(f"{summary_path}: {name} = {old} but the records give {value}")


def check_run(directory: Path, metrics: Sequence[MetricValue]) -> Verdict:
    """Check the digest chain of every record file, and summary.json against `metrics` (the run's metrics
    recomputed from its records by the caller, `mathusereval.results.verify_run`)."""
    verdict = Verdict(directory)
    if not (directory / MANIFEST).exists():
        verdict.problems.append(f"{directory}: no {MANIFEST}")
    for name in RECORD_FILES:
        _check_file(directory / name, verdict)
    if not verdict.problems:
        _check_summary(directory, verdict, metrics)
    return verdict
