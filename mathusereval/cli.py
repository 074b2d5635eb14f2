"""``mue-eval``: run evaluations, list tasks, rebuild leaderboards.

Only argparse and the standard library are imported at start-up; engines, rich and the task modules are
imported when a command needs them, so ``mue-eval --help`` returns at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any

from .cli_data import agreement_parser, cmd_agreement, cmd_export, cmd_verify, export_parser, verify_parser
from .errors import MueError, one_line
from .include import split_include

COMMANDS = ("run", "tasks", "leaderboard", "grade", "import", "export", "agreement", "verify")
EPILOG = """commands:
  mue-eval [run] [options]        evaluate a model (the default command; see the options above)
  mue-eval tasks [--data-dir D]   list tasks and how many items each has
  mue-eval leaderboard [DIR]      re-render tables from stored results (no model calls)
  mue-eval grade RUN_DIR...       grade stored answers again, e.g. with --judge MODEL (no regeneration)
  mue-eval import FILE --task T   store answers generated elsewhere as a run, ready for grade
  mue-eval export RUN... --format rft|dpo|kto --out F
                                  training data from judged runs (RFT answers, DPO pairs, KTO rows)
  mue-eval agreement A B          how far two graders agree on the same answers (kappa, Spearman, ...)
  mue-eval verify RUN...          say whether a run was edited after it was written
  mue-eval lm-eval ARGS...        lm-eval's CLI with our tasks added (mathusereval_gsm8k, ..., group
                                  mathusereval); --only-ours skips indexing lm-eval's own tasks,
                                  --judge MODEL [--judge-base-url URL] scores the judged tasks

--include FILE_OR_DIR (repeatable, any command) imports tasks, graders and backends from Python files that
call mathusereval.register, without packaging them.

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
    p.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; several comma-separated URLs serving "
        "the same model are load-balanced",
    )
    p.add_argument("--tasks", default="demo", help="comma-separated task names (default: demo)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items of each task")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="run shard I of N of each task (0 <= I < N; a stable hash partition) in <out>/<model>/<task>/"
        "shard-I-of-N, for N independent jobs (Slurm arrays); the leaderboard shows the shards as one run",
    )
    p.add_argument("--out", default="results", help="results directory (default: results)")
    p.add_argument("--data-dir", help="local benchmark data (default: $MUE_DATA_DIR)")
    p.add_argument("--samples", type=int, dest="n", help="generations per item (default: 1)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float, dest="top_p")
    p.add_argument("--max-tokens", type=int, dest="max_tokens")
    p.add_argument("--seed", type=int)
    p.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    p.add_argument("--threads", type=int, help="CPU threads for llama.cpp (default: half the cores)")
    p.add_argument("--n-ctx", type=int, dest="n_ctx", help="context window for llama.cpp (default: 4096)")
    _add_served_options(p)
    _add_vllm_options(p)
    b = p.add_argument_group("cost and budget of the evaluated model")
    b.add_argument("--price", metavar="IN,OUT", help="USD per million prompt,completion tokens, for cost reports")
    b.add_argument("--max-cost", type=float, metavar="USD", help="stop generating after spending this much")
    b.add_argument("--max-tokens-total", type=int, metavar="N", help="stop generating after this many tokens")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_grading_options(p)
    return p


def _add_served_options(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("served models (--base-url, --serve)")
    s.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (default: OPENAI_API_KEY; never written to results)",
    )
    s.add_argument("--api-key", help="the API key itself (prefer --api-key-env; never written to results)")
    s.add_argument("--header", action="append", metavar="'NAME: VALUE'", help="extra HTTP header (repeatable)")
    s.add_argument(
        "--endpoint",
        choices=("chat", "completions"),
        default="chat",
        help="chat (default) or completions: the prompt as plain text, for base models",
    )
    s.add_argument("--concurrency", type=int, help="requests in flight per endpoint (default: 64)")
    s.add_argument("--timeout", type=float, help="per-request timeout in seconds (default: 600)")
    s.add_argument("--max-retries", type=int, help="retries of a failed request (default: 5)")
    s.add_argument(
        "--max-reply-bytes",
        type=int,
        help="largest reply body accepted, decoded (default: 1 MiB + 64 bytes per --max-tokens); larger is an error",
    )
    s.add_argument(
        "--think",
        choices=("strip", "keep"),
        default="strip",
        help="reasoning models: 'strip' (default) grades only what follows </think> and stores the thinking "
        "apart; 'keep' grades the whole reply",
    )
    s.add_argument(
        "--serve",
        action="store_true",
        help="start vLLM's OpenAI server for --model DIR (one per --data-parallel-size) and evaluate through it",
    )


def _add_vllm_options(p: argparse.ArgumentParser) -> None:
    v = p.add_argument_group("vLLM (--model HF_DIR)")
    v.add_argument("--tensor-parallel-size", type=int, help="GPUs per model replica")
    v.add_argument("--data-parallel-size", type=int, help="model replicas")
    v.add_argument("--gpu-memory-utilization", type=float, help="fraction of GPU memory vLLM may use (vLLM: 0.9)")
    v.add_argument("--max-model-len", type=int, help="context length (default: the model's)")
    v.add_argument("--dtype", help="weights dtype, e.g. bfloat16 (default: vLLM's auto)")
    v.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs / torch.compile: faster start")
    v.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run --data-parallel-size replicas of the in-process engine (llama.cpp or vLLM) as Ray actors: "
        "'auto' (a running cluster), 'local' (start one here) or a cluster address; needs mathusereval[ray]",
    )


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
    g.add_argument("--judge-concurrency", type=int, help="judge requests in flight per endpoint (default: 64)")
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
        "--verifier",
        metavar="MODEL",
        help="model of the 'verifier' grader (--graders answer,verifier): answers the rules mark wrong or cannot "
        "read are checked by it (A/B/C); a served name with --verifier-base-url, a .gguf, or the embedded model",
    )
    g.add_argument("--verifier-base-url", help="OpenAI-compatible endpoint of the verifier")
    g.add_argument("--verifier-backend", help="force the verifier's backend")
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
        "--out",
        help="write leaderboard.md/.csv, per-task breakdowns (tasks/<task>.md/.csv), plots/*.png and the web "
        "page index.html with runs/<run>.html (sample-level records) into this directory",
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="add the published MathUserEval/AlignBench rows (labelled [published], with source and judge)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply judge scores in --out files, e.g. 10 for OpenCompass's 10-100 convention (labelled)",
    )
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
    from .budget import parse_prices
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
    prices = parse_prices(args.judge_price, "--judge-price")
    if args.judge_budget is not None and prices is None:
        raise MueError("--judge-budget is in USD: also pass --judge-price IN,OUT")
    if args.verifier is None and (args.verifier_base_url or args.verifier_backend):
        raise MueError("verifier options were given without --verifier MODEL")
    if args.judge is None:
        judge_only = [f for f in ("judge_backend", "judge_base_url", "judge_price") if getattr(args, f)]
        if judge_only or args.judge_cascade or args.judge_budget or args.judge_token_budget:
            raise MueError("judge options were given without --judge MODEL")
        if args.verifier is None:
            return None
    options: dict[str, Any] = {
        "concurrency": args.judge_concurrency,
        "timeout": args.judge_timeout,
        "n_ctx": args.judge_n_ctx,
        "api_key_env": args.judge_api_key_env,
    }
    options = {k: v for k, v in options.items() if v is not None}

    def settings(spec: Any) -> Any:
        return JudgeSettings(
            spec=spec,
            max_tokens=args.judge_max_tokens,
            parse_retries=args.judge_retries,
            cascade=args.judge_cascade,
            prices=prices,
            budget_usd=args.judge_budget,
            budget_tokens=args.judge_token_budget,
        )

    verifier = None
    if args.verifier is not None:  # the verifier shares the judge's settings, not its model
        verifier = settings(resolve_model(args.verifier, args.verifier_backend, args.verifier_base_url, options))
    if args.judge is None:
        return verifier
    judge = settings(resolve_model(args.judge, args.judge_backend, args.judge_base_url, options))
    return dataclasses.replace(judge, verifier=verifier)


