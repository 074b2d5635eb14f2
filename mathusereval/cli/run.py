"""``mue-eval [run]``: evaluate a model on tasks, then print the table of these runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MueError
from . import options

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


def parser() -> argparse.ArgumentParser:
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
    options.add_served_options(p)
    options.add_vllm_options(p)
    options.add_budget_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    options.add_grading_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ..backends import ModelSpec, resolve_model
    from ..backends.options import RayOptions, ServedOptions, options_for
    from ..data.files import resolve_data_dir
    from ..data.shards import parse_shard
    from ..plugins import registry
    from ..run.judge_options import judge_settings
    from ..run.pipeline import RunOptions
    from ..run.session import evaluate, incomplete, serve_and_evaluate

    for dest, flag in (("limit", "--limit"), ("n", "--samples"), ("max_tokens", "--max-tokens")):
        options.positive(flag, getattr(args, dest))
    overrides = {
        k: getattr(args, k) for k in ("temperature", "top_p", "max_tokens", "seed", "n") if getattr(args, k) is not None
    }
    if args.stop:
        overrides["stop"] = tuple(args.stop)
    task_names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not task_names:
        raise MueError("--tasks is empty")
    judges = judge_settings(options.judge_options(args))
    budget = options.budget(args)
    run_options = RunOptions(
        out=Path(args.out),
        data_dir=resolve_data_dir(args.data_dir),
        limit=args.limit,
        overrides=overrides,
        progress=not args.quiet,
        graders=options.grader_names(args),
        parity=args.parity,
        shard=parse_shard(args.shard) if args.shard else None,
        think=args.think,
    )
    values = options.backend_values(args)
    spec = resolve_model(args.model, args.backend, args.base_url, values)
    if args.ray:
        if spec.backend not in ("llamacpp", "vllm") or args.serve:
            raise MueError("--ray runs in-process engines: a .gguf (llama.cpp) or an HF model folder (vLLM)")
        replicas = int(values.get("data_parallel_size") or 1)
        ray = RayOptions(address=args.ray, engine=spec.backend, engine_options=spec.options, replicas=replicas)
        spec = ModelSpec("ray", spec.model, ray)
    if args.serve:
        via = options_for("openai", values)
        assert isinstance(via, ServedOptions)
        work = serve_and_evaluate(spec, via, task_names, run_options, judges, budget)
    else:
        work = evaluate(spec=spec, task_names=task_names, options=run_options, judges=judges, budget=budget)
    results = asyncio.run(work)
    registry.lookup("renderers", "leaderboard").print_table(results)
    return 1 if incomplete(results) else 0
