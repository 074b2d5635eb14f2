"""What one run is and how it ends: its options (`RunOptions`), manifest and identity (`build_manifest`), its
requests grouped by settings, and its result (`finish_run`).

The work itself is scheduled per invocation (`mathusereval.run.session`, `mathusereval.run.schedule`): each
task's state is a `mathusereval.run.task_run.TaskRun`. Everything a run produces is written through the
`RunStore` as it happens, so a run that is killed and started again with the same settings re-uses every
finished generation and grade and does only the rest.
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
from ..backends import ModelSpec
from ..errors import ConfigError, one_line
from ..plugins.task import LoadedData, Task, prompt_fingerprint
from ..records import GenerationParams, Request, RunManifest, RunResult, Usage
from ..results.scoring import compute_metrics, count_outcomes
from .budget import Budget
from .choices import LIMIT_ORDERS, PARITY_MODES, THINK_MODES
from .grading import Grading
from .guards import Guards


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
    guards: Guards = field(default_factory=Guards)
    """``--max-truncated`` ...: run-health guards (`mathusereval.run.guards`); not part of a run's identity."""
    sandbox: str = "isolated"
    """``--sandbox``: how tool-integrated tasks run the model's programs; ``unisolated`` lets a run go on
    where namespaces are not allowed (`mathusereval.tir.sandbox`)."""

    def __post_init__(self) -> None:
        for flag, value, allowed in (
            ("--think", self.think, THINK_MODES),
            ("--parity", self.parity, PARITY_MODES),
            ("--limit-order", self.limit_order, LIMIT_ORDERS),
            ("--sandbox", self.sandbox, ("isolated", "unisolated")),
        ):
            if value not in allowed:
                raise ConfigError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")

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
    system_prompt: str | None = None,
) -> RunManifest:
    """What the run is. The fingerprint covers every setting that changes answers or what is graded:
    task version, data, rendered prompts, backend, model, generation parameters and `settings` (``think``
    and the backend's own, `ModelSpec.identity`)."""
    prompt_sha256 = prompt_fingerprint(loaded.samples, params.stop)
    if system_prompt is not None:  # every sample behind it: its digest with the prompts', never N copies of it
        both = f"{prompt_sha256}\0system:{hashlib.sha256(system_prompt.encode()).hexdigest()}"
        prompt_sha256 = hashlib.sha256(both.encode()).hexdigest()
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


def group_by_params(
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


def finish_run(
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
    usage = Usage(counts.prompt_tokens, counts.completion_tokens)
    cost = None if budget is None else budget.cost(usage)
    # --batch: the list price beside the discounted one, as judge usage has it
    direct = budget.list_cost(usage) if budget is not None and budget.discount != 1.0 else None
    manifest = dataclasses.replace(manifest, finished_at=now(), records=grading.store.checkpoint(manifest.records))
    grading.store.write_manifest(manifest)
    result = RunResult(
        manifest, grading.store.dir, metrics, counts, dict(grading.usage), cost, stopped=stopped, direct_cost_usd=direct
    )
    grading.store.write_summary(result.summary(options.parity))
    return result


def say_first(said: set[str], error: str, where: Path, what: str = "an answer") -> None:
    """Print the first error of each kind (``HTTP 400``, ``ClientConnectorError`` ...) as it happens; all of
    them are stored, counted and retried by the next run."""
    match = re.match(r"(HTTP \d+|[\w.]+)", error)
    kind = match.group(1) if match else error[:20]
    if kind in said:
        return
    said.add(kind)
    print(
        f"mue-eval: warning: {where}: {what} failed: {one_line(error)[:300]} (the first of its kind; every "
        "failure is stored, counted and retried by the next run)",
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


def system_setting(system_prompt: str | None) -> dict[str, str]:
    if system_prompt is None:
        return {}
    shown = (
        system_prompt
        if len(system_prompt) <= 60
        else f"sha256:{hashlib.sha256(system_prompt.encode()).hexdigest()[:16]}"
    )
    return {"system_prompt": shown}


def answered(generations: dict[tuple[str, int], Any], sample_id: str, k: int) -> bool:
    stored = generations.get((sample_id, k))
    return stored is not None and stored.ok