def _grader_names(args: argparse.Namespace) -> tuple[str, ...] | None:
    if not args.graders:
        return None
    names = tuple(g.strip() for g in args.graders.split(",") if g.strip())
    if not names:
        raise MueError("--graders is empty")
    return names


ENGINE_OPTIONS = (
    "concurrency",
    "timeout",
    "max_retries",
    "max_reply_bytes",
    "threads",
    "n_ctx",
    "tensor_parallel_size",
    "data_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
    "dtype",
)


def _headers(values: list[str] | None) -> dict[str, Any]:
    from .backends.base import Secret

    headers: dict[str, Any] = {}
    for value in values or []:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise MueError(f"--header wants 'NAME: VALUE', got {value!r}")
        headers[name.strip()] = Secret(content.strip())
    return headers


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the backend gets from the command line; secrets wrapped so no record or repr shows them."""
    from .backends.base import Secret

    for dest in (
        "concurrency",
        "threads",
        "n_ctx",
        "timeout",
        "tensor_parallel_size",
        "data_parallel_size",
        "max_reply_bytes",
    ):
        _positive("--" + dest.replace("_", "-"), getattr(args, dest))
    if args.max_retries is not None and args.max_retries < 0:
        raise MueError(f"--max-retries must be 0 or more, got {args.max_retries}")
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        raise MueError(f"--gpu-memory-utilization must be in (0, 1], got {args.gpu_memory_utilization}")
    options: dict[str, Any] = {k: getattr(args, k) for k in ENGINE_OPTIONS if getattr(args, k) is not None}
    options.update(api_key_env=args.api_key_env, endpoint=args.endpoint, think=args.think)
    if args.enforce_eager:
        options["enforce_eager"] = True
    if args.api_key:
        options["api_key"] = Secret(args.api_key)
    if args.header:
        options["headers"] = _headers(args.header)
    return options


def _budget(args: argparse.Namespace) -> Any:
    from .budget import Budget, parse_prices

    _positive("--max-cost", args.max_cost)
    _positive("--max-tokens-total", args.max_tokens_total)
    prices = parse_prices(args.price, "--price")
    if args.max_cost is not None and prices is None:
        raise MueError("--max-cost is in USD: also pass --price IN,OUT")
    if prices is None and args.max_tokens_total is None:
        return None
    return Budget("generation", prices, args.max_cost, args.max_tokens_total)


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from .backends import ModelSpec, resolve_model
    from .commands import evaluate
    from .data import resolve_data_dir
    from .pipeline import RunOptions
    from .shards import parse_shard

    for dest, flag in (("limit", "--limit"), ("n", "--samples"), ("max_tokens", "--max-tokens")):
        _positive(flag, getattr(args, dest))
    overrides = {
        k: getattr(args, k) for k in ("temperature", "top_p", "max_tokens", "seed", "n") if getattr(args, k) is not None
    }
    if args.stop:
        overrides["stop"] = tuple(args.stop)
    task_names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not task_names:
        raise MueError("--tasks is empty")
    judge = _judge_settings(args)
    budget = _budget(args)
    run_options = RunOptions(
        out=Path(args.out),
        data_dir=resolve_data_dir(args.data_dir),
        limit=args.limit,
        overrides=overrides,
        progress=not args.quiet,
        graders=_grader_names(args),
        parity=args.parity,
        shard=parse_shard(args.shard) if args.shard else None,
    )
    spec = resolve_model(args.model, args.backend, args.base_url, _backend_options(args))
    if args.ray:
        if spec.backend not in ("llamacpp", "vllm") or args.serve:
            raise MueError("--ray runs in-process engines: a .gguf (llama.cpp) or an HF model folder (vLLM)")
        spec = ModelSpec("ray", spec.model, {**spec.options, "ray": args.ray, "ray_engine": spec.backend})
    if args.serve:
        from .serving import serve_and_evaluate

        return asyncio.run(serve_and_evaluate(spec, task_names, run_options, judge, budget))
    return asyncio.run(evaluate(spec=spec, task_names=task_names, options=run_options, judge=judge, budget=budget))


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
    from .leaderboard import build_table, collect_runs, partial, print_table, to_markdown

    root = Path(args.results)
    if not root.is_dir():
        raise MueError(f"results directory {root} does not exist")
    runs, problems = collect_runs(root, args.parity)
    for problem in problems:
        print(f"mue-eval: warning: skipped a run: {problem}", file=sys.stderr)
    for note in filter(None, map(partial, runs)):
        print(f"mue-eval: warning: {note}", file=sys.stderr)
    from .integrity import verify_run

    for run in runs:
        # a shard's summary holds its own metrics: recomputed per shard, not compared with the merged run's
        checks = [verify_run(d) for d in run.parts] if run.parts else [verify_run(run.directory, run.metrics)]
        for problem in [p for check in checks for p in check.problems]:
            print(f"mue-eval: warning: edited after it was written: {problem}", file=sys.stderr)
    if not runs:
        raise MueError(f"no runs found under {root}")
    table = build_table(runs, reference=args.reference)
    print_table(table)
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(table), encoding="utf-8")
    if args.out:
        from .leaderboard import write_leaderboard

        _positive("--scale", args.scale)
        written = write_leaderboard(runs, Path(args.out), args.scale, reference=args.reference)
        print(f"mue-eval: wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lm-eval":  # lm-eval parses its own arguments
        from .lmeval import run_lm_eval

        try:
            return run_lm_eval(argv[1:])
        except MueError as exc:
            print(f"mue-eval: error: {exc}", file=sys.stderr)
            return 2
    try:
        includes, argv = split_include(argv)
        if includes:
            from .include import include

            include(includes)
    except MueError as exc:
        print(f"mue-eval: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    parsers = {
        "run": _run_parser,
        "tasks": _tasks_parser,
        "leaderboard": _leaderboard_parser,
        "grade": _grade_parser,
        "import": _import_parser,
        "export": export_parser,
        "agreement": agreement_parser,
        "verify": verify_parser,
    }
    args = parsers[command]().parse_args(argv)
    handlers = {
        "run": cmd_run,
        "tasks": cmd_tasks,
        "leaderboard": cmd_leaderboard,
        "grade": cmd_grade,
        "import": cmd_import,
        "export": cmd_export,
        "agreement": cmd_agreement,
        "verify": cmd_verify,
    }
    handler = handlers[command]
    # SIGTERM (Slurm, Kubernetes, `kill`) stops a run as Ctrl-C does: answers kept, a clean message
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return handler(args)
    except MueError as exc:
        print(f"mue-eval: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only --out, permissions taken away mid-run
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"mue-eval: error: {where}{exc.strerror or exc}; answers already written are kept, and the same "
            "command resumes once this is fixed",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("mue-eval: interrupted; finished work is saved, run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
