"""What the CLI commands do once their options are parsed: run, grade a stored run, import answers."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import registry
from .backends import Backend, ModelSpec, make_backend
from .budget import Budget
from .contracts import is_judge
from .errors import ConfigError, DataError
from .judging import JudgeRole, JudgeSettings
from .pipeline import RunOptions, RunResult, build_manifest, regrade, run_task
from .records import Generation
from .store import RunStore, run_directory
from .task import Task


async def _check(backend: Backend) -> None:
    check = getattr(backend, "check_reachable", None)
    if check is not None:
        await check()


def _needs_judge(graders: Sequence[str]) -> str | None:
    return next((name for name in graders if is_judge(registry.lookup("graders", name))), None)


def _check_graders(tasks: Sequence[Task], override: Sequence[str] | None, judge: JudgeSettings | None) -> None:
    """Every grader installed, and a judge model named when one is an LLM judge; before anything runs."""
    available = registry.names("graders")
    for task in tasks:
        for grader in override or task.graders:
            if grader not in available:
                raise ConfigError(
                    f"task {task.name!r} is scored by grader {grader!r}, which is not installed "
                    f"(available graders: {', '.join(available)})"
                )
        judged_by = _needs_judge(override or task.graders)
        if judged_by == "verifier" and judge is None:
            raise ConfigError(
                f"task {task.name!r} is graded by the LLM verifier: pass --verifier MODEL (and --verifier-base-url "
                "URL for a served model)"
            )
        if judged_by is not None and judge is None:
            raise ConfigError(
                f"task {task.name!r} is scored by the LLM judge {judged_by!r}: pass --judge MODEL, e.g. "
                "--judge gpt-4-1106-preview --judge-base-url https://api.openai.com/v1 (the official judge), "
                "a served model with --judge-base-url, or --judge smollm2-135m-instruct for an offline check"
            )


def _report(result: RunResult) -> None:
    c = result.counts
    cost = f", ${result.cost_usd:.4f}" if result.cost_usd is not None else ""
    print(
        f"{result.manifest.run_id}: {c['generations']} answers ({c['reused']} reused), {c['errors']} errors, "
        f"{c['truncated']} truncated; {c['prompt_tokens']}+{c['completion_tokens']} tokens{cost} -> "
        f"{result.directory}",
        file=sys.stderr,
    )
    if result.stopped:
        print(
            f"  stopped: {result.stopped}; {c['missing']} answers not generated: run the same command with a "
            "larger budget to finish",
            file=sys.stderr,
        )
    if ungraded(result):
        print(
            f"  no gradeable result: {result.metrics[0].name} has n = 0 ({c.get('graded', 0)} graded, "
            f"{c.get('grader_errors', 0)} grader errors, {c.get('errors', 0)} answer errors); it is not a score",
            file=sys.stderr,
        )
    for name, usage in result.judge_usage.items():
        cost = f", ${usage.cost_usd:.4f}" if usage.cost_usd is not None else ""
        print(
            f"  judge {name}: {usage.items} to judge, {usage.calls} calls ({usage.cached} cached, "
            f"{usage.retries} retries), {usage.cascade_decided} settled by the cascade, "
            f"{usage.parse_failures} unparseable, {usage.call_errors} failed calls, {usage.budget_skipped} over "
            f"budget; {usage.prompt_tokens}+{usage.completion_tokens} tokens{cost}",
            file=sys.stderr,
        )


def ungraded(result: RunResult) -> bool:
    """The headline metric has nothing behind it (n = 0): no answer could be graded."""
    return not result.metrics or result.metrics[0].n == 0


def _failed(results: Sequence[RunResult]) -> bool:
    """Exit non-zero when answers or judge calls are missing (the next run will redo exactly those), or when
    a run produced no gradeable result at all."""
    return any(
        r.counts["errors"]
        or r.stopped
        or ungraded(r)
        or any(u.call_errors or u.budget_skipped for u in r.judge_usage.values())
        for r in results
    )


@asynccontextmanager
async def _judge_role(judge: JudgeSettings | None) -> AsyncIterator[JudgeRole | None]:
    """The judge backend of one invocation, shared by all its tasks: built, checked, closed at the end."""
    if judge is None:
        yield None
        return
    role = JudgeRole(judge, make_backend(judge.spec))
    if judge.verifier is not None:
        role.verifier = JudgeRole(judge.verifier, make_backend(judge.verifier.spec))
    try:
        await _check(role.backend)
        if role.verifier is not None:
            await _check(role.verifier.backend)
        yield role
    finally:
        await role.backend.aclose()
        if role.verifier is not None:
            await role.verifier.backend.aclose()


def _leaderboard(results: Sequence[RunResult]) -> int:
    """Print the table of this invocation's runs; the exit code (1 when anything is left to redo)."""
    from .leaderboard import build_table, print_table

    print_table(build_table(results))
    return 1 if _failed(results) else 0


