"""One invocation's work once its options are built: evaluate a model on tasks, or grade stored runs.

The CLI builds typed settings (`RunOptions`, a `ModelSpec`, judge settings per role, a budget) and calls
`evaluate` or `grade`; they return the runs' `RunResult`s, which the CLI reports and renders.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from ..backends import Backend, ModelSpec, make_backend
from ..backends.options import ServedOptions
from ..errors import BackendUnavailable, ConfigError, one_line
from ..plugins import registry
from ..plugins.contracts import is_judge
from ..plugins.task import Task, load_task
from ..records import RunResult
from ..store import RunStore
from .budget import Budget
from .judging import JUDGE_ROLE, JudgeRole, JudgeSettings
from .pipeline import RunOptions, regrade, run_task
from .placement import run_location


async def _check(backend: Backend) -> None:
    check = getattr(backend, "check_reachable", None)
    if check is not None:
        await check()


def check_graders(tasks: Sequence[Task], override: Sequence[str] | None, judges: Mapping[str, JudgeSettings]) -> None:
    """Every grader installed, and a model named for each LLM grader's role; before anything runs."""
    for task in tasks:
        for name in override or task.graders:
            try:
                grader = registry.lookup("graders", name)  # entry points scanned only for a name not built in
            except ConfigError:
                raise ConfigError(
                    f"task {task.name!r} is scored by grader {name!r}, which is not installed "
                    f"(available graders: {', '.join(registry.names('graders'))})"
                ) from None
            if not is_judge(grader):
                continue
            role = registry.judge_grader(name).role
            if role in judges or JUDGE_ROLE in judges:
                continue
            if role != JUDGE_ROLE:
                raise ConfigError(
                    f"task {task.name!r} is graded by the LLM {role} {name!r}: pass --{role} MODEL (and "
                    f"--{role}-base-url URL for a served model)"
                )
            raise ConfigError(
                f"task {task.name!r} is scored by the LLM judge {name!r}: pass --judge MODEL, e.g. "
                "--judge gpt-4-1106-preview --judge-base-url https://api.openai.com/v1 (the official judge), "
                "a served model with --judge-base-url, or --judge smollm2-135m-instruct for an offline check"
            )


def report(result: RunResult) -> None:
    """One run's account on stderr: answers, errors, tokens, cost, judge usage, and why it stopped."""
    c = result.counts
    cost = f", ${result.cost_usd:.4f}" if result.cost_usd is not None else ""
    if result.direct_cost_usd is not None:
        cost += f" (direct calls would cost ${result.direct_cost_usd:.4f})"
    print(
        f"{one_line(result.manifest.run_id)}: {c.generations} answers ({c.reused} reused), {c.errors} errors, "
        f"{c.truncated} truncated; {c.prompt_tokens}+{c.completion_tokens} tokens{cost} -> {result.directory}",
        file=sys.stderr,
    )
    if result.stopped:
        print(
            f"  stopped: {result.stopped}; {c.missing} answers not generated: run the same command with a "
            "larger budget to finish",
            file=sys.stderr,
        )
    if result.ungraded:
        print(
            f"  no gradeable result: {result.metrics[0].name if result.metrics else 'the headline'} has n = 0 "
            f"({c.graded} graded, {c.grader_errors} grader errors, {c.errors} answer errors); it is not a score",
            file=sys.stderr,
        )
    for name, usage in result.judge_usage.items():
        cost = f", ${usage.cost_usd:.4f}" if usage.cost_usd is not None else ""
        if usage.batches or (usage.direct_cost_usd or 0) > (usage.cost_usd or 0):
            direct = f"; direct calls would cost ${usage.direct_cost_usd:.4f}" if usage.direct_cost_usd else ""
            cost += f" in {usage.batches} batch{'es' if usage.batches != 1 else ''}{direct}"
        print(
            f"  judge {name}: {usage.items} to judge, {usage.calls} calls ({usage.cached} cached, "
            f"{usage.retries} retries), {usage.cascade_decided} settled without a call, "
            f"{usage.parse_failures} unparseable, {usage.call_errors} failed calls, {usage.budget_skipped} over "
            f"budget; {usage.prompt_tokens}+{usage.completion_tokens} tokens{cost}",
            file=sys.stderr,
        )


