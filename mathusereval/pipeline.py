"""Orchestration: task -> samples -> backend -> generations -> graders -> grades -> metrics.

Everything a run produces is written through the `RunStore` as it happens, so a run that is killed and
started again with the same settings re-uses every finished generation and grade and does only the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import registry
from .__about__ import __version__
from .backends import Backend, ModelSpec
from .errors import ConfigError, DataError
from .progress import Progress
from .records import Generation, GenerationParams, Grade, MetricValue, Request, RunManifest, Sample
from .store import RunStore, run_directory
from .task import LoadedData, Task

Grader = Callable[[Sample, Generation], Grade]


@dataclass(frozen=True)
class RunOptions:
    """Per-invocation settings that do not change what a model is asked (except `overrides`)."""

    out: Path = Path("results")
    data_dir: Path | None = None
    limit: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


@dataclass(frozen=True)
class RunResult:
    manifest: RunManifest
    directory: Path
    metrics: list[MetricValue]
    counts: dict[str, int]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _host() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "hostname": platform.node(),
    }


def select_samples(task: Task, loaded: LoadedData, limit: int | None) -> list[Sample]:
    seen: set[str] = set()
    for sample in loaded.samples:
        if sample.id in seen:
            raise DataError(f"{loaded.source}: task {task.name!r} has duplicate sample id {sample.id!r}")
        seen.add(sample.id)
    return loaded.samples[:limit] if limit is not None else loaded.samples


def build_manifest(
    task: Task, spec: ModelSpec, backend: Backend, params: GenerationParams, loaded: LoadedData
) -> RunManifest:
    identity = {
        "task": task.name,
        "task_version": task.version,
        "data_sha256": loaded.sha256,
        "prompt_sha256": task.prompt_sha256,
        "backend": spec.backend,
        "model": spec.model,
        "params": params.to_json(),
    }
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return RunManifest(
        run_id=f"{spec.slug}/{task.name}",
        task=task.name,
        task_version=task.version,
        model=spec.model,
        backend=spec.backend,
        backend_config=backend.describe(),
        params=params.to_json(),
        data_sha256=loaded.sha256,
        prompt_sha256=task.prompt_sha256,
        fingerprint=fingerprint,
        mathusereval_version=__version__,
        started_at=_now(),
        host=_host(),
        versions={"python": sys.version.split()[0], "mathusereval": __version__},
        graders=task.graders,
    )


def _safe_grade(grader_name: str, grader: Grader, sample: Sample, generation: Generation) -> Grade:
    """A grader that crashes yields an error grade (counted, never scored), not a crashed run."""
    try:
        return grader(sample, generation)
    except Exception as exc:  # graders see hostile model output; one bad item must not stop the run
        return Grade(
            sample_id=sample.id,
            n_index=generation.n_index,
            grader=grader_name,
            score=None,
            error=f"{exc.__class__.__name__}: {exc}",
        )


def summarize(
    task: Task,
    samples: Sequence[Sample],
    generations: dict[tuple[str, int], Generation],
    grades: dict[tuple[str, int, str], Grade],
    n: int,
) -> tuple[list[MetricValue], dict[str, int]]:
    """Metrics from the primary grader's grades plus the counts a reader needs to trust them."""
    ids = {s.id for s in samples}
    wanted = [(s.id, k) for s in samples for k in range(n)]
    gens = [generations[key] for key in wanted if key in generations]
    primary = task.graders[0]
    primary_grades = [g for (sid, k, name), g in grades.items() if name == primary and sid in ids and k < n]
    counts = {
        "samples": len(samples),
        "generations": sum(g.ok for g in gens),
        "errors": sum(not g.ok for g in gens),
        "missing": len(wanted) - len(gens),
        "truncated": sum(g.ok and g.finish_reason == "length" for g in gens),
        "graded": sum(g.score is not None for g in primary_grades),
        "grader_errors": sum(g.error is not None for g in primary_grades),
        "prompt_tokens": sum(g.usage.prompt_tokens for g in gens),
        "completion_tokens": sum(g.usage.completion_tokens for g in gens),
    }
    return task.aggregate(samples, primary_grades), counts


def _group_by_params(
    requests: Sequence[Request], params: GenerationParams, overrides: dict[str, Any]
) -> dict[GenerationParams, list[Request]]:
    """Split requests by their effective settings: a task may fix a sample's temperature in its metadata
    (AlignBench samples by category), unless the user set ``--temperature`` explicitly."""
    groups: dict[GenerationParams, list[Request]] = {}
    for request in requests:
        effective = params
        if "temperature" in request.sample.metadata and "temperature" not in overrides:
            effective = dataclasses.replace(params, temperature=float(request.sample.metadata["temperature"]))
        groups.setdefault(effective, []).append(request)
    return groups


def _grade_backlog(
    graders: dict[str, Grader],
    items: list[tuple[Sample, Generation]],
    grades: dict[tuple[str, int, str], Grade],
    store: RunStore,
) -> None:
    """Graders that can grade many items at once (``grade_batch``, e.g. on all cores) take the backlog
    of a resumed run in one call; the rest are graded item by item as before."""
    for name, grader in graders.items():
        batch = getattr(grader, "grade_batch", None)
        todo = [(s, g) for s, g in items if (s.id, g.n_index, name) not in grades]
        if batch is None or len(todo) < 2:
            continue
        try:
            results: list[Grade] = batch(todo)
        except Exception:  # noqa: BLE001 - fall back to one-by-one grading, which records per-item errors
            continue
        for grade in results:
            grades[(grade.sample_id, grade.n_index, name)] = grade
            store.add_grade(grade)


