"""What a local checkpoint holds, cheaply: its identity beyond its path.

Trainers overwrite ``checkpoint-latest/`` and re-exported checkpoints keep their names, so a path alone does
not say which weights answered. The identity is every weight file's size and modification time plus a digest
of what distinguishes one checkpoint from another without reading gigabytes: a GGUF file's first MiB (the
header, metadata and tensor table of a small model) and 16 blocks of 4 KiB spread over the tensor data; a
safetensors shard's header (its tensor table) and the same spread of blocks; ``model.safetensors.index.json``
and ``config.json`` whole. Reading it costs a few MiB whatever the checkpoint's size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth")
WHOLE_FILES = ("config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json")
HEAD_BYTES = 1 << 20
BLOCK = 4096
BLOCKS = 16
MAX_HEADER = 64 << 20
"""A safetensors header larger than this is not believed (the format's own reader caps it at 100 MB)."""


def weight_files(path: Path) -> list[Path]:
    """The files that make up a checkpoint: the file itself, or a folder's weight files and index/config."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    found = [p for p in path.iterdir() if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name in WHOLE_FILES)]
    return sorted(found, key=lambda p: p.name)


def _spread(fh: Any, size: int, start: int, digest: Any) -> None:
    """16 blocks of 4 KiB at evenly spaced offsets between `start` and the end of the file."""
    span = max(size - start - BLOCK, 0)
    for k in range(BLOCKS):
        fh.seek(start + span * k // max(BLOCKS - 1, 1))
        digest.update(fh.read(BLOCK))


def _digest_file(path: Path, size: int, digest: Any) -> None:
    with path.open("rb") as fh:
        if path.name in WHOLE_FILES:
            digest.update(fh.read(MAX_HEADER))
            return
        start = HEAD_BYTES
        if path.suffix == ".safetensors" and size >= 8:
            (length,) = struct.unpack("<Q", fh.read(8))
            start = 8 + min(length, MAX_HEADER, max(size - 8, 0))
            fh.seek(0)
        digest.update(fh.read(min(start, size)))
        if size > start:
            _spread(fh, size, start, digest)


def content_identity(model: str) -> str | None:
    """A short line naming the checkpoint's content (digest, files, bytes, newest modification), or None for
    something that is not a local file or folder (a served name, the embedded model's name)."""
    path = Path(model)
    files = weight_files(path)
    if not files:
        return None
    digest = hashlib.sha256()
    total, newest = 0, 0
    for file in files:
        try:
            stat = file.stat()
            digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
            _digest_file(file, stat.st_size, digest)
        except OSError as exc:  # a shard removed while we read: the checkpoint is not what it was
            digest.update(f"{file.name}\0unreadable {exc.errno}\0".encode())
            continue
        total += stat.st_size
        newest = max(newest, stat.st_mtime_ns)
    when = dt.datetime.fromtimestamp(newest / 1e9, dt.timezone.utc).isoformat(timespec="seconds")
    count = f"{len(files)} file{'s' if len(files) != 1 else ''}"
    return f"sha256:{digest.hexdigest()[:16]} ({count}, {total} bytes, newest {when})"
