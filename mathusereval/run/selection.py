"""Which items a run evaluates: all of them, a representative ``--limit N`` subset, or ``--sample-ids FILE``.

``--limit N`` on a task whose items have groups (category, subcategory, subject, level:
`mathusereval.records.GROUP_KEYS`) takes a subset spread over the groups: every group gets an item while N
allows, and past that each group's share of the subset follows its share of the task. The order behind it
is one fixed ranking of all items (a hash of task and item id within each group), so the subset is the same
on every run and machine, and a larger ``--limit`` contains the smaller one's items: raising it resumes.
AlignBench's file is sorted by category, so its first 5 rows are one category; the spread subset covers 5.
``--limit-order file`` takes the first N rows instead; tasks without groups always do.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, DataError, one_line
from ..plugins.task import LoadedData, Task
from ..records import GROUP_KEYS, Sample
from .choices import LIMIT_ORDERS


def stratum(sample: Sample) -> tuple[str, ...]:
    """The finest group an item belongs to (all its group keys), or () when it has none."""
    return tuple(str(sample.metadata[k]) for k in GROUP_KEYS if sample.metadata.get(k) not in (None, ""))


def _rank(task: str, sample: Sample) -> str:
    return hashlib.sha256(f"{task}\0{sample.id}".encode()).hexdigest()


def spread_order(task: str, samples: Sequence[Sample]) -> list[Sample]:
    """All items in the order ``--limit`` takes them: first one item of each top-level group (a category),
    then one of each finer group (its subcategories), largest first; then the rest so that every prefix is
    as close to proportional as the counts allow (the k-th item of a group of size m stands at (k + 0.5) / m)."""
    groups: dict[tuple[str, ...], list[Sample]] = {}
    for sample in samples:
        groups.setdefault(stratum(sample), []).append(sample)
    for members in groups.values():
        members.sort(key=lambda s: _rank(task, s))
    tops: dict[str, int] = {}
    for group, members in groups.items():
        tops[group[0] if group else ""] = tops.get(group[0] if group else "", 0) + len(members)
    by_size = sorted(groups, key=lambda g: (-len(groups[g]), g))
    leaders: dict[str, tuple[str, ...]] = {}
    for group in by_size:  # each top-level group's largest finer group leads
        leaders.setdefault(group[0] if group else "", group)
    firsts = sorted(leaders.values(), key=lambda g: (-tops[g[0] if g else ""], g))
    firsts += [g for g in by_size if g not in firsts]
    head = [groups[g][0] for g in firsts]
    rest = [(((k + 0.5) / len(m)), g, k) for g, m in groups.items() for k in range(1, len(m))]
    return head + [groups[g][k] for _, g, k in sorted(rest)]


MAX_ID_FILE_BYTES = 64 << 20
MAX_ID_CHARS = 512


def read_sample_ids(path: Path) -> list[str]:
    """``--sample-ids FILE``: one id per line (blank lines and ``#`` comments skipped). Messages about the file
    never quote it: it may be any file (``/etc/shadow``), so they name its lines by number (issue 35)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_ID_FILE_BYTES + 1)
    except OSError as exc:
        raise DataError(f"--sample-ids {path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    if len(data) > MAX_ID_FILE_BYTES:
        raise DataError(f"--sample-ids {path}: larger than {MAX_ID_FILE_BYTES >> 20} MiB; not a file of sample ids")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"--sample-ids {path}: not UTF-8 text (byte {exc.start}); not a file of sample ids") from None
    for lineno, line in enumerate(lines, start=1):
        if len(line.strip()) > MAX_ID_CHARS or "\0" in line:
            raise DataError(f"--sample-ids {path}:{lineno}: not a sample id ({len(line)} characters, not shown)")
    ids = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise DataError(f"--sample-ids {path}: no ids in the file")
    return ids


def _check_unique(task: Task, loaded: LoadedData) -> None:
    """Duplicate ids are refused; repeated prompts are said once (they count twice)."""
    if not loaded.samples:
        raise DataError(f"{loaded.source}: task {task.name!r} has no items")
    seen: set[str] = set()
    prompts: dict[str, str] = {}
    repeats = []
    for sample in loaded.samples:
        if sample.id in seen:
            raise DataError(f"{loaded.source}: task {task.name!r} has duplicate sample id {sample.id!r}")
        seen.add(sample.id)
        # a digest, not the prompt: a task of long prompts (or a large --system-prompt) stays small here
        prompt = hashlib.sha256(json.dumps(sample.messages, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
        if prompt in prompts:
            repeats.append(f"{sample.id} (= {prompts[prompt]})")
        prompts.setdefault(prompt, sample.id)
    if repeats:
        print(
            f"mue-eval: warning: {loaded.source}: {len(repeats)} items of {task.name!r} repeat an earlier item's "
            f"prompt and count twice: {', '.join(repeats[:5])}{' ...' if len(repeats) > 5 else ''}",
            file=sys.stderr,
        )


def select_samples(
    task: Task,
    loaded: LoadedData,
    limit: int | None,
    order: str = "spread",
    sample_ids: tuple[Path, Sequence[str]] | None = None,
) -> list[Sample]:
    """The samples to run, in the task's own order: those `sample_ids` names (file, ids), else the first
    `limit` of the spread order (`spread_order`) or of the file."""
    if order not in LIMIT_ORDERS:
        raise ConfigError(f"--limit-order must be one of {', '.join(LIMIT_ORDERS)}, got {order!r}")
    _check_unique(task, loaded)
    samples = loaded.samples
    if sample_ids is not None:
        path, ids = sample_ids
        known = {s.id for s in samples}
        unknown = [i for i in ids if i not in known]
        if len(unknown) == len(ids):  # no id of this task at all: maybe not an id file, so none of it is shown
            raise DataError(
                f"--sample-ids {path}: none of its {len(ids)} lines is an item id of {task.name!r} (lines not shown)"
            )
        if unknown:
            shown = ", ".join(repr(one_line(i)[:80]) for i in unknown[:5])
            raise DataError(f"--sample-ids {path}: {len(unknown)} ids are not items of {task.name!r}: {shown}")
        wanted = set(ids)
        samples = [s for s in samples if s.id in wanted]
    if limit is None or limit >= len(samples):
        return list(samples)
    if order == "file" or not any(stratum(s) for s in samples):
        return samples[:limit]
    chosen = {s.id for s in spread_order(task.name, samples)[:limit]}
    return [s for s in samples if s.id in chosen]
