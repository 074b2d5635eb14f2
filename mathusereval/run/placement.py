"""Where a run lives: one directory per run identity, never shared by two models.

``<out>/<model>/<task>``, where ``<model>`` is ``--name`` or the model's name (`ModelSpec.slug`); a
checkpoint's file in a numbered folder (``checkpoint-200/model.gguf``) is named with its folder
(``checkpoint-200-model``) whatever the order the checkpoints run in. Two local models with the same file
name (``ck1/model.gguf``, ``ck2/model.gguf``) must not share a directory: a model name already taken in
``<out>`` by another model gets its parent folders' names in front (``ck2-model``), and, past three levels, a
hash of its path. The same model with other settings in the same directory is
refused by the store (`RunStore.check_compatible`), naming what changed; so are other graders or another
judge on ``run`` (re-judging stored answers is ``mue-eval grade``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..backends import ModelSpec
from ..data.shards import shard_directory_name, shard_of
from ..errors import ConfigError, MueError
from ..plugins.task import Task
from ..records import LOCAL_BACKENDS, RunManifest, Sample, safe_name
from ..store import MANIFEST, RunStore, run_directory


def _candidates(spec: ModelSpec) -> Iterator[str]:
    parents = [p for p in Path(os.path.abspath(spec.model)).parent.parts if p not in ("/", "")]
    local = spec.backend in LOCAL_BACKENDS and Path(spec.model).exists()
    if local and parents and _numbered(parents[-1]) and not _same_numbers(parents[-1], spec.slug):
        # a checkpoint's file in a numbered folder (checkpoint-200/model.gguf): named by its folder always,
        # so which checkpoint a directory holds does not depend on which ran first
        yield safe_name(f"{parents[-1]}-{spec.slug}", "model")
    yield spec.slug
    if spec.backend in LOCAL_BACKENDS:
        for depth in range(1, 4):
            if len(parents) >= depth:
                yield safe_name("-".join([*parents[-depth:], spec.slug]), "model")
    yield f"{spec.slug}-{hashlib.sha256(f'{spec.backend}:{spec.model}'.encode()).hexdigest()[:8]}"


def _taken_by_another(folder: Path, spec: ModelSpec) -> bool:
    """Whether some run under `folder` is of another model (or was named with ``--name``)."""
    for path in folder.glob(f"**/{MANIFEST}"):
        try:
            manifest = RunStore(path.parent).existing_manifest()
        except MueError:
            return True  # unreadable: not ours to share
        if manifest is not None and (manifest.name or (manifest.backend, manifest.model) != (spec.backend, spec.model)):
            return True
    return False


def _numbered(name: str) -> bool:
    return any(c.isdigit() for c in name)


def _same_numbers(folder: str, slug: str) -> bool:
    """Whether the file's own name carries its folder's numbers (``ckpt-200/ckpt-200.gguf``): then the folder
    adds nothing. ``checkpoint-200/SmolLM2-135M.gguf`` does not: its numbers are the model's, not the step."""
    return set(re.findall(r"\d+", folder)) <= set(re.findall(r"\d+", slug))


def _holds(folder: Path, spec: ModelSpec) -> bool:
    """Whether runs of this very model are under `folder` (and of no other): a resume finds them there."""
    return any(folder.glob(f"**/{MANIFEST}")) and not _taken_by_another(folder, spec)


def model_directory(out: Path, spec: ModelSpec, name: str) -> str:
    """The ``<model>`` part of the run's directory (see the module docstring)."""
    if name:
        return safe_name(name, "model")
    candidates = list(dict.fromkeys(_candidates(spec)))
    for slug in candidates:  # where this model's runs already are (also from before the folder rule)
        if _holds(out / slug, spec):
            return slug
    for slug in candidates:
        if not _taken_by_another(out / slug, spec):
            return slug
    raise ConfigError(f"{out}: no free directory for {spec.model} (pass --name)")  # pragma: no cover - hash taken


def place(
    task: Task,
    spec: ModelSpec,
    out: Path,
    name: str,
    shard: tuple[int, int] | None,
    samples: list[Sample],
    manifest: RunManifest,
) -> tuple[Path, list[Sample], RunManifest]:
    """The run's directory, its samples and manifest; with ``--shard I/N`` narrowed to that shard."""
    slug = model_directory(out, spec, name)
    directory = run_directory(out, slug, task.name)
    manifest = dataclasses.replace(manifest, run_id=f"{slug}/{task.name}")
    if shard is None:
        return directory, samples, manifest
    index, count = shard
    folder = shard_directory_name(index, count)
    manifest = dataclasses.replace(
        manifest, shard=f"{index}/{count}", shard_items=len(samples), run_id=f"{manifest.run_id}/{folder}"
    )
    check_siblings(directory, folder, count, manifest)
    return directory / folder, [s for s in samples if shard_of(task.name, s.id, count) == index], manifest


def check_siblings(directory: Path, folder: str, count: int, manifest: RunManifest) -> None:
    """A shard started with other settings than the shards of its run already there is refused now (the
    leaderboard could not show them as one run), naming the sibling and what differs."""
    for index in range(count):
        sibling = directory / shard_directory_name(index, count)
        if sibling.name == folder or not (sibling / MANIFEST).is_file():
            continue
        try:
            other = RunStore(sibling).existing_manifest()
        except MueError:
            continue
        if other is not None and other.fingerprint != manifest.fingerprint:
            differ = [k for k in ("params", "settings", "model", "data_sha256", "prompt_sha256")
                      if getattr(other, k) != getattr(manifest, k)]  # fmt: skip
            raise ConfigError(
                f"{directory / folder}: its sibling shard {sibling} was run with other settings "
                f"({', '.join(differ) or 'fingerprint'} differ); every shard of a run needs the same settings"
            )


def run_location(task: Task, spec: ModelSpec, out: Path, name: str, shard: tuple[int, int] | None) -> Path:
    """The directory `place` will choose, without loading anything (to check its lock before any call)."""
    directory = run_directory(out, model_directory(out, spec, name), task.name)
    return directory / shard_directory_name(*shard) if shard is not None else directory


def _judge_of(manifest: RunManifest, grader: str) -> tuple[object, object]:
    judge = manifest.judges.get(grader) or {}
    return judge.get("judge_model"), judge.get("prompt_sha256")


def check_same_grading(directory: Path, manifest: RunManifest) -> None:
    """``run`` into a directory graded by other graders or another judge is refused, naming the change."""
    old = RunStore(directory).existing_manifest()
    if old is None or old.fingerprint != manifest.fingerprint:
        return  # a new run, or the store refuses it with the settings that changed
    changed = []
    if tuple(old.graders) != tuple(manifest.graders):
        changed.append(f"graders: {','.join(old.graders)} -> {','.join(manifest.graders)}")
    for grader in manifest.judges:
        if grader in old.judges and _judge_of(old, grader) != _judge_of(manifest, grader):
            changed.append(f"judge of {grader}: {_judge_of(old, grader)[0]} -> {_judge_of(manifest, grader)[0]}")
    if changed:
        raise ConfigError(
            f"{directory} was graded differently ({'; '.join(changed)}); nothing was sent or overwritten: "
            f"re-grade these answers in place with `mue-eval grade {directory} ...`, or keep both runs with --name"
        )
