"""``batches.jsonl``: the batches a run created, so that a run started again polls them instead of paying twice.

The file is sealed as the run's record files are: each line carries a ``digest`` chained to the line before
it (`mathusereval.store.jsonl.JsonlAppender`), and ``mue-eval verify`` checks the chain. A run trusts the
lines up to the first one whose digest does not hold (one warning); batches named after it are not resumed,
so a batch id swapped in by hand is never collected (issue 35, item 6). What the provider says about a
resumed batch is checked as well, against its input file (`mathusereval.backends.batch_api`).

Line kinds: a submitted batch (``batch_id``, ``input_file_id``, ``input_sha256``, ``input_bytes``, ``items``:
custom_id -> sample, answer index and the sha256 of its request line), a batch given up on (``given_up``:
its status, or ``foreign`` when it is not this run's), and a completed batch's failed lines (``failed``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, one_line
from ..store.jsonl import DIGEST, JsonlAppender, open_read, record_digest
from ..store.run_store import BATCHES

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
"""A server-chosen id (batch, file) as it may go into a URL path: OpenAI's are ``batch_...`` and ``file-...``;
no ``/``, ``?``, ``#``, ``%`` or a leading dot, so an id can never reach another endpoint (issue 35, item 10)."""


def checked_id(value: object, what: str) -> str:
    """`value` if it is an id `_ID` allows, else one line naming what was refused (shown escaped)."""
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    shown = one_line(json.dumps(value, ensure_ascii=True) if isinstance(value, str) else type(value).__name__)
    raise BackendUnavailable(f"batch API: the server's {what} {shown[:80]} is not an id (letters, digits, _ . -)")


class BatchLog:
    """``batches.jsonl`` of one run directory (one writer: the run's lock)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / BATCHES
        self._warned = False

    def records(self) -> list[dict[str, Any]]:
        """The lines written by this harness, in order, up to the first whose digest chain does not hold."""
        if not self.path.exists() and not self.path.is_symlink():
            return []
        records: list[dict[str, Any]] = []
        previous: str = ""
        with open_read(self.path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    break  # a torn last line of a killed run: never acknowledged
                try:
                    record = json.loads(raw)
                except (ValueError, RecursionError):
                    record = None
                digest = record.pop(DIGEST, None) if isinstance(record, dict) else None
                if not isinstance(record, dict) or digest != record_digest(previous, record):
                    self._warn(lineno)
                    break
                previous = str(digest)
                if isinstance(record.get("batch_id"), str):
                    records.append(record)
        return records

    def _warn(self, lineno: int) -> None:
        if not self._warned:
            print(
                f"mue-eval: warning: {self.path}:{lineno}: changed after it was written (digest chain broken); the "
                "batches it names from there on are not resumed (new ones are created)",
                file=sys.stderr,
            )
            self._warned = True

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        appender = JsonlAppender(self.path)
        try:
            appender.append(record)
        finally:
            appender.close()  # fsync: the line is on disk before the batch is polled

    def stored_batch(self, digests: dict[str, str]) -> dict[str, Any] | None:
        """The record of a stored batch (not given up on) holding every one of these requests with the same
        body, or None."""
        records = self.records()
        dropped = {r["batch_id"] for r in records if r.get("given_up")}
        failed: dict[str, set[str]] = {}
        for r in records:
            if isinstance(r.get("failed"), list):
                failed.setdefault(r["batch_id"], set()).update(str(c) for c in r["failed"])
        for record in reversed(records):
            held = record.get("items")
            if record["batch_id"] in dropped or not isinstance(held, dict):
                continue
            if failed.get(record["batch_id"], set()) & set(digests):
                continue  # a line this batch failed is sent again in a new batch
            if all(_body_sha(held, cid) == digest for cid, digest in digests.items()):
                return dict(record)
        return None


def _body_sha(held: dict[str, Any], cid: str) -> object:
    item = held.get(cid)
    return item.get("body_sha256") if isinstance(item, dict) else None
