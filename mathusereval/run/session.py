"""One invocation's work once its options are built: evaluate a model on tasks, or grade stored runs.

The CLI builds typed settings (`RunOptions`, a `ModelSpec`, judge settings per role, a budget) and calls
`evaluate` or `grade`; they return the runs' `RunResult`s, which the CLI reports and renders.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

from ..backends import Backend, ModelSpec, make_backend
from ..backends.options import ServedOptions
from ..errors import BackendUnavailable, ConfigError, one_line
from ..plugins import registry
from ..plugins.contracts import is_judge, with_defaults
from ..plugins.task import LoadedData, Task, load_task
from ..records import RunResult
from ..store import RunStore
from .budget import Budget
from .judging import JudgeRole, JudgeSettings, shared_budgets
from .pipeline import RunOptions
from .placement import run_location
from .progress import Progress
from .regrade import Regrade
from .roles import JUDGE_ROLE
from .schedule import Lane, Schedule
from .task_run import TaskRun


def check_graders(tasks: Sequence[Task], override: Sequence[str] | None, judges: Mapping[str, JudgeSettings]) -> None:
    """Every grader installed, and a model named for each LLM grader's role; before anything runs. A role
    given a model that no grader of these tasks uses is said (it would be ignored)."""
    used: set[str] = set()
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
            used.add(role if role in judges else JUDGE_ROLE)
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
    for role in sorted(set(judges) - used):
        hint = " (add --graders answer,verifier)" if role == "verifier" else ""
        print(f"mue-eval: warning: --{role} is given but no grader of these tasks uses it{hint}", file=sys.stderr)


def report(result: RunResult) -> None:
    """One run's account on stderr: answers, errors, tokens, cost, judge usage, and why it stopped."""
    c = result.counts
    cost = f", ${result.cost_usd:.4f}" if result.cost_usd is not None else ""
    if result.direct_cost_usd is not None:
        cost += f" (direct calls would cost ${result.direct_cost_usd:.4f})"
    headline = result.metrics[0] if result.metrics else None
    score = ""
    if headline is not None and math.isfinite(headline.value):  # the score in the log, beside the counts
        score = f"; {headline.name} {headline.value:.4g} (n={headline.n})"
    print(
        f"{one_line(result.manifest.run_id)}: {c.generations} answer{'s' if c.generations != 1 else ''} "
        f"({c.reused} reused), {c.errors} errors, "
        f"{c.truncated} truncated; {c.prompt_tokens}+{c.completion_tokens} tokens{cost}{score} -> "
        f"{result.directory}",
        file=sys.stderr,
    )
    if c.programs:
        print(
            f"  programs: {c.programs} run, {c.program_errors} failed ({c.program_timeouts} timed out); "
            f"{c.call_limit_reached} answers reached the call limit",
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
    if headline is not None and not result.ungraded and not math.isfinite(headline.value):
        if _unreadable(result):
            why = "judgments or grades that could not be read leave it undefined; see the judge line below"
        else:
            why = "the items scored do not cover what it averages over (a --limit that leaves categories out?)"
        print(f"  {headline.name} has no value: {why}", file=sys.stderr)
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
    gradeable result at all, or a headline with no value (AlignBench's Overall with a category left unscored,
    7 of 8 judgments unparseable): the invocation exits 1."""
    return any(
        r.counts.errors
        or r.stopped
        or r.ungraded
        or (not math.isfinite(r.metrics[0].value) and _unreadable(r))
        or any(u.call_errors or u.budget_skipped for u in r.judge_usage.values())
        for r in results
    )


def _unreadable(result: RunResult) -> bool:
    """Some judgments or grades of the run could not be read (a headline left undefined by them is a failure;
    one left undefined by a small --limit is not)."""
    return bool(result.counts.grader_errors or any(u.parse_failures for u in result.judge_usage.values()))


@asynccontextmanager
async def judge_roles(judges: Mapping[str, JudgeSettings]) -> AsyncIterator[dict[str, JudgeRole]]:
    """The judge backends of one invocation, one per role, shared by all its tasks: built, checked, closed."""
    roles: dict[str, JudgeRole] = {}
    budgets = shared_budgets(judges)  # one grading spend, whichever role makes it
    try:
        for name, settings in judges.items():
            roles[name] = JudgeRole(settings, make_backend(settings.spec), budgets[name])
            await roles[name].backend.check_reachable()
        yield roles
    finally:
        for role in roles.values():
            await role.backend.aclose()


def _judge_lanes(schedule: Schedule, roles: Mapping[str, JudgeRole]) -> dict[str, Lane]:
    """A lane per judge role; judge calls go first where they share a server with the model."""
    return {name: schedule.lane(name, role.backend, role.budget, urgent=True) for name, role in roles.items()}


async def _run_schedule(schedule: Schedule, runs: Sequence[TaskRun | Regrade], results: list[RunResult]) -> None:
    """Run `schedule` until every run is done; each run's result is written and reported as it finishes."""
    finished: set[int] = set()

    def tick() -> bool:
        for i, run in enumerate(runs):
            if i not in finished and run.done:
                finished.add(i)
                results.append(run.finish())
                report(results[-1])
        return len(finished) == len(runs)

    try:
        await schedule.run(tick)
    finally:
        for run in runs:
            for queue in getattr(run, "judges", None) or getattr(run, "queues", None) or ():
                queue.cancel()
            if getattr(run, "chains", None) is not None:  # tool-integrated chains waiting on the lane
                run.chains.cancel()  # type: ignore[union-attr]


async def evaluate(
    *,
    spec: ModelSpec | Sequence[ModelSpec],
    task_names: Sequence[str],
    options: RunOptions,
    judges: Mapping[str, JudgeSettings] | None = None,
    budget: Budget | None = None,
) -> list[RunResult]:
    """``mue-eval run``: every task on one model (or on several served models at once), as one schedule:
    every task's requests share the model's stream and every judge call the judge's, so no task waits for
    another's tail (`mathusereval.run.schedule`). `budget` (prices and caps of the models' own tokens)
    spans all the tasks."""
    specs = [spec] if isinstance(spec, ModelSpec) else list(spec)
    judges = judges or {}
    tasks: list[Task] = [registry.lookup("tasks", name) for name in task_names]  # unknown names fail first
    check_graders(tasks, options.graders, judges)
    data = [load_task(task, options.data_dir) for task in tasks]  # bad data fails before any model is started
    for one in specs:
        for task in tasks:  # a run another process writes is refused before any server is contacted
            RunStore(run_location(task, one, options.out, options.name, options.shard)).check_unlocked()
    engines: list[Backend] = []
    try:
        for one in specs:
            engines.append(make_backend(one))
            await engines[-1].check_reachable()
        async with judge_roles(judges) as roles:
            return await run_tasks(list(zip(specs, engines, strict=True)), tasks, data, options, roles, budget)
    finally:
        for engine in engines:
            await engine.aclose()


async def run_tasks(
    models: Sequence[tuple[ModelSpec, Backend]],
    tasks: Sequence[Task],
    data: Sequence[LoadedData],
    options: RunOptions,
    roles: dict[str, JudgeRole],
    budget: Budget | None = None,
) -> list[RunResult]:
    """Every task on every model (its backend built and checked) as one schedule; results in model, task
    order. Every run's identity is checked before anything is sent."""
    if any(task.tir for task in tasks):  # before anything is sent: programs must run as asked (issue 33)
        from ..tir.chain import require_sandbox
        from ..tir.protocol import MAX_FUNC_CALLS

        if any("batch" in engine.describe() for _, engine in models):
            raise ConfigError(
                "tool-integrated tasks (<task>-tir) do not go through the Batch API: each of an answer's up to "
                f"{MAX_FUNC_CALLS} calls waits for the program before it, so each would wait a batch window; "
                "run them without --batch"
            )

        require_sandbox(options.sandbox)
        if options.system_prompt is not None:
            print(
                "mue-eval: warning: --system-prompt replaces the system turn of <task>-tir tasks, upstream's "
                "instruction to integrate programs (Qwen2.5-Math's TIR prompt)",
                file=sys.stderr,
            )
    elif any("continued_replies" in engine.describe() for _, engine in models):
        print(
            "mue-eval: warning: --chat-template with --base-url renders continued replies of <task>-tir tasks "
            "only; none of these tasks continues a reply (the server applies its own template)",
            file=sys.stderr,
        )
    runs = [
        TaskRun(task, spec, engine.describe(), options, roles, loaded, index)
        for spec, engine in models
        for index, (task, loaded) in enumerate(zip(tasks, data, strict=True))
    ]
    schedule = Schedule()
    judge_lanes = _judge_lanes(schedule, roles)
    results: list[RunResult] = []
    with ExitStack() as stack, Progress(options.progress, "") as bars:
        for run in runs:
            run.open(stack, bars)
        lanes = [schedule.lane(spec.slug, engine, budget) for spec, engine in models]
        for i, run in enumerate(runs):
            run.start(lanes[i // len(tasks)], judge_lanes, budget)
        await _run_schedule(schedule, runs, results)
    return _in_order(results, [run.directory for run in runs])


async def run_task(
    task: Task,
    spec: ModelSpec,
    backend: Backend,
    options: RunOptions,
    roles: dict[str, JudgeRole] | None = None,
    budget: Budget | None = None,
    loaded: LoadedData | None = None,
) -> RunResult:
    """One task on a backend the caller built (and closes): `run_tasks` for one."""
    loaded = loaded if loaded is not None else load_task(task, options.data_dir)
    results = await run_tasks([(spec, with_defaults(backend))], [task], [loaded], options, roles or {}, budget)
    return results[0]


def _in_order(results: list[RunResult], directories: Sequence[Path]) -> list[RunResult]:
    """Results in the order of the runs (model, then task), whatever order they finished in."""
    position = {directory: i for i, directory in enumerate(directories)}
    return sorted(results, key=lambda r: position.get(r.directory, 0))


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
    """``mue-eval grade RUN_DIR...``: grade stored answers again, e.g. with another judge; every run's judge
    calls on one schedule."""
    judges = judges or {}
    for directory in directories:
        manifest = RunStore(directory).existing_manifest()
        if manifest is None:
            raise ConfigError(f"{directory} is not a run directory (no manifest.json)")
        check_graders([registry.lookup("tasks", manifest.task)], options.graders or manifest.graders, judges)
    results: list[RunResult] = []
    async with judge_roles(judges) as roles:
        regrades = [Regrade(d, options, roles) for d in directories]
        schedule = Schedule()
        lanes = _judge_lanes(schedule, roles)
        with ExitStack() as stack, Progress(options.progress, "") as bars:
            for one in regrades:
                one.open(stack, bars, lanes)
            await _run_schedule(schedule, regrades, results)
    return _in_order(results, [one.directory for one in regrades])
