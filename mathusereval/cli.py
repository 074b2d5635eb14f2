"""``mue-eval``: run evaluations, list tasks, rebuild leaderboards.

Only argparse and the standard library are imported at start-up; engines, rich and the task modules are
imported when a command needs them, so ``mue-eval --help`` returns at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import MueError

COMMANDS = ("run", "tasks", "leaderboard", "grade", "import")
EPILOG = """commands:
  mue-eval [run] [options]        evaluate a model (the default command; see the options above)
  mue-eval tasks [--data-dir D]   list tasks and how many items each has
  mue-eval leaderboard [DIR]      re-render tables from stored results (no model calls)
  mue-eval grade RUN_DIR...       grade stored answers again, e.g. with --judge MODEL (no regeneration)
  mue-eval import FILE --task T   store answers generated elsewhere as a run, ready for grade

With no arguments, mue-eval runs the embedded SmolLM2-135M-Instruct on the built-in demo task.
"""


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval",
        description="Evaluate LLMs on MathUserEval, GSM8K, MATH and AlignBench.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        help="a .gguf file, an HF model directory, a served model name with "
        "--base-url, or 'smollm2-135m-instruct' (embedded, the default)",
    )
    p.add_argument("--backend", help="force a backend: llamacpp, openai, vllm, or a plugin's name")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    p.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (never written to results)",
    )
    p.add_argument("--tasks", default="demo", help="comma-separated task names (default: demo)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items of each task")
    p.add_argument("--out", default="results", help="results directory (default: results)")
    p.add_argument("--data-dir", help="local benchmark data (default: $MUE_DATA_DIR)")
    p.add_argument("--samples", type=int, dest="n", help="generations per item (default: 1)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float, dest="top_p")
    p.add_argument("--max-tokens", type=int, dest="max_tokens")
    p.add_argument("--seed", type=int)
    p.add_argument("--concurrency", type=int, help="requests in flight for served models (default: 32)")
    p.add_argument("--timeout", type=float, help="per-request timeout in seconds for served models")
    p.add_argument("--threads", type=int, help="CPU threads for llama.cpp (default: half the cores)")
    p.add_argument("--n-ctx", type=int, dest="n_ctx", help="context window for llama.cpp (default: 4096)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_grading_options(p)
    return p


def _add_grading_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("grading and LLM judges")
    g.add_argument("--graders", help="comma-separated graders replacing the task's own; the first is primary")
    g.add_argument(
        "--judge",
        metavar="MODEL",
        help="judge model for judge-scored tasks: a served model name with --judge-base-url, a .gguf file, "
        "or 'smollm2-135m-instruct' (embedded, for offline plumbing only)",
    )
    g.add_argument("--judge-backend", help="force the judge's backend: llamacpp, openai, vllm, or a plugin's name")
    g.add_argument("--judge-base-url", help="OpenAI-compatible endpoint of the judge")
    g.add_argument("--judge-api-key-env", default="OPENAI_API_KEY", help="variable holding the judge's API key")
    g.add_argument("--judge-concurrency", type=int, help="judge requests in flight (default: 32)")
    g.add_argument("--judge-timeout", type=float, help="per-request timeout of judge calls in seconds")
    g.add_argument("--judge-max-tokens", type=int, default=2048, help="judge reply limit (default: 2048)")
    g.add_argument("--judge-n-ctx", type=int, help="context window when llama.cpp runs the judge (default: 4096)")
    g.add_argument(
        "--judge-retries", type=int, default=2, help="extra attempts for an unparseable judgment (default: 2)"
    )
    g.add_argument(
        "--judge-cascade",
        action="store_true",
        help="let the answer grader settle clear math items; only the rest are sent to the judge",
    )
    g.add_argument(
        "--judge-price",
        metavar="IN,OUT",
        help="judge price in USD per million prompt,completion tokens (for cost reports and --judge-budget)",
    )
    g.add_argument("--judge-budget", type=float, metavar="USD", help="stop judging after spending this much")
    g.add_argument("--judge-token-budget", type=int, metavar="N", help="stop judging after this many tokens")
    g.add_argument(
        "--parity",
        choices=("none", "upstream"),
        default="none",
        help="'upstream': aggregate judge scores as upstream code does (unparseable = -1), for comparisons",
    )


def _grade_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval grade",
        description="Grade stored answers again (missing grades, or judge grades from another judge). "
        "Answers are never regenerated; stored judge replies are reused.",
    )
    p.add_argument("runs", nargs="+", help="run directories, e.g. results/MODEL/mathusereval")
    p.add_argument("--limit", type=int, help="grade only the first N samples of each run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_grading_options(p)
    return p


def _import_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval import",
        description="Store answers generated elsewhere (JSONL rows with the question's key fields and an "
        "answer) as a run, e.g. ChatGLM-Math's data/model_answer/*.jsonl.",
    )
    p.add_argument("answers", help="JSONL file of answers")
    p.add_argument("--task", required=True, help="the task the answers belong to, e.g. mathusereval")
    p.add_argument("--model", help="model name (default: the rows' model_id, else the file name)")
    p.add_argument("--answer-field", default="answer", help="the field holding the answer text (default: answer)")
    p.add_argument("--out", default="results", help="results directory (default: results)")
    p.add_argument("--data-dir", help="local benchmark data (default: $MUE_DATA_DIR)")
    return p


def _tasks_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mue-eval tasks", description="List tasks and their item counts.")
    p.add_argument("--data-dir", help="local benchmark data (default: $MUE_DATA_DIR)")
    return p


def _leaderboard_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mue-eval leaderboard", description="Rebuild tables from stored results.")
    p.add_argument("results", nargs="?", default="results", help="results directory (default: results)")
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    p.add_argument(
        "--parity", choices=("none", "upstream"), default="none", help="'upstream': unparseable judgments count -1"
    )
    return p


def _positive(name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        raise MueError(f"{name} must be positive, got {value}")


def _judge_settings(args: argparse.Namespace) -> Any:
    """`JudgeSettings` from the ``--judge*`` options, or None without ``--judge``."""
    from .backends import resolve_model
    from .judging import JudgeSettings

    for dest, flag in (
        ("judge_concurrency", "--judge-concurrency"),
        ("judge_timeout", "--judge-timeout"),
        ("judge_max_tokens", "--judge-max-tokens"),
        ("judge_n_ctx", "--judge-n-ctx"),
        ("judge_budget", "--judge-budget"),
        ("judge_token_budget", "--judge-token-budget"),
    ):
        _positive(flag, getattr(args, dest))
    if args.judge_retries < 0:
        raise MueError(f"--judge-retries must be 0 or more, got {args.judge_retries}")
    prices = None
    if args.judge_price:
        try:
            prices = tuple(float(x) for x in args.judge_price.split(","))
        except ValueError:
            prices = ()
        if len(prices) != 2 or min(prices) < 0:
            raise MueError(
                f"--judge-price wants IN,OUT in USD per million tokens, e.g. 10,30; got {args.judge_price!r}"
            )
    if args.judge_budget is not None and prices is None:
        raise MueError("--judge-budget is in USD: also pass --judge-price IN,OUT")
    if args.judge is None:
        judge_only = [f for f in ("judge_backend", "judge_base_url", "judge_price") if getattr(args, f)]
        if judge_only or args.judge_cascade or args.judge_budget or args.judge_token_budget:
            raise MueError("judge options were given without --judge MODEL")
        return None
    options: dict[str, Any] = {
        "concurrency": args.judge_concurrency,
        "timeout": args.judge_timeout,
        "n_ctx": args.judge_n_ctx,
        "api_key_env": args.judge_api_key_env,
    }
    options = {k: v for k, v in options.items() if v is not None}
    spec = resolve_model(args.judge, args.judge_backend, args.judge_base_url, options)
    return JudgeSettings(
        spec=spec,
        max_tokens=args.judge_max_tokens,
        parse_retries=args.judge_retries,
        cascade=args.judge_cascade,
        prices=prices,  # type: ignore[arg-type]
        budget_usd=args.judge_budget,
        budget_tokens=args.judge_token_budget,
    )


def _grader_names(args: argparse.Namespace) -> tuple[str, ...] | None:
    if not args.graders:
        return None
    names = tuple(g.strip() for g in args.graders.split(",") if g.strip())
    if not names:
        raise MueError("--graders is empty")
    return names


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from .backends import resolve_model
    from .commands import evaluate
    from .data import resolve_data_dir
    from .pipeline import RunOptions

    for dest, flag in (
        ("limit", "--limit"),
        ("n", "--samples"),
        ("max_tokens", "--max-tokens"),
        ("concurrency", "--concurrency"),
        ("threads", "--threads"),
        ("n_ctx", "--n-ctx"),
        ("timeout", "--timeout"),
    ):
        _positive(flag, getattr(args, dest))
    overrides = {
        k: getattr(args, k) for k in ("temperature", "top_p", "max_tokens", "seed", "n") if getattr(args, k) is not None
    }
    options: dict[str, Any] = {
        k: getattr(args, k) for k in ("concurrency", "timeout", "threads", "n_ctx") if getattr(args, k) is not None
    }
    options["api_key_env"] = args.api_key_env
    task_names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not task_names:
        raise MueError("--tasks is empty")
    judge = _judge_settings(args)
    run_options = RunOptions(
        out=Path(args.out),
        data_dir=resolve_data_dir(args.data_dir),
        limit=args.limit,
        overrides=overrides,
        progress=not args.quiet,
        graders=_grader_names(args),
        parity=args.parity,
    )
    spec = resolve_model(args.model, args.backend, args.base_url, options)
    return asyncio.run(evaluate(spec=spec, task_names=task_names, options=run_options, judge=judge))


def cmd_grade(args: argparse.Namespace) -> int:
    import asyncio

    from .commands import grade
    from .pipeline import RunOptions

    _positive("--limit", args.limit)
    judge = _judge_settings(args)
    options = RunOptions(limit=args.limit, progress=not args.quiet, graders=_grader_names(args), parity=args.parity)
    return asyncio.run(grade([Path(r) for r in args.runs], options, judge))


def cmd_import(args: argparse.Namespace) -> int:
    from .commands import import_answers
    from .data import resolve_data_dir

    path = Path(args.answers)
    if not path.is_file():
        raise MueError(f"answer file {path} does not exist")
    import_answers(path, args.task, Path(args.out), resolve_data_dir(args.data_dir), args.model, args.answer_field)
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import registry
    from .data import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    table = Table(title=f"tasks (data: {data_dir or 'official sources'})")
    for column in ("task", "items", "description"):
        table.add_column(column)
    for name in registry.names("tasks"):
        task = registry.lookup("tasks", name)
        try:
            count = str(len(task.load(data_dir).samples))
        except MueError as exc:
            count = f"[red]unavailable[/red]: {exc}"
        table.add_row(name, count, task.description)
    Console().print(table)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import build_table, collect_runs, print_table, to_markdown

    root = Path(args.results)
    if not root.is_dir():
        raise MueError(f"results directory {root} does not exist")
    runs, problems = collect_runs(root, args.parity)
    for problem in problems:
        print(f"mue-eval: warning: skipped a run: {problem}", file=sys.stderr)
    if not runs:
        raise MueError(f"no runs found under {root}")
    table = build_table(runs)
    print_table(table)
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(table), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    parsers = {
        "run": _run_parser,
        "tasks": _tasks_parser,
        "leaderboard": _leaderboard_parser,
        "grade": _grade_parser,
        "import": _import_parser,
    }
    args = parsers[command]().parse_args(argv)
    handlers = {
        "run": cmd_run,
        "tasks": cmd_tasks,
        "leaderboard": cmd_leaderboard,
        "grade": cmd_grade,
        "import": cmd_import,
    }
    handler = handlers[command]
    try:
        return handler(args)
    except MueError as exc:
        print(f"mue-eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mue-eval: interrupted; finished work is saved, run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