async def run_task(task: Task, spec: ModelSpec, backend: Backend, options: RunOptions) -> RunResult:
    """Evaluate one model on one task, resuming whatever an earlier identical run left."""
    loaded = task.load(options.data_dir)
    samples = select_samples(task, loaded, options.limit)
    params = dataclasses.replace(task.params, **options.overrides)
    manifest = build_manifest(task, spec, backend, params, loaded)
    store = RunStore(run_directory(options.out, spec.slug, task.name))
    previous = store.check_compatible(manifest)
    if previous is not None:
        manifest = dataclasses.replace(manifest, started_at=previous.started_at)
    graders: dict[str, Grader] = {name: registry.lookup("graders", name) for name in task.graders}
    store.write_manifest(manifest)
    store.open()
    try:
        stored_ids = set(store.samples())
        for sample in samples:
            if sample.id not in stored_ids:
                store.add_sample(sample)
        generations, grades = store.generations(), store.grades()
        by_id = {s.id: s for s in samples}
        todo = [
            Request(s, k)
            for s in samples
            for k in range(params.n)
            if not ((s.id, k) in generations and generations[(s.id, k)].ok)
        ]
        ungraded = [
            (by_id[sid], g)
            for (sid, k), g in generations.items()
            if sid in by_id and k < params.n and g.ok and any((sid, k, n) not in grades for n in graders)
        ]

        def grade(sample: Sample, generation: Generation) -> None:
            for name, grader in graders.items():
                key = (sample.id, generation.n_index, name)
                if key not in grades:
                    grades[key] = _safe_grade(name, grader, sample, generation)
                    store.add_grade(grades[key])

        with Progress(options.progress, f"{spec.slug}/{task.name}") as bars:
            bars.add("generate", len(todo))
            bars.add("grade", len(todo) + len(ungraded))
            _grade_backlog(graders, ungraded, grades, store)
            for sample, generation in ungraded:
                grade(sample, generation)
                bars.advance("grade")
            for group_params, group in _group_by_params(todo, params, options.overrides).items():
                async for generation in backend.generate(group, group_params):
                    store.add_generation(generation)
                    generations[(generation.sample_id, generation.n_index)] = generation
                    bars.advance("generate")
                    if generation.ok:
                        # Off the event loop: a pair that needs the sandboxed sympy stage can take
                        # seconds, and the backend's in-flight requests must keep moving meanwhile.
                        await asyncio.to_thread(grade, by_id[generation.sample_id], generation)
                    bars.advance("grade")
        metrics, counts = summarize(task, samples, generations, grades, params.n)
        counts["reused"] = len(samples) * params.n - len(todo)
        manifest = dataclasses.replace(manifest, finished_at=_now())
        store.write_manifest(manifest)
        store.write_summary(
            {
                "run_id": manifest.run_id,
                "task": task.name,
                "model": spec.model,
                "metrics": [m.to_json() for m in metrics],
                "counts": counts,
                "finished_at": manifest.finished_at,
            }
        )
    finally:
        store.close()
    return RunResult(manifest=manifest, directory=store.dir, metrics=metrics, counts=counts)


async def evaluate(
    *,
    model: str | None,
    backend: str | None,
    base_url: str | None,
    backend_options: dict[str, Any],
    task_names: Sequence[str],
    out: Path,
    data_dir: Path | None,
    limit: int | None,
    overrides: dict[str, Any],
    progress: bool = True,
) -> int:
    """The ``mue-eval run`` command: every task on one model, then the leaderboard of these runs."""
    from .backends import resolve_model
    from .leaderboard import build_table, print_table

    tasks: list[Task] = [registry.lookup("tasks", name) for name in task_names]  # unknown names fail first
    available = registry.names("graders")
    for task in tasks:
        for grader in task.graders:
            if grader not in available:
                raise ConfigError(
                    f"task {task.name!r} is scored by grader {grader!r}, which is not installed "
                    f"(available graders: {', '.join(available)})"
                )
    spec = resolve_model(model, backend, base_url, backend_options)
    engine: Backend = registry.lookup("backends", spec.backend)(spec)
    options = RunOptions(out=out, data_dir=data_dir, limit=limit, overrides=overrides, progress=progress)
    results: list[RunResult] = []
    try:
        check = getattr(engine, "check_reachable", None)
        if check is not None:
            await check()
        for task in tasks:
            result = await run_task(task, spec, engine, options)
            results.append(result)
            c = result.counts
            print(
                f"{result.manifest.run_id}: {c['generations']} answers ({c['reused']} reused), "
                f"{c['errors']} errors, {c['truncated']} truncated -> {result.directory}",
                file=sys.stderr,
            )
    finally:
        await engine.aclose()
    print_table(build_table(results))
    return 1 if any(r.counts["errors"] for r in results) else 0
