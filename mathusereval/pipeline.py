"""Orchestration: task -> samples -> backend -> generations -> graders -> grades -> metrics.

Everything a run produces is written through the `RunStore` as it happens, so a run that is killed and
started again with the same settings re-uses every finished generation and grade and does only the rest.
Rule graders grade each answer as it streams in (on a worker thread); LLM judges (`mathusereval.judging`) judge once the
answers are in, through the judge backend. `regrade` runs the grading phases alone on a stored run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import registry
from .__about__ import __version__
from .backends import Backend, ModelSpec
from .backends.base import generation_stream, stop_sending
from .budget import Budget
from .errors import ConfigError, DataError
from .grading import Grading, StreamingRuleGrades, compute_metrics, count_outcomes, resolve_graders
from .judging import JudgeRole, JudgeUsage
from .postprocess import finalize, without_text
from .progress import Progress
from .records import GenerationParams, MetricValue, Request, RunManifest, Sample, Usage
from .shards import shard_directory_name, shard_of
from .store import RunStore, run_directory
from .task import LoadedData, Task, prompt_fingerprint


@dataclass(frozen=True)
class RunOptions:
    """Per-invocation settings that do not change what a model is asked (except `overrides`)."""

    out: Path = Path("results")
    data_dir: Path | None = None
    limit: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    graders: tuple[str, ...] | None = None
    """Replace the task's graders (``--graders``); the first is primary."""
    parity: str = "none"
    """``"upstream"``: aggregate judge scores the way upstream code does (-1 for unparseable replies)."""
    shard: tuple[int, int] | None = None
    """``--shard I/N``: run only shard I of N of each task, in its own directory (`mathusereval.shards`)."""


@dataclass(frozen=True)
class RunResult:
    manifest: RunManifest
    directory: Path
    metrics: list[MetricValue]
    counts: dict[str, int]
    judge_usage: dict[str, JudgeUsage] = field(default_factory=dict)
    cost_usd: float | None = None
    parts: tuple[Path, ...] = ()
    """The directories holding the run's records when they are not `directory` itself (a sharded run)."""
    stopped: str | None = None
    """Why generation stopped early (a spent ``--max-cost`` / ``--max-tokens-total``); None when it did not."""


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
    """The samples to run; duplicate ids are refused, repeated prompts said once (they count twice)."""
    if not loaded.samples:
        raise DataError(f"{loaded.source}: task {task.name!r} has no items")
    seen: set[str] = set()
    prompts: dict[str, str] = {}
    repeats = []
    for sample in loaded.samples:
        if sample.id in seen:
            raise DataError(f"{loaded.source}: task {task.name!r} has duplicate sample id {sample.id!r}")
        seen.add(sample.id)
        prompt = json.dumps(sample.messages, ensure_ascii=False, sort_keys=True)
        if prompt in prompts:
            repeats.append(f"{sample.id} (= {prompts[prompt]})")
        prompts.setdefault(prompt, sample.id)
    if repeats:
        print(
            f"mue-eval: warning: {loaded.source}: {len(repeats)} items of {task.name!r} repeat an earlier item's "
            f"prompt and count twice: {', '.join(repeats[:5])}{' ...' if len(repeats) > 5 else ''}",
            file=sys.stderr,
        )
    return loaded.samples[:limit] if limit is not None else loaded.samples


def build_manifest(
    task: Task, spec: ModelSpec, backend_config: dict[str, Any], params: GenerationParams, loaded: LoadedData
) -> RunManifest:
    prompt_sha256 = prompt_fingerprint(loaded.samples, params.stop)
    identity = {
        "task": task.name,
        "task_version": task.version,
        "data_sha256": loaded.sha256,
        "prompt_sha256": prompt_sha256,
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
        backend_config=backend_config,
        params=params.to_json(),
        data_sha256=loaded.sha256,
        data_source=loaded.source,
        prompt_sha256=prompt_sha256,
        fingerprint=fingerprint,
        mathusereval_version=__version__,
        started_at=_now(),
        host=_host(),
        versions={"python": sys.version.split()[0], "mathusereval": __version__},
        graders=task.graders,
    )


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


def _finish(
    task: Task,
    manifest: RunManifest,
    grading: Grading,
    options: RunOptions,
    extra_counts: dict[str, int],
    budget: Budget | None = None,
    stopped: str | None = None,
) -> RunResult:
    names = tuple(manifest.graders)
    metrics = compute_metrics(task, names, grading.samples, grading.grades, grading.n, options.parity)
    counts = {**count_outcomes(names, grading.samples, grading.generations, grading.grades, grading.n), **extra_counts}
    # the cost of every stored answer of the run (resumed parts included), at this invocation's prices
    cost = None if budget is None else budget.cost(Usage(counts["prompt_tokens"], counts["completion_tokens"]))
    manifest = dataclasses.replace(manifest, finished_at=_now())
    grading.store.write_manifest(manifest)
    grading.store.write_summary(
        {
            "run_id": manifest.run_id,
            "task": task.name,
            "model": manifest.model,
            "graders": list(names),
            "parity": options.parity,
            "metrics": [m.to_json() for m in metrics],
            "counts": counts,
            "cost_usd": cost,
            "stopped": stopped,
            "judge_usage": {name: usage.to_json() for name, usage in grading.usage.items()},
            "finished_at": manifest.finished_at,
        }
    )
    return RunResult(
        manifest=manifest,
        directory=grading.store.dir,
        metrics=metrics,
        counts=counts,
        judge_usage=grading.usage,
        cost_usd=cost,
        stopped=stopped,
    )


