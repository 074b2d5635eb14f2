"""A batch's output and error files, read as hostile input (issue 35, item 2).

- Bounded by what the batch can legitimately return: each of its requests one reply of at most the reply cap
  (``--max-reply-bytes``, or its default for ``--max-tokens``) plus `LINE_OVERHEAD` for the line around it,
  and `FILE_MARGIN` for the whole; both files together, decoded. A file past that is cut there (said once),
  and the requests it did not answer fail (their next batch retries them).
- Streamed line by line (`replies.body_lines`): no file is held whole, and a line longer than its cap is
  skipped (its request fails) after its first bytes.
- A line for a request the batch does not hold is dropped and counted; two different lines for one request
  are that request's error, not "the later wins".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .replies import ReplyTooLarge, body_lines

LINE_OVERHEAD = 4096
"""A reply line's envelope around its body: its ids, status code and an error object."""
FILE_MARGIN = 1 << 20
_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*"([^"\\]{1,200})"')


@dataclass
class Replies:
    """What a batch's files say about its requests. `held`: every ``custom_id`` the batch holds; `wanted`:
    those this call asks for (a resumed batch may hold more)."""

    held: frozenset[str]
    wanted: frozenset[str]
    reply_cap: int
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)
    digests: dict[str, bytes] = field(default_factory=dict)
    conflicts: set[str] = field(default_factory=set)
    oversized: set[str] = field(default_factory=set)
    foreign: int = 0
    """Lines for requests the batch does not hold (dropped)."""
    unreadable: int = 0
    read: int = 0
    """Decoded bytes read from the files so far."""
    cut: bool = False
    """A file passed what was left of `budget` and was not read to its end."""
    foreign_input: bool = False
    """The provider says the batch ran another input file: none of its lines is taken."""

    @property
    def line_cap(self) -> int:
        return self.reply_cap + LINE_OVERHEAD

    @property
    def budget(self) -> int:
        return len(self.held) * self.line_cap + FILE_MARGIN

    async def read_file(self, response: aiohttp.ClientResponse) -> None:
        """Take one file's lines (its part is merged only once it was read, so a retried download starts over)."""
        part = Replies(self.held, self.wanted, self.reply_cap)
        counted = 0

        def seen(piece: bytes) -> None:
            nonlocal counted
            counted += len(piece)

        try:
            async for raw, whole in body_lines(response, self.budget - self.read, self.line_cap, seen):
                part.take(raw, whole)
        except ReplyTooLarge:
            part.cut = True
        self.read += counted
        self.merge(part)

    def take(self, raw: bytes, whole: bool) -> None:
        if not whole:  # past its cap: only its head was kept, to name its request
            found = _CUSTOM_ID.search(raw)
            cid = found.group(1).decode(errors="replace") if found else None
            if cid is None:
                self.unreadable += 1
            elif cid not in self.held:
                self.foreign += 1
            elif cid in self.wanted:
                self.oversized.add(cid)
            return
        if not raw.strip():
            return
        try:
            line = json.loads(raw)
        except (ValueError, RecursionError):
            self.unreadable += 1  # a line nobody can read answers nothing: its request is retried
            return
        cid = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(cid, str):
            self.unreadable += 1
        elif cid not in self.held:
            self.foreign += 1
        elif cid in self.wanted:
            self._keep(cid, hashlib.sha256(raw).digest(), line)

    def _keep(self, cid: str, digest: bytes, line: dict[str, Any] | None) -> None:
        before = self.digests.setdefault(cid, digest)
        if before != digest:
            self.conflicts.add(cid)
        elif line is not None:
            self.lines.setdefault(cid, line)

    def merge(self, part: Replies) -> None:
        for cid, digest in part.digests.items():
            self._keep(cid, digest, part.lines.get(cid))
        self.conflicts |= part.conflicts
        self.oversized |= part.oversized
        self.foreign += part.foreign
        self.unreadable += part.unreadable
        self.cut = self.cut or part.cut

    def problem(self, cid: str) -> str | None:
        """Why request `cid` has no usable line, or None."""
        if cid in self.conflicts:
            return "the batch's files hold different replies for this request; none is taken"
        if cid in self.oversized:
            return f"its reply line is larger than {self.line_cap} bytes (--max-reply-bytes plus the line)"
        if cid not in self.lines:
            return "no reply for this request" + (f" (the files were cut at {self.budget} bytes)" if self.cut else "")
        return None

    def notes(self, batch_id: str) -> Iterable[str]:
        """One line for each thing a run should know about these files."""
        if self.cut:
            yield (
                f"batch {batch_id}: its output and error files hold more than its {len(self.held)} requests can "
                f"return ({self.budget} bytes); the rest was not read"
            )
        if self.foreign:
            yield f"batch {batch_id}: dropped {self.foreign} lines for requests the batch does not hold"
        if self.unreadable:
            yield f"batch {batch_id}: {self.unreadable} lines could not be read"
        if self.conflicts:
            yield f"batch {batch_id}: {len(self.conflicts)} requests have conflicting replies (each is an error)"
