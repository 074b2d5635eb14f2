"""Orchestration: task -> samples -> backend -> generations -> graders -> grades -> metrics.

Everything a run produces is written through the `RunStore` as it happens, so a run that is killed and
started again with the same settings re-uses every finished generation and grade and does only the rest.
Rule graders grade each answer as it streams in (on a worker thread); LLM graders (`mathusereval.run.judging`)
judge once the answers are in, through their role's backend. `regrade` runs the grading phases alone on a
stored run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..__about__ import __version__
from ..backends import Backend, ModelSpec
from ..backends.base import generation_stream, stop_sending
from ..errors import ConfigError, DataError, one_line
from ..plugins import registry
from ..plugins.task import LoadedData, Task, load_task, prompt_fingerprint
from ..records import GenerationParams, Request, RunManifest, RunResult, Usage
from ..results.scoring import compute_metrics, count_outcomes
from ..store import RunStore
from .budget import Admitted, Budget
from .grading import Grading, StreamingRuleGrades, manifest_judges, resolve_graders
from .judging import JudgeRole
from .placement import check_same_grading, place
from .postprocess import THINK_MODES, checked, finalize, without_text
from .progress import Progress
from .selection import select_samples


@dataclass(frozen=True)
class RunOptions:
    """Per-invocation settings. `overrides` (generation parameters) and `think` change what is graded and
    are part of the run's fingerprint; the rest say which items, where and how to report."""

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
    """``--shard I/N``: run only shard I of N of each task, in its own directory (`mathusereval.data.shards`)."""
    think: str = "strip"
    """``--think``: grade only what follows ``</think>`` (strip) or the whole reply (keep)."""
    name: str = ""
    """``--name LABEL``: the run's directory and leaderboard row."""
    system_prompt: str | None = None
    """``--system-prompt``: a system turn before every sample's messages (part of the prompt fingerprint)."""
    limit_order: str = "spread"
    """``--limit-order``: which items ``--limit`` takes (`mathusereval.run.selection`)."""
    sample_ids: tuple[Path, tuple[str, ...]] | None = None
    """``--sample-ids FILE``: (the file, its ids)."""
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``[tasks.NAME]`` of ``--config``: generation settings for one task, over `overrides`."""
    config: dict[str, Any] = field(default_factory=dict)
    """The effective configuration, recorded in every manifest."""

    def __post_init__(self) -> None:
        if self.think not in THINK_MODES:
            raise ConfigError(f"--think must be one of {', '.join(THINK_MODES)}, got {self.think!r}")

    def overrides_for(self, task: str) -> dict[str, Any]:
        return {**self.overrides, **self.task_overrides.get(task, {})}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _host() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "hostname": platform.node(),
    }


def build_manifest(
    task: Task,
    spec: ModelSpec,
    backend_config: dict[str, Any],
    params: GenerationParams,
    loaded: LoadedData,
    settings: dict[str, Any] | None = None,
) -> RunManifest:
    """What the run is. The fingerprint covers every setting that changes answers or what is graded:
    task version, data, rendered prompts, backend, model, generation parameters and `settings` (``think``
    and the backend's own, `ModelSpec.identity`)."""
    prompt_sha256 = prompt_fingerprint(loaded.samples, params.stop)
    settings = {**(settings or {}), **{f"backend.{k}": v for k, v in spec.identity().items() if v not in (None, {})}}
    identity = {
        "task": task.name,
        "task_version": task.version,
        "data_sha256": loaded.sha256,
        "prompt_sha256": prompt_sha256,
        "backend": spec.backend,
        "model": spec.model,
        "params": params.to_json(),
        "settings": settings,
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
        started_at=now(),
        host=_host(),
        versions={"python": sys.version.split()[0], "mathusereval": __version__},
        graders=task.graders,
        settings=settings,
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
    reused: int,
    budget: Budget | None = None,
    stopped: str | None = None,
) -> RunResult:
    names = tuple(manifest.graders)
    metrics = compute_metrics(task, names, grading.samples, grading.grades, grading.n, options.parity)
    items = manifest.shard_items if manifest.shard else None  # a shard counts against the whole task, as readers do
    counts = count_outcomes(
        names, grading.samples, grading.generations, grading.grades, grading.n, options.parity, items
    )
    counts = dataclasses.replace(counts, reused=reused)
    # the cost of every stored answer of the run (resumed parts included), at this invocation's prices
    cost = None if budget is None else budget.cost(Usage(counts.prompt_tokens, counts.completion_tokens))
    manifest = dataclasses.replace(manifest, finished_at=now(), records=grading.store.checkpoint(manifest.records))
    grading.store.write_manifest(manifest)
    result = RunResult(manifest, grading.store.dir, metrics, counts, dict(grading.usage), cost, stopped=stopped)
    grading.store.write_summary(result.summary(options.parity))
    return result


async def _generate(
    backend: Backend,
    todo: list[Request],
    params: GenerationParams,
    options: RunOptions,
    overrides: dict[str, Any],
    grading: Grading,
    bars: Progress,
    budget: Budget | None,
) -> str | None:
    """Generate `todo`, storing each answer as it arrives and rule-grading it on the worker thread; returns
    why generation stopped early (a spent budget: what was really spent), else None."""
    store = grading.store
    said: set[str] = set()
    name = type(backend).__name__
    asked = {(r.sample.id, r.n_index) for r in todo}
    bind = getattr(backend, "bind_run", None)
    if bind is not None:  # run state a backend keeps (the batches of --batch) lives in the run directory
        bind(store.dir)
    with StreamingRuleGrades(grading, bars) as rule_grades:
        for group_params, group in _group_by_params(todo, params, overrides).items():
            if budget is not None and budget.exhausted:
                break
            admitted = Admitted(group, group_params, budget)
            async with generation_stream(backend, admitted, group_params) as stream:
                async for raw in stream:
                    generation = finalize(checked(raw, name, asked), options.think, group_params.stop)
                    store.add_generation(generation)
                    grading.generations[(generation.sample_id, generation.n_index)] = without_text(generation)
                    bars.advance("generate")
                    if generation.ok:
                        rule_grades.submit(grading.by_id[generation.sample_id], generation)
                    else:
                        bars.advance("grade")
                        say_first(said, generation.error or "", store.dir)
                    admitted.charge(generation)
                    if budget is not None and budget.exhausted and not budget.refused and not stop_sending(backend):
                        break  # closing the stream cancels the requests in flight
    return budget.message() if budget is not None and budget.exhausted else None


async def run_task(
    task: Task,
    spec: ModelSpec,
    backend: Backend,
    options: RunOptions,
    roles: dict[str, JudgeRole] | None = None,
    budget: Budget | None = None,
    loaded: LoadedData | None = None,
) -> RunResult:
    """Evaluate one model on one task, resuming whatever an earlier identical run left (`loaded`: the task's
    data when the caller has loaded it already; `roles`: the judge roles of LLM graders).

    `budget` (shared by the invocation's tasks) stops generation once spent: requests in flight finish and
    are stored (a backend without ``stop_sending`` has them cancelled instead), nothing more is sent, and
    the next run starts where this one stopped."""
    roles = roles or {}
    loaded = with_system_prompt(
        loaded if loaded is not None else load_task(task, options.data_dir), options.system_prompt
    )
    samples = select_samples(task, loaded, options.limit, options.limit_order, options.sample_ids)
    overrides = options.overrides_for(task.name)
    params = dataclasses.replace(task.params, **overrides)
    graders = resolve_graders(task, options.graders)
    settings = {"think": options.think, **_system_setting(options.system_prompt)}
    manifest = build_manifest(task, spec, backend.describe(), params, loaded, settings)
    manifest = dataclasses.replace(
        manifest,
        graders=tuple(graders),
        judges=manifest_judges(graders, roles),
        name=options.name,
        overrides={k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        config=options.config,
    )
    directory, samples, manifest = place(task, spec, options.out, options.name, options.shard, samples, manifest)
    check_same_grading(directory, manifest)
    store = RunStore(directory)
    with store.writing(manifest) as manifest:
        generations = store.generation_index()  # outcomes only: texts stay on disk until a grader needs one
        grading = Grading(graders, store, samples, generations, params.n, roles)
        stored_ids = set(store.samples())
        for sample in samples:
            if sample.id not in stored_ids:
                store.add_sample(sample)
        todo = [Request(s, k) for s in samples for k in range(params.n) if not _answered(generations, s.id, k)]
        backlog = grading.rule_backlog()
        with Progress(options.progress, manifest.run_id) as bars:
            bars.add("generate", len(todo))
            bars.add("grade", len(todo) + len(backlog))
            grading.grade_backlog(backlog, bars)
            stopped = await _generate(backend, todo, params, options, overrides, grading, bars, budget)
            if not stopped:
                await grading.judge_all(bars)
        return _finish(task, manifest, grading, options, len(samples) * params.n - len(todo), budget, stopped)


def say_first(said: set[str], error: str, where: Path) -> None:
    """Print the first error of each kind (``HTTP 400``, ``ClientConnectorError`` ...) as it happens; all of
    them are stored, counted and retried by the next run."""
    match = re.match(r"(HTTP \d+|[\w.]+)", error)
    kind = match.group(1) if match else error[:20]
    if kind in said:
        return
    said.add(kind)
    print(
        f"mue-eval: warning: {where}: an answer failed: {one_line(error)[:300]} (the first of its kind; every "
        "failed answer is stored, counted and retried by the next run)",
        file=sys.stderr,
    )


def with_system_prompt(loaded: LoadedData, system_prompt: str | None) -> LoadedData:
    """``--system-prompt``: every sample's messages behind one system turn (a task's own system turn is
    replaced); the prompt fingerprint sees it, as it sees every rendered prompt."""
    if system_prompt is None:
        return loaded
    turn = {"role": "system", "content": system_prompt}
    samples = [
        dataclasses.replace(s, messages=(turn, *[m for m in s.messages if m.get("role") != "system"]))
        for s in loaded.samples
    ]
    return dataclasses.replace(loaded, samples=samples)


def _system_setting(system_prompt: str | None) -> dict[str, str]:
    if system_prompt is None:
        return {}
    shown = (
        system_prompt
        if len(system_prompt) <= 60
        else f"sha256:{hashlib.sha256(system_prompt.encode()).hexdigest()[:16]}"
    )
    return {"system_prompt": shown}


def _answered(generations: dict[tuple[str, int], Any], sample_id: str, k: int) -> bool:
    stored = generations.get((sample_id, k))
    return stored is not None and stored.ok


async def regrade(directory: Path, options: RunOptions, roles: dict[str, JudgeRole] | None = None) -> RunResult:
    """Grade a stored run again (``mue-eval grade RUN_DIR``): missing rule grades, and judge grades that
    are missing or came from another judge. Answers are never regenerated; samples come from the run."""
    roles = roles or {}
    store = RunStore(directory)
    manifest = store.existing_manifest()
    if manifest is None:
        raise ConfigError(f"{directory} is not a run directory (no manifest.json)")
    task: Task = registry.lookup("tasks", manifest.task)
    samples = list(store.samples().values())
    if not samples:
        raise DataError(f"{directory}/samples.jsonl holds no samples")
    samples = samples[: options.limit] if options.limit is not None else samples
    n = int(manifest.params.get("n", 1))
    graders = resolve_graders(task, options.graders or manifest.graders or None)
    judges = {**manifest.judges, **manifest_judges(graders, roles)}
    with store.writing(dataclasses.replace(manifest, graders=tuple(graders), judges=judges)) as manifest:
        grading = Grading(graders, store, samples, store.generation_index(), n, roles)
        backlog = grading.rule_backlog()
        with Progress(options.progress, f"{directory.name}") as bars:
            bars.add("grade", len(backlog))
            grading.grade_backlog(backlog, bars)
            await grading.judge_all(bars)
        return _finish(task, manifest, grading, options, len(samples) * n)