def incomplete(results: Sequence[RunResult]) -> bool:
    """Answers or judge calls are missing (the next run will redo exactly those), or a run produced no
    gradeable result at all: the invocation exits 1."""
    return any(
        r.counts.errors
        or r.stopped
        or r.ungraded
        or any(u.call_errors or u.budget_skipped for u in r.judge_usage.values())
        for r in results
    )


@asynccontextmanager
async def judge_roles(judges: Mapping[str, JudgeSettings]) -> AsyncIterator[dict[str, JudgeRole]]:
    """The judge backends of one invocation, one per role, shared by all its tasks: built, checked, closed."""
    roles: dict[str, JudgeRole] = {}
    try:
        for name, settings in judges.items():
            roles[name] = JudgeRole(settings, make_backend(settings.spec))
            await _check(roles[name].backend)
        yield roles
    finally:
        for role in roles.values():
            await role.backend.aclose()


async def evaluate(
    *,
    spec: ModelSpec,
    task_names: Sequence[str],
    options: RunOptions,
    judges: Mapping[str, JudgeSettings] | None = None,
    budget: Budget | None = None,
) -> list[RunResult]:
    """``mue-eval run``: every task on one model. `budget` (prices and caps of the model's own tokens)
    spans all the tasks."""
    judges = judges or {}
    tasks: list[Task] = [registry.lookup("tasks", name) for name in task_names]  # unknown names fail first
    check_graders(tasks, options.graders, judges)
    data = [load_task(task, options.data_dir) for task in tasks]  # bad data fails before any model is started
    for task in tasks:  # a run another process writes is refused before any server is contacted
        RunStore(run_location(task, spec, options.out, options.name, options.shard)).check_unlocked()
    engine = make_backend(spec)
    results: list[RunResult] = []
    try:
        await _check(engine)
        async with judge_roles(judges) as roles:
            for task, loaded in zip(tasks, data, strict=True):
                result = await run_task(task, spec, engine, options, roles, budget, loaded)
                results.append(result)
                report(result)
    finally:
        await engine.aclose()
    return results


async def serve_and_evaluate(
    spec: ModelSpec,
    via: ServedOptions,
    task_names: Sequence[str],
    options: RunOptions,
    judges: Mapping[str, JudgeSettings] | None,
    budget: Budget | None,
) -> list[RunResult]:
    """``mue-eval --model DIR --serve``: the run of `evaluate`, through vLLM's HTTP server (`via`: the
    client's settings, to which the servers' URLs are added)."""
    from ..backends.serving import VLLMServers

    if spec.backend != "vllm":
        raise ConfigError("--serve starts vLLM for --model HF_DIR; a served model is evaluated with --base-url")
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable("--serve needs vLLM in this Python: pip install 'mathusereval[vllm]'") from exc
    servers = VLLMServers(spec, Path(spec.model).name)
    async with servers as urls:
        served_by = {"vllm_server": spec.model, "replicas": len(urls)}
        client = dataclasses.replace(via, base_url=tuple(urls), served_by=served_by)
        served = ModelSpec("openai", servers.served_name, client)
        return await evaluate(spec=served, task_names=task_names, options=options, judges=judges, budget=budget)


async def grade(
    directories: Sequence[Path], options: RunOptions, judges: Mapping[str, JudgeSettings] | None = None
) -> list[RunResult]:
    """``mue-eval grade RUN_DIR...``: grade stored answers again, e.g. with another judge."""
    judges = judges or {}
    for directory in directories:
        manifest = RunStore(directory).existing_manifest()
        if manifest is None:
            raise ConfigError(f"{directory} is not a run directory (no manifest.json)")
        check_graders([registry.lookup("tasks", manifest.task)], options.graders or manifest.graders, judges)
    results = []
    async with judge_roles(judges) as roles:
        for directory in directories:
            result = await regrade(directory, options, roles)
            results.append(result)
            report(result)
    return results
