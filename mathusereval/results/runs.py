"""Reading stored runs: the one reading path of every reader (leaderboard, ``results.load``, ``export``,
``agreement``, ``verify``).

A run is the directory of one (model, task) run, or the ``shard-I-of-N`` directories of one run split with
``--shard`` (read together as one run: metrics over the union of their records, the whole task's items as
the expected count, so a missing shard makes it partial). A shard folder is read only when it is named
exactly ``shard-I-of-N`` after the shard its manifest records, with the one N of its siblings, and holds
only items of that shard; a copy (``shard-1-of-2.bak``), a renamed folder or one holding another shard's
items is named on stderr and left out, so it never counts twice. Metrics and counts are recomputed from the
records with the task's own aggregation (`mathusereval.results.scoring`) when the task is installed, and
read from ``summary.json`` otherwise. Reading never changes a run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..data.shards import parse_shard, shard_directory_name, shard_of
from ..errors import ConfigError, MueError
from ..plugins import registry
from ..records import Generation, Grade, MetricValue, RunCounts, RunManifest, RunResult, Sample, safe_name
from ..store import MANIFEST, RunStore
from ..store.integrity import Verdict, check_run
from .labels import label_runs
from .scoring import compute_metrics, count_outcomes

RunParts = tuple[Path, ...]
"""The record directories of one run: one directory, or its shards."""
SHARD_FOLDER = re.compile(r"shard-(\d{1,9})-of-(\d{1,9})")


def _run_folders(root: Path, said: list[str]) -> list[Path]:
    """Every folder below `root` holding a manifest, never through a symbolic link (a linked run is said)."""
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=False):
        here = Path(folder)
        if MANIFEST in files:
            found.append(here)
        for name in list(subfolders):
            if (here / name).is_symlink():
                subfolders.remove(name)
                if (here / name / MANIFEST).exists() or any((here / name).glob(f"*/{MANIFEST}")):
                    said.append(f"{here / name} is a symbolic link; runs are read only from real folders")
    return sorted(found)


def _linked(path: Path, root: Path) -> bool:
    """Whether `path` or a folder between it and `root` is a symbolic link (which could lead anywhere)."""
    current = path
    while True:
        if current.is_symlink():
            return True
        if current == root or current.parent == current:
            return False
        current = current.parent


def find_runs(path: Path, problems: list[str] | None = None) -> list[RunParts]:
    """The runs at `path`: the run itself when it is a run (or the parent of its shards), else every run
    below it, shards grouped by their parent and shard count, sorted. A run reached through a symbolic link
    is left out (and said in `problems`, or on stderr)."""
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"{path} does not exist")
    said: list[str] = [] if problems is None else problems
    singles: list[Path] = []
    shards: dict[Path, list[tuple[Path, RunManifest]]] = {}
    candidates = [path] if (path / MANIFEST).is_file() else _run_folders(path, said)
    for directory in candidates:
        if _linked(directory, path) or (path.is_symlink() and directory == path):
            said.append(f"{directory} is a symbolic link (or inside one); runs are read only from real folders")
            continue
        try:
            manifest = RunStore(directory).existing_manifest()
        except MueError as exc:
            said.append(str(exc))
            continue
        if manifest is not None and manifest.shard:
            shards.setdefault(directory.parent, []).append((directory, manifest))
        else:
            singles.append(directory)
    runs: list[RunParts] = [(d,) for d in singles]
    for _, members in sorted(shards.items()):
        kept = _true_shards(members, said)
        if kept:
            runs.append(_compatible_shards(kept, said))
    if problems is None:
        for problem in said:
            print(f"mue-eval: warning: skipped a run: {problem}", file=sys.stderr)
    if not runs and (problems is None or not said):  # a caller collecting problems reports them itself
        raise ConfigError(f"no runs under {path} ({'none readable' if said else f'no {MANIFEST} found'})")
    return runs


def _shard_of_manifest(manifest: RunManifest) -> tuple[int, int] | None:
    try:
        return parse_shard(manifest.shard)
    except ConfigError:
        return None


def _true_shards(members: list[tuple[Path, RunManifest]], said: list[str]) -> list[tuple[Path, str]]:
    """The shard folders of one parent that may be read as one run: named exactly ``shard-I-of-N`` after
    their manifest's shard, of the most common N among them, holding only items of shard I. Each other is
    named in `said` and left out (a copy would count its items twice)."""
    named: list[tuple[Path, RunManifest, int, int]] = []
    for directory, manifest in members:
        shard = _shard_of_manifest(manifest)
        if shard is None or directory.name != shard_directory_name(*shard):
            said.append(
                f"{directory}: its manifest says shard {manifest.shard!r}, and a shard folder must be named exactly "
                f"{shard_directory_name(*shard) if shard else 'shard-I-of-N'}; left out of the run"
            )
            continue
        named.append((directory, manifest, *shard))
    if not named:
        return []
    counts: dict[int, int] = {}
    for *_, count in named:
        counts[count] = counts.get(count, 0) + 1
    total = max(counts, key=lambda c: (counts[c], -c))
    kept: list[tuple[Path, str]] = []
    for directory, manifest, index, count in named:
        if count != total:
            said.append(f"{directory}: a shard of {count} beside shards of {total} in one folder; left out of the run")
            continue
        try:
            stray = [sid for sid in RunStore(directory).samples() if shard_of(manifest.task, sid, count) != index]
        except MueError as exc:
            said.append(str(exc))
            continue
        if stray:
            said.append(
                f"{directory}: holds {len(stray)} items of other shards (e.g. {stray[0]!r}), not only shard "
                f"{index} of {count}; left out of the run"
            )
            continue
        kept.append((directory, manifest.fingerprint))
    return kept


def _compatible_shards(members: list[tuple[Path, str]], said: list[str]) -> RunParts:
    """The shards of one run that share the most common settings (shown together, as partial if one is
    missing); each shard run with other settings is left out and named."""
    counts: dict[str, int] = {}
    for _, fingerprint in members:
        counts[fingerprint] = counts.get(fingerprint, 0) + 1
    common = max(counts, key=lambda f: (counts[f], -min(i for i, (_, g) in enumerate(members) if g == f)))
    for directory, fingerprint in members:
        if fingerprint != common:
            said.append(f"{directory}: this shard was run with other settings than its siblings; left out of the run")
    return tuple(d for d, f in members if f == common)


def read_manifest(parts: RunParts) -> RunManifest:
    """The manifest of a run (of its first shard, with the run id of the whole run)."""
    manifests = []
    for directory in parts:
        manifest = RunStore(directory).existing_manifest()
        if manifest is None:
            raise ConfigError(f"{directory} is not a run directory (no {MANIFEST})")
        manifests.append(manifest)
    first = manifests[0]
    if len(parts) == 1 and not first.shard:
        return first
    if len({m.fingerprint for m in manifests}) > 1:
        odd = [str(d) for d, m in zip(parts, manifests, strict=True) if m.fingerprint != first.fingerprint]
        raise ConfigError(
            f"{parts[0].parent}: its shards were run with different settings ({', '.join(odd)} differ from "
            f"{parts[0]}); not merged"
        )
    return dataclasses.replace(first, run_id=first.run_id.rsplit("/", 1)[0])


def run_directory_of(parts: RunParts) -> Path:
    """Where a run is: its directory, or the folder holding its shards."""
    return parts[0].parent if len(parts) > 1 or _is_shard(parts[0]) else parts[0]


def _is_shard(directory: Path) -> bool:
    match = SHARD_FOLDER.fullmatch(directory.name)
    return match is not None and directory.name == shard_directory_name(int(match[1]), int(match[2]))


def load_run(parts: RunParts | Path, parity: str = "none") -> RunResult:
    """One stored run with its metrics and counts recomputed from its records (``parity="upstream"``: judge
    scores aggregated the upstream way, -1 for unparseable replies)."""
    parts = (parts,) if isinstance(parts, Path) else tuple(parts)
    manifest = read_manifest(parts)
    stores = [RunStore(d) for d in parts]
    directory = run_directory_of(parts)
    last = stores[0].existing_summary() if len(parts) == 1 else None

    def result(metrics: tuple[MetricValue, ...], counts: RunCounts) -> RunResult:
        # what the records cannot tell (judge usage, cost, a budget stop) comes from the run's own summary
        return RunResult(
            manifest,
            directory,
            metrics,
            counts,
            judge_usage=last.judge_usage if last else {},
            cost_usd=last.cost_usd if last else None,
            parts=parts if directory != parts[0] else (),
            stopped=last.stopped if last else None,
        )

    try:
        task = registry.lookup("tasks", manifest.task)
        names = manifest.graders or task.graders
        for name in names:
            registry.lookup("graders", name)
    except ConfigError:
        if len(parts) > 1:
            raise ConfigError(f"{directory}: task {manifest.task!r} is not installed; sharded runs need it") from None
        if last is None:  # neither the task nor a summary: nothing to show
            raise ConfigError(f"{directory}: task {manifest.task!r} is not installed and the run has no summary")
        return result(last.metrics, last.counts)
    samples = [sample for store in stores for sample in store.samples().values()]
    grades = {key: grade for store in stores for key, grade in store.grades().items()}
    generations = {key: gen for store in stores for key, gen in store.generation_index().items()}
    n = int(manifest.params.get("n", 1))
    items = max(manifest.shard_items, len(samples)) if manifest.shard else None
    metrics = compute_metrics(task, names, samples, grades, n, parity)
    return result(metrics, count_outcomes(names, samples, generations, grades, n, parity, items))


def collect_runs(results: Path, parity: str = "none") -> tuple[list[RunResult], list[str]]:
    """Every readable run below `results`, plus one message per run that could not be read."""
    problems: list[str] = []
    runs: list[RunResult] = []
    for parts in find_runs(results, problems):
        try:
            runs.append(load_run(parts, parity))
        except MueError as exc:
            problems.append(str(exc))
    for records in sorted(results.glob("**/generations.jsonl")):  # a run whose manifest was deleted
        if not (records.parent / MANIFEST).exists():
            problems.append(f"{records.parent}: answers but no {MANIFEST} (deleted or never written); not shown")
    return label_runs(runs), problems


def verify_run(directory: Path) -> Verdict:
    """Digest chains and ``summary.json`` of one run directory (one shard counts as its own directory)
    against the metrics recomputed from its own records. Records that cannot be read back leave the run
    unchecked (`Verdict.unchecked`) unless the digests show the edit."""
    try:
        summary = RunStore(directory).existing_summary()
        run = load_run((directory,), summary.parity if summary else "none")
    except MueError as exc:
        # the digests, seals and checkpoint are checked all the same: a line edited by hand shows there
        verdict = check_run(directory, ())
        verdict.unchecked.append(f"{directory}: its records cannot be read back to check its summary ({exc})")
        return verdict
    return check_run(directory, run.metrics, run.counts)


def verify_paths(paths: list[Path]) -> list[Verdict]:
    """``mue-eval verify``: the verdict on every run directory (every shard) at or below `paths`; the first
    shard of a run also names the run's shards that are not there."""
    verdicts = []
    for path in paths:
        for parts in find_runs(path):
            run_verdicts = [verify_run(d) for d in parts]
            run_verdicts[0].missing.extend(missing_shards(parts))
            verdicts.extend(run_verdicts)
    return verdicts


