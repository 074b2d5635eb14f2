"""Which checkpoints a training run has written, and which of them are complete.

A checkpoint is a ``.gguf`` file, a folder with one ``.gguf``, or a Hugging Face folder (``config.json`` and
weights), directly under the watched directory or matched by a glob (as ``--model`` takes). It is complete
when the trainer's marker file is there (``--ready-file trainer_state.json``), or else when every shard that
``model.safetensors.index.json`` names is present and no weight file has changed size or modification time for
the settle time. Nothing here reads more than the file listing and the index.
"""

from __future__ import annotations

import glob
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.weights import WEIGHT_SUFFIXES, weight_files
from ..cli.models import step_key

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
MAX_INDEX_BYTES = 64 << 20


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    """The checkpoint as found: a ``.gguf`` file or a folder."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def folder(self) -> Path:
        return self.path if self.path.is_dir() else self.path.parent

    def model(self) -> str:
        """What ``--model`` gets: the path (a folder with one ``.gguf`` resolves to it in `resolve_model`)."""
        return str(self.path)

    def step(self) -> int | None:
        """The trainer's step: ``global_step`` of a ``trainer_state.json`` beside the weights (Hugging Face
        Trainer writes one into every checkpoint), else the last number of the name."""
        state = self.folder / "trainer_state.json"
        try:
            if state.is_file() and state.stat().st_size < MAX_INDEX_BYTES:
                value = json.loads(state.read_text(encoding="utf-8")).get("global_step")
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    return value
        except (OSError, ValueError, AttributeError):
            pass  # a state file being written, or not a trainer's: the name says the step
        numbers = re.findall(r"\d+", self.path.stem if self.path.is_file() else self.name)
        return int(numbers[-1]) if numbers else None


def _is_checkpoint(path: Path) -> bool:
    if path.is_file():
        return path.suffix == ".gguf"
    if not path.is_dir():
        return False
    return any(p.suffix in WEIGHT_SUFFIXES or p.name in ("config.json", *INDEX_FILES) for p in path.iterdir())


def find_checkpoints(where: str) -> list[Checkpoint]:
    """The checkpoints under a directory (its entries) or matched by a glob, in step order. A folder that
    holds nothing yet that looks like weights is not one (yet)."""
    root = Path(where)
    if any(c in where for c in "*?["):
        paths = [Path(p) for p in glob.glob(where)]
    elif root.is_dir():
        paths = list(root.iterdir())
    else:
        paths = []
    found = []
    for path in paths:
        try:
            if _is_checkpoint(path):
                found.append(Checkpoint(path))
        except OSError:  # removed while we looked
            continue
    return sorted(found, key=lambda c: step_key(c.name))


def _missing_shards(folder: Path) -> list[str]:
    """Shards an index names that are not (yet) in the folder; an index being written counts as missing."""
    for name in INDEX_FILES:
        index = folder / name
        if not index.is_file():
            continue
        try:
            if index.stat().st_size > MAX_INDEX_BYTES:
                return [f"{name} (over {MAX_INDEX_BYTES} bytes)"]
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map")
        except (OSError, ValueError, AttributeError):
            return [f"{name} (not yet readable JSON)"]
        if not isinstance(weight_map, dict):
            return [f"{name} (no weight_map)"]
        shards = sorted({str(v) for v in weight_map.values()})
        return [s for s in shards if "/" in s or not (folder / s).is_file()]
    return []


def incomplete_reason(checkpoint: Checkpoint, ready_file: str | None) -> str | None:
    """Why `checkpoint` cannot be complete yet whatever the settle time says (None: it may be)."""
    if ready_file is not None:
        return None if (checkpoint.folder / ready_file).exists() else f"no {ready_file} yet"
    if checkpoint.path.is_file():
        return None
    files = weight_files(checkpoint.path)
    if not any(p.suffix in WEIGHT_SUFFIXES for p in files):
        return "no weight file yet"
    if (checkpoint.path / "config.json").is_file() or any(p.suffix == ".gguf" for p in files):
        missing = _missing_shards(checkpoint.path)
        return f"shards missing: {', '.join(missing[:3])}" if missing else None
    return "no config.json yet"


def signature(checkpoint: Checkpoint) -> tuple[tuple[str, int, int], ...]:
    """Every weight file's name, size and modification time: unchanged for the settle time = written."""
    out = []
    for path in weight_files(checkpoint.path):
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


@dataclass
class Settling:
    """When each checkpoint's files were last seen changing (in this process: a restart settles again)."""

    settle: float
    ready_file: str | None = None
    _seen: dict[Path, tuple[tuple[tuple[str, int, int], ...], float]] = field(default_factory=dict)

    def complete(self, checkpoint: Checkpoint, now: float | None = None) -> tuple[bool, str]:
        """Whether `checkpoint` is complete, and if not, why (for the log): its files unchanged between two
        looks and either last modified `settle` seconds ago (a restarted watcher need not wait again) or seen
        unchanged that long (a copy that keeps old modification times)."""
        now = time.monotonic() if now is None else now
        reason = incomplete_reason(checkpoint, self.ready_file)
        if reason is not None:
            return False, reason
        if self.ready_file is not None:
            return True, ""
        current = signature(checkpoint)
        before = self._seen.get(checkpoint.path)
        if before is None or before[0] != current:
            self._seen[checkpoint.path] = (current, now)
            return False, "being written" if before is not None else "new"
        age = time.time() - max((mtime for _, _, mtime in current), default=0) / 1e9
        waited = max(now - before[1], age)
        return (True, "") if waited >= self.settle else (False, f"settling ({waited:.0f}/{self.settle:g} s)")
