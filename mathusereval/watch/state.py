"""The watcher's memory, kept in the results tree: which checkpoints it evaluated, is evaluating, or saw
deleted, with the content they had. A restarted watcher reads it back: a checkpoint done with the same
content is skipped, one cut off is resumed (the runs themselves resume from their stored answers), one
deleted is not looked for again.

``<out>/.mue-watch/<watched>.json``, one per watched directory or pattern, written atomically after each
change. It is ours to rewrite; a file that cannot be read is set aside (renamed ``.unreadable``) with a
warning, since the runs themselves still hold every answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import safe_name
from ..store.jsonl import write_json_atomic

DONE, RUNNING, DELETED, FAILED = "done", "running", "deleted", "failed"
MAX_STATE_BYTES = 32 << 20


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class WatchState:
    path: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def location(cls, out: Path, watched: str) -> Path:
        key = hashlib.sha256(os.path.abspath(watched).encode()).hexdigest()[:8]
        return out / ".mue-watch" / f"{safe_name(Path(watched).name or 'watch', 'watch')}-{key}.json"

    @classmethod
    def load(cls, out: Path, watched: str) -> WatchState:
        path = cls.location(out, watched)
        state = cls(path)
        if not path.exists():
            return state
        try:
            if path.stat().st_size > MAX_STATE_BYTES:
                raise ValueError(f"over {MAX_STATE_BYTES} bytes")
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data["checkpoints"]
            if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
                raise ValueError("checkpoints is not an object of objects")
            state.entries = entries
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = path.with_suffix(".unreadable")
            print(
                f"mue-eval watch: warning: {path}: cannot be read ({exc}); set aside as {aside.name}, every "
                "checkpoint is looked at again (their stored answers are reused)",
                file=sys.stderr,
            )
            os.replace(path, aside)
        return state

    def get(self, checkpoint: Path) -> dict[str, Any]:
        return self.entries.get(str(checkpoint), {})

    def set(self, checkpoint: Path, status: str, **facts: Any) -> None:
        entry = {**self.get(checkpoint), **facts, "status": status, "updated": _now()}
        self.entries[str(checkpoint)] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"checkpoints": self.entries})