async def evaluate(
    *,
    spec: ModelSpec,
    task_names: Sequence[str],
    options: RunOptions,
    judge: JudgeSettings | None = None,
    budget: Budget | None = None,
) -> int:
    """``mue-eval run``: every task on one model, then the leaderboard of these runs. `budget` (prices and
    caps of the model's own tokens) spans all the tasks."""
    tasks: list[Task] = [registry.lookup("tasks", name) for name in task_names]  # unknown names fail first
    _check_graders(tasks, options.graders, judge)
    data = [task.load(options.data_dir) for task in tasks]  # bad data fails before any model is started
    engine = make_backend(spec)
    results: list[RunResult] = []
    try:
        await _check(engine)
        async with _judge_role(judge) as judge_role:
            for task, loaded in zip(tasks, data, strict=True):
                result = await run_task(task, spec, engine, options, judge_role, budget, loaded)
                results.append(result)
                _report(result)
    finally:
        await engine.aclose()
    return _leaderboard(results)


async def grade(directories: Sequence[Path], options: RunOptions, judge: JudgeSettings | None = None) -> int:
    """``mue-eval grade RUN_DIR...``: grade stored answers again, e.g. with another judge."""
    for directory in directories:
        manifest = RunStore(directory).existing_manifest()
        if manifest is None:
            raise ConfigError(f"{directory} is not a run directory (no manifest.json)")
        _check_graders([registry.lookup("tasks", manifest.task)], options.graders or manifest.graders, judge)
    results = []
    async with _judge_role(judge) as judge_role:
        for directory in directories:
            result = await regrade(directory, options, judge_role)
            results.append(result)
            _report(result)
    return _leaderboard(results)


@dataclass
class ImportedAnswers:
    """The "backend" of an imported run: answers someone else generated, read from a JSONL file."""

    model: str
    source: str
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256}


def import_answers(
    answers: Path, task_name: str, out: Path, data_dir: Path | None, model: str | None, answer_field: str = "answer"
) -> Path:
    """``mue-eval import FILE --task T``: store answers generated elsewhere as a run, ready for ``grade``.

    Rows are matched to samples by the task's own key (`Task.row_key`); the upstream answer files copy the
    question fields, so ``model_answer/*.jsonl`` from ChatGLM-Math import as they are. A row that matches
    no sample, repeats one, or lacks a field is an error naming file:line; nothing is written then.
    """
    from .data import read_jsonl, sha256_file

    task: Task = registry.lookup("tasks", task_name)
    if task.row_key is None:
        raise ConfigError(f"task {task_name!r} cannot import answers (it defines no row key)")
    loaded = task.load(data_dir)
    ids = {s.id for s in loaded.samples}
    texts: dict[str, str] = {}
    models: set[str] = set()
    for lineno, row in read_jsonl(answers, required=(answer_field,)):
        try:
            key = task.row_key(row)
        except KeyError as exc:
            raise DataError(f"{answers}:{lineno}: missing required field {exc.args[0]!r}") from None
        if key not in ids:
            raise DataError(f"{answers}:{lineno}: no {task_name} sample has the key {key!r}")
        if key in texts:
            raise DataError(f"{answers}:{lineno}: a second answer for {key!r}")
        if not isinstance(row[answer_field], str):
            raise DataError(f"{answers}:{lineno}: field {answer_field!r} is not a string")
        texts[key] = row[answer_field]
        if isinstance(row.get("model_id"), str):
            models.add(row["model_id"])
    if model is None:
        if len(models) > 1:
            raise DataError(f"{answers}: answers from several models ({', '.join(sorted(models))}): pass --model")
        model = models.pop() if models else answers.stem
    spec = ModelSpec(backend="import", model=model)
    source = ImportedAnswers(model, str(answers), sha256_file(answers))
    manifest = build_manifest(task, spec, source.describe(), task.params, loaded)
    store = RunStore(run_directory(out, spec.slug, task.name))
    store.lock()
    try:
        store.check_compatible(manifest)
        stored = store.generations()
        store.write_manifest(manifest)
        store.open()
    except BaseException:
        store.unlock()
        raise
    try:
        known = set(store.samples())
        for sample in loaded.samples:
            if sample.id not in known:
                store.add_sample(sample)
        for key, text in texts.items():
            if (key, 0) not in stored or stored[(key, 0)].text != text:
                store.add_generation(Generation(sample_id=key, n_index=0, model=model, text=text, finish_reason="stop"))
    finally:
        store.close()
    print(
        f"imported {len(texts)} answers of {model} for {len(loaded.samples)} {task_name} samples -> {store.dir}",
        file=sys.stderr,
    )
    return store.dir