def missing_shards(parts: RunParts) -> list[str]:
    """The ``shard-I-of-N`` directory names of a sharded run that are not among its parts."""
    if not _is_shard(parts[0]):
        return []
    total = parts[0].name.rsplit("-of-", 1)[1]
    present = {d.name for d in parts}
    wanted = [f"shard-{i}-of-{total}" for i in range(int(total))] if total.isdigit() else []
    return [name for name in wanted if name not in present]


@dataclass(frozen=True)
class StoredAnswer:
    """One answer slot of a run: the sample, its `n_index`-th generation (None if never generated), and the
    grades of that generation by grader name."""

    manifest: RunManifest
    directory: Path
    sample: Sample
    n_index: int
    generation: Generation | None
    grades: dict[str, Grade] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.sample.group


def iter_answers(parts: RunParts | Path) -> Iterator[StoredAnswer]:
    """Every answer slot the run asked for (each sample x ``params.n``), in sample order, shard by shard.
    Answer texts are read back one at a time, so memory does not grow with the answers a run holds."""
    parts = (parts,) if isinstance(parts, Path) else tuple(parts)
    manifest = read_manifest(parts)
    n = int(manifest.params.get("n", 1))
    for directory in parts:
        store = RunStore(directory)
        index = store.generation_index()
        grades: dict[tuple[str, int], dict[str, Grade]] = {}
        for (sid, k, grader), grade in store.grades().items():
            grades.setdefault((sid, k), {})[grader] = grade
        for sample in store.samples().values():
            for k in range(n):
                key = (sample.id, k)
                generation = store.load_generation(key) if key in index else None
                yield StoredAnswer(manifest, directory, sample, k, generation, grades.get(key, {}))


def run_page_name(manifest: RunManifest, directory: Path) -> str:
    """The file name of a run's sample-level page (``runs/<name>.html`` of ``leaderboard --out``): readable,
    and unique through a hash of where the run is (two trees may hold runs with the same run id)."""
    readable = safe_name(f"{manifest.label}__{manifest.task}")
    where = f"{manifest.run_id}\0{directory.resolve()}"
    return f"{readable}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"
