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

COMMANDS = ("run", "tasks", "leaderboard")
EPILOG = """commands:
  mue-eval [run] [options]        evaluate a model (the default command; see the options above)
  mue-eval tasks [--data-dir D]   list tasks and how many items each has
  mue-eval leaderboard [DIR]      re-render tables from stored results (no model calls)

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
    return p


def _tasks_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mue-eval tasks", description="List tasks and their item counts.")
    p.add_argument("--data-dir", help="local benchmark data (default: $MUE_DATA_DIR)")
    return p


def _leaderboard_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mue-eval leaderboard", description="Rebuild tables from stored results.")
    p.add_argument("results", nargs="?", default="results", help="results directory (default: results)")
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    return p


def _positive(name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        raise MueError(f"{name} must be positive, got {value}")


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from .data import resolve_data_dir
    from .pipeline import evaluate

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
    return asyncio.run(
        evaluate(
            model=args.model,
            backend=args.backend,
            base_url=args.base_url,
            backend_options=options,
            task_names=task_names,
            out=Path(args.out),
            data_dir=resolve_data_dir(args.data_dir),
            limit=args.limit,
            overrides=overrides,
            progress=not args.quiet,
        )
    )


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
    runs, problems = collect_runs(root)
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
    parser = {"run": _run_parser, "tasks": _tasks_parser, "leaderboard": _leaderboard_parser}[command]()
    args = parser.parse_args(argv)
    handler = {"run": cmd_run, "tasks": cmd_tasks, "leaderboard": cmd_leaderboard}[command]
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