async def run_task(
    task: Task,
    spec: ModelSpec,
    backend: Backend,
    options: RunOptions,
    judge_role: JudgeRole | None = None,
    budget: Budget | None = None,
    loaded: LoadedData | None = None,
) -> RunResult:
    """Evaluate one model on one task, resuming whatever an earlier identical run left (`loaded`: the task's
    data when the caller has loaded it already).

    `budget` (shared by the invocation's tasks) stops generation once spent: requests in flight finish and
    are stored (a backend without ``stop_sending`` has them cancelled instead), nothing more is sent, and
    the next run starts where this one stopped."""
    loaded = loaded if loaded is not None else task.load(options.data_dir)
    samples = select_samples(task, loaded, options.limit)
    params = dataclasses.replace(task.params, **options.overrides)
    graders = resolve_graders(task, options.graders)
    manifest = build_manifest(task, spec, backend.describe(), params, loaded)
    directory = run_directory(options.out, spec.slug, task.name)
    if options.shard is not None:
        index, count = options.shard
        name = shard_directory_name(index, count)
        manifest = dataclasses.replace(
            manifest, shard=f"{index}/{count}", shard_items=len(samples), run_id=f"{manifest.run_id}/{name}"
        )
        samples = [s for s in samples if shard_of(task.name, s.id, count) == index]
        directory = directory / name
    store = RunStore(directory)
    store.lock()  # one writer per run directory; released by close(), or by the kernel on any exit
    try:
        previous = store.check_compatible(manifest)
        if previous is not None:
            manifest = dataclasses.replace(manifest, started_at=previous.started_at)
        generations = store.generation_index()  # outcomes only: texts stay on disk until a grader needs one
        grading = Grading(graders, store, samples, generations, params.n, judge_role)
        manifest = dataclasses.replace(manifest, graders=tuple(graders), judges=grading.manifest_judges())
        store.write_manifest(manifest)
        store.open()
    except BaseException:
        store.unlock()
        raise
    try:
        stored_ids = set(store.samples())
        for sample in samples:
            if sample.id not in stored_ids:
                store.add_sample(sample)
        todo = [
            Request(s, k)
            for s in samples
            for k in range(params.n)
            if not ((s.id, k) in generations and generations[(s.id, k)].ok)
        ]
        backlog = grading.rule_backlog()
        think = str(spec.options.get("think") or "strip")
        with Progress(options.progress, f"{spec.slug}/{task.name}") as bars:
            bars.add("generate", len(todo))
            bars.add("grade", len(todo) + len(backlog))
            grading.grade_backlog(backlog, bars)
            stopped = budget.message() if budget is not None and budget.exhausted else None
            with StreamingRuleGrades(grading, bars) as rule_grades:
                for group_params, group in _group_by_params(todo, params, options.overrides).items():
                    if stopped:
                        break
                    async with generation_stream(backend, group, group_params) as stream:
                        async for raw in stream:
                            generation = finalize(raw, think, group_params.stop)
                            store.add_generation(generation)
                            generations[(generation.sample_id, generation.n_index)] = without_text(generation)
                            bars.advance("generate")
                            if generation.ok:
                                rule_grades.submit(grading.by_id[generation.sample_id], generation)
                            else:
                                bars.advance("grade")
                            if budget is not None:
                                budget.charge(generation.usage)
                                if budget.exhausted and not stopped:
                                    stopped = budget.message()
                                    if not stop_sending(backend):
                                        break  # closing the stream cancels the requests in flight
            if not stopped:
                await grading.judge_all(bars)
        reused = len(samples) * params.n - len(todo)
        return _finish(task, manifest, grading, options, {"reused": reused}, budget, stopped)
    finally:
        store.close()


async def regrade(directory: Path, options: RunOptions, judge_role: JudgeRole | None = None) -> RunResult:
    """Grade a stored run again (``mue-eval grade RUN_DIR``): missing rule grades, and judge grades that
    are missing or came from another judge. Answers are never regenerated; samples come from the run."""
    store = RunStore(directory)
    manifest = store.existing_manifest()
    if manifest is None:
        raise ConfigError(f"{directory} is not a run directory (no manifest.json)")
    task: Task = registry.lookup("tasks", manifest.task)
    store.lock()
    try:
        samples = list(store.samples().values())
        if not samples:
            raise DataError(f"{directory}/samples.jsonl holds no samples")
        samples = samples[: options.limit] if options.limit is not None else samples
        n = int(manifest.params.get("n", 1))
        graders = resolve_graders(task, options.graders or manifest.graders or None)
        grading = Grading(graders, store, samples, store.generation_index(), n, judge_role)
        manifest = dataclasses.replace(
            manifest, graders=tuple(graders), judges={**manifest.judges, **grading.manifest_judges()}
        )
        store.write_manifest(manifest)
        store.open()
    except BaseException:
        store.unlock()
        raise
    try:
        backlog = grading.rule_backlog()
        with Progress(options.progress, f"{directory.name}") as bars:
            bars.add("grade", len(backlog))
            grading.grade_backlog(backlog, bars)
            await grading.judge_all(bars)
        return _finish(task, manifest, grading, options, {"reused": len(samples) * n})
    finally:
        store.close()
