"""Shards: one task split over N independent jobs (Slurm arrays, Kubernetes Jobs), read back as one run.

``mue-eval --shard I/N`` runs the samples whose stable hash (task name and sample id) falls in shard I of N,
in its own directory ``<out>/<model>/<task>/shard-I-of-N``, so N jobs on a shared filesystem cover the
task exactly once without writing the same files, and each resumes on its own. The partition does not
depend on ``--limit`` or on the order of the data. Each shard's manifest records the shard and how many
items the whole task has, so the leaderboard (and `mue-eval merge`) can show the shards as one run and
say when one is missing or unfinished (partial, with the n it has).
"""

from __future__ import annotations

import hashlib
import re

from ..errors import ConfigError

_SHARD = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> (2, 8); 0 <= I < N."""
    match = _SHARD.match(text.strip())
    if match is None:
        raise ConfigError(f"--shard wants I/N (0 <= I < N), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if not 0 <= index < count:
        raise ConfigError(f"--shard {text}: I must be 0 <= I < N")
    return index, count


def shard_of(task: str, sample_id: str, count: int) -> int:
    """The shard a sample belongs to: a hash of task and id, so it is the same in every job and rerun."""
    digest = hashlib.sha256(f"{task}\0{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_directory_name(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"
