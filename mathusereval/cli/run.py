"""``mue-eval [run]``: evaluate one model (or several: a sweep) on tasks, then print the table of these runs."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
  mue-eval compare A B            is B better than A on the same items (paired: delta, CI, p-value)
  mue-eval watch DIR --config F   evaluate each checkpoint a training run writes under DIR, once complete
  mue-eval models                 the embedded model and the engines installed here
  mue-eval lm-eval ARGS...        lm-eval's CLI with our tasks added (mathusereval_gsm8k, ..., group
                                  mathusereval); --only-ours skips indexing lm-eval's own tasks,
                                  --judge MODEL [--judge-base-url URL] scores the judged tasks

--include FILE_OR_DIR (repeatable, any command) imports tasks, graders and backends from Python files that
call mathusereval.register, without packaging them.

With no arguments, mue-eval runs the embedded SmolLM2-135M-Instruct on the built-in demo task.
"""


def parser() -> argparse.ArgumentParser:
    """``mue-eval run``'s options, grouped by what a user is doing: which model, which tasks and items, how
    to generate, how each engine runs, grading and each grading role, budgets, output."""
    from ..__about__ import __version__
    from ..backends.options import ENDPOINTS
    from ..run.choices import LIMIT_ORDERS, LOG_TARGETS, RAY_DISPATCH, THINK_MODES
    from ..run.roles import MODEL_ROLE

    p = argparse.ArgumentParser(
        prog="mue-eval",
        description="Evaluate LLMs on MathUserEval, GSM8K, MATH and AlignBench.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p._optionals.title = "general"
    p.add_argument("--version", action="version", version=f"mathusereval {__version__}")
    p.add_argument("--config", metavar="FILE.toml", help="options from a TOML file (flags given here override it)")
    m = p.add_argument_group("which model")
    tasks = p.add_argument_group("which tasks and items")
    gen = p.add_argument_group("generation (each is part of the run's identity)")
    llama = p.add_argument_group("llama.cpp in process (--model FILE.gguf)")
    vllm = p.add_argument_group("vLLM in process (--model HF_DIR)")
    scale = p.add_argument_group("scale-out: Ray replicas and shards")
    budgets, add_grading_flags = options.grading_groups(p, "budgets (the model's and, together, the LLM graders')")
    out = p.add_argument_group("output")
    guards = p.add_argument_group(
        "run-health guards (off unless given; each a share between 0 and 1 of a task's last 200 answers, checked "
        "once --guard-min-answers have arrived; past it the run stops with exit 3 and keeps what it stored)"
    )

    options.add_role_flags(
        m, MODEL_ROLE, {"n_ctx": llama, "price": budgets, "budget": budgets, "token_budget": budgets}
    )
    m.add_argument("--api-key", help="the API key itself (prefer --api-key-env; never written to results)")
    m.add_argument(
        "--endpoint",
        choices=ENDPOINTS,
        default="chat",
        help="chat (default) or completions: the prompt as plain text, for base models",
    )
    m.add_argument(
        "--max-reply-bytes",
        type=int,
        metavar="B",
        help="largest reply body accepted, decoded (default: 1 MiB + 64 bytes per --max-tokens); larger is an error",
    )
    m.add_argument(
        "--serve",
        action="store_true",
        help="start vLLM's OpenAI server for --model DIR (one per --data-parallel-size) and evaluate through it",
    )

    tasks.add_argument("--tasks", default="demo", help="comma-separated task or group names (default: demo)")
    tasks.add_argument("--data-dir", metavar="DIR", help="local benchmark data (default: $MUE_DATA_DIR)")
    tasks.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="evaluate N items of each task: spread over the task's categories (the same items every run; "
        "a larger N contains them), or the first N with --limit-order file",
    )
    tasks.add_argument("--limit-order", choices=LIMIT_ORDERS, default="spread", help="which items --limit takes")
    tasks.add_argument("--sample-ids", metavar="FILE", help="evaluate only the items whose ids the file lists")
    tasks.add_argument(
        "--sandbox",
        choices=("isolated", "unisolated"),
        default="isolated",
        help="tool-integrated tasks (<task>-tir): run the model's programs in namespaces (default; the run "
        "refuses where the machine does not allow them) or 'unisolated' (rlimits only: network and files reachable)",
    )

    _add_generation_options(gen, THINK_MODES)
    llama.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: half the cores)")
    _add_vllm_options(vllm)
    _add_scale_options(scale, RAY_DISPATCH)

    out.add_argument("--out", default="results", metavar="DIR", help="results directory (default: results)")
    out.add_argument("--name", help="the run's label (its directory and leaderboard row; one model only)")
    out.add_argument("--quiet", action="store_true", help="no progress bars")
    out.add_argument("--log-to", choices=LOG_TARGETS, action="append", help="also log each task's metrics there")
    _add_guard_options(guards)
    add_grading_flags()  # last: the usage line starts with the model, the tasks and generation
    return p


def _add_guard_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--max-truncated", type=options.finite, metavar="SHARE", help="answers cut at max_tokens")
    g.add_argument("--max-no-answer", type=options.finite, metavar="SHARE", help="answers with no final answer")
    g.add_argument("--max-errors", type=options.finite, metavar="SHARE", help="failed requests")
    g.add_argument(
        "--max-judge-unparseable", type=options.finite, metavar="SHARE", help="judge replies that cannot be read"
    )
    g.add_argument(
        "--guard-min-answers", type=int, metavar="N", help="answers a guard waits for before it judges (default: 20)"
    )


def _add_generation_options(g: argparse._ArgumentGroup, think_modes: tuple[str, ...]) -> None:
    g.add_argument("--samples", type=int, dest="n", metavar="N", help="generations per item (default: 1)")
    g.add_argument("--temperature", type=options.finite, metavar="T", help="sampling temperature (default: the task's)")
    g.add_argument("--top-p", type=options.finite, dest="top_p", metavar="P", help="nucleus sampling (default: 1)")
    g.add_argument("--top-k", type=int, dest="top_k", metavar="K", help="top-k sampling (default: off)")
    g.add_argument("--min-p", type=options.finite, dest="min_p", metavar="P", help="min-p sampling (default: off)")
    g.add_argument(
        "--repetition-penalty", type=options.finite, dest="repetition_penalty", metavar="X", help="(default: off)"
    )
    g.add_argument("--max-tokens", type=int, dest="max_tokens", metavar="N", help="reply limit (default: the task's)")
    g.add_argument("--seed", type=int, metavar="N", help="sampling seed (default: the task's)")
    g.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    g.add_argument("--system-prompt", metavar="TEXT|@FILE", help="a system turn before every prompt")
    g.add_argument(
        "--chat-template",
        metavar="FILE",
        help="Jinja chat template for llama.cpp or vLLM in process; with --base-url, the model's template for "
        "continued replies of <task>-tir, sent to /completions (servers that cannot continue a chat turn)",
    )
    g.add_argument("--extra-body", metavar="JSON", help="fields added to every request to an OpenAI-compatible server")
    g.add_argument(
        "--think",
        choices=think_modes,
        default="strip",
        help="reasoning models: 'strip' (default) grades only what follows </think> and stores the thinking "
        "apart; 'keep' grades the whole reply",
    )


def _add_vllm_options(v: argparse._ArgumentGroup) -> None:
    v.add_argument("--tensor-parallel-size", type=int, metavar="N", help="GPUs per model replica")
    v.add_argument("--data-parallel-size", type=int, metavar="N", help="model replicas (vLLM, or Ray replicas)")
    v.add_argument(
        "--gpu-memory-utilization", type=options.finite, metavar="X", help="share of GPU memory vLLM may use (0.9)"
    )
    v.add_argument("--max-model-len", type=int, metavar="N", help="context length (default: the model's)")
    v.add_argument(
        "--max-num-seqs",
        type=int,
        metavar="N",
        help="sequences vLLM batches at once (vLLM: 256); also each Ray replica's max_in_flight",
    )
    v.add_argument("--dtype", help="weights dtype, e.g. bfloat16 (default: vLLM's auto)")
    v.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs / torch.compile: faster start")


def _add_scale_options(s: argparse._ArgumentGroup, dispatch: tuple[str, ...]) -> None:
    s.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run --data-parallel-size replicas of the in-process engine (llama.cpp, vLLM or a plugin's "
        "--backend) as Ray actors: 'auto' (a running cluster), 'local' (start one here) or a cluster address; "
        "needs mathusereval[ray]",
    )
    s.add_argument(
        "--ray-cpus-per-replica",
        type=options.finite,
        metavar="X",
        help="CPUs each replica asks of the cluster, fractions allowed (default: --threads for llama.cpp, else 1)",
    )
    s.add_argument(
        "--ray-gpus-per-replica",
        type=options.finite,
        metavar="Y",
        help="GPUs each replica asks of the cluster, fractions allowed (default: --tensor-parallel-size for vLLM)",
    )
    s.add_argument(
        "--ray-dispatch",
        choices=dispatch,
        default="stream",
        help="'stream' (default): keep each replica at its max_in_flight, topped up as answers arrive; 'batch': "
        "one batch per replica at a time (the 0.2 scheme, for measuring against)",
    )
    s.add_argument(
        "--replica-timeout",
        type=options.finite,
        metavar="S",
        help="a replica with requests in flight that answers nothing for S seconds is given up on and its "
        "requests go to the others (default: 60 + 0.1 s per --max-tokens, 4096 when unset)",
    )
    s.add_argument(
        "--shard",
        metavar="I/N",
        help="run shard I of N of each task (0 <= I < N; a stable hash partition) in <out>/<model>/<task>/"
        "shard-I-of-N, for N independent jobs (Slurm arrays); the leaderboard shows the shards as one run",
    )


SAMPLING_RANGES = (
    ("temperature", "--temperature", 0.0, 100.0),
    ("top_p", "--top-p", 0.0, 1.0),
    ("min_p", "--min-p", 0.0, 1.0),
    ("repetition_penalty", "--repetition-penalty", 1e-6, 100.0),
    ("max_tokens", "--max-tokens", 1, 10_000_000),
    ("seed", "--seed", 0, 2**63 - 1),
)
GENERATION = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_tokens", "seed", "n")


def parse(argv: list[str], p: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The options (of `p`, by default ``run``'s), with ``--config FILE``'s values as defaults under the
    command line's."""
    from .config import apply_config, config_path

    p = p or parser()
    path = config_path(argv)
    per_task = apply_config(p, path) if path is not None else {}
    args = p.parse_args(argv)
    args.task_overrides = per_task
    return args


TEXT_FILE_MAX = 1 << 20
"""``--system-prompt @FILE`` and ``--chat-template FILE`` are at most 1 MiB: either is sent (or rendered) with
every request, so a larger one is a mistake (a wrong file), not a prompt."""


def _text_or_file(value: str | None, flag: str) -> str | None:
    if value is None or not value.startswith("@"):
        if value is not None and len(value.encode()) > TEXT_FILE_MAX:
            raise MueError(f"{flag} is over {TEXT_FILE_MAX >> 20} MiB")
        return value
    try:
        with open(value[1:], "rb") as fh:
            data = fh.read(TEXT_FILE_MAX + 1)
        if len(data) > TEXT_FILE_MAX:
            raise MueError(f"{flag} {value}: the file is over {TEXT_FILE_MAX >> 20} MiB; is it the right file?")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MueError(f"{flag} {value}: cannot be read ({exc})") from exc


def _effective_config(args: argparse.Namespace) -> dict[str, Any]:
    """What the manifest records of the invocation: every option as given or defaulted; secrets left out
    (the API key, header values) or redacted (credentials in URLs)."""
    from ..backends.replies import UrlCredentials

    # every role's headers and API key (the model's, the judge's, the verifier's, a plugin role's) stay out
    hidden = {k for k in vars(args) if k in ("api_key", "header") or k.endswith(("_header", "_api_key"))}
    config = {k: v for k, v in sorted(vars(args).items()) if k not in hidden and v is not None and v is not False}
    for key in [k for k in config if k == "base_url" or k.endswith("_base_url")]:
        if key in config:
            config[key] = ",".join(UrlCredentials.of(u.strip()).shown for u in str(config[key]).split(","))
    return config


def _run_options(args: argparse.Namespace) -> Any:
    from ..data.files import resolve_data_dir
    from ..data.shards import parse_shard
    from ..run.pipeline import RunOptions
    from ..run.selection import read_sample_ids

    for dest, flag in (("limit", "--limit"), ("n", "--samples"), ("max_tokens", "--max-tokens"), ("top_k", "--top-k")):
        options.positive(flag, getattr(args, dest))
    for dest, flag, low, high in SAMPLING_RANGES:  # out of range is refused here, not sent to the server
        value = getattr(args, dest)
        if value is not None and not low <= value <= high:
            raise MueError(f"{flag} must be between {low:g} and {high:g}, got {value:g}")
    overrides = {k: getattr(args, k) for k in GENERATION if getattr(args, k) is not None}
    if args.stop:
        overrides["stop"] = tuple(args.stop)
    task_overrides = {
        task: {k: tuple(v) if k == "stop" else v for k, v in values.items()}
        for task, values in args.task_overrides.items()
    }
    sample_ids = None
    if args.sample_ids:
        path = Path(args.sample_ids)
        sample_ids = (path, tuple(read_sample_ids(path)))
    from ..run.guards import Guards

    shares = {k: getattr(args, f"max_{k}") for k in ("truncated", "no_answer", "errors", "judge_unparseable")}
    minimum = {} if args.guard_min_answers is None else {"min_answers": args.guard_min_answers}
    guards = Guards(**shares, **minimum)
    return RunOptions(
        guards=guards,
        out=Path(args.out),
        data_dir=resolve_data_dir(args.data_dir),
        limit=args.limit,
        overrides=overrides,
        progress=not args.quiet,
        graders=options.grader_names(args),
        parity=args.parity,
        shard=parse_shard(args.shard) if args.shard else None,
        think=args.think,
        name=args.name or "",
        system_prompt=_text_or_file(args.system_prompt, "--system-prompt"),
        limit_order=args.limit_order,
        sandbox=args.sandbox,
        sample_ids=sample_ids,
        task_overrides=task_overrides,
        config=_effective_config(args),
    )


def _backend_values(args: argparse.Namespace) -> dict[str, Any]:
    import json

    values = options.backend_values(args)
    template = _text_or_file(f"@{args.chat_template}" if args.chat_template else None, "--chat-template")
    if template is not None:
        values["chat_template"] = template
    if args.extra_body:
        try:
            extra = json.loads(args.extra_body)
        except ValueError as exc:
            raise MueError(f"--extra-body is not JSON ({exc})") from None
        if not isinstance(extra, dict):
            raise MueError('--extra-body wants a JSON object, e.g. \'{"reasoning_effort": "low"}\'')
        values["extra_body"] = extra
    return values


def _spec(args: argparse.Namespace, model: str | None, values: dict[str, Any]) -> Any:
    from ..backends import ModelSpec, resolve_model
    from ..backends.options import RayOptions

    spec = resolve_model(model, args.backend, args.base_url, values)
    if "batch" in values and spec.backend != "openai":
        raise MueError("--batch sends an API model's requests through the Batch API: it needs --base-url")
    if "chat_template" in values and spec.backend not in ("llamacpp", "vllm", "openai"):
        raise MueError("--chat-template applies to llama.cpp and vLLM in process, and to --base-url servers")
    if "extra_body" in values and spec.backend != "openai":
        raise MueError("--extra-body applies to OpenAI-compatible servers (--base-url)")
    if args.ray:
        if spec.backend in ("openai", "ray") or args.serve:
            raise MueError(
                "--ray runs in-process engines (a .gguf for llama.cpp, an HF model folder for vLLM, or a plugin's "
                "--backend), not a served model"
            )
        from ..plugins.include import included

        ray = RayOptions(
            address=args.ray,
            engine=spec.backend,
            engine_options=spec.options,
            replicas=int(values.get("data_parallel_size") or 1),
            cpus=args.ray_cpus_per_replica,
            gpus=args.ray_gpus_per_replica,
            includes=included(),
            replica_timeout=args.replica_timeout or 60.0 + 0.1 * (args.max_tokens or 4096),
            dispatch=args.ray_dispatch,
        )
        spec = ModelSpec("ray", spec.model, ray)
    elif args.ray_cpus_per_replica is not None or args.ray_gpus_per_replica is not None or args.replica_timeout:
        raise MueError("--ray-cpus-per-replica, --ray-gpus-per-replica and --replica-timeout apply with --ray")
    return spec


def expand_groups(names: Iterable[str]) -> list[str]:
    """``--tasks``: a group name (``math-suite-en``) stands for its tasks; each task once, in order."""
    from ..plugins import registry

    groups = set(registry.names("groups"))
    expanded: list[str] = []
    for name in names:
        expanded += registry.lookup("groups", name).tasks if name in groups else [name]
    return list(dict.fromkeys(expanded))


@dataclass
class Invocation:
    """What every model of one ``mue-eval run`` (or every checkpoint of ``mue-eval watch``) is evaluated with:
    the options built once from the command line and config, checked before the first model runs."""

    args: argparse.Namespace
    task_names: list[str]
    judges: Any
    budget: Any
    run_options: Any
    values: dict[str, Any]

    @classmethod
    def of(cls, args: argparse.Namespace) -> Invocation:
        from ..run.role_settings import judge_settings

        task_names = expand_groups(t.strip() for t in args.tasks.split(",") if t.strip())
        if not task_names:
            raise MueError("--tasks is empty")
        judges = judge_settings(options.grading_options(args))
        return cls(args, task_names, judges, options.budget(args), _run_options(args), _backend_values(args))

    def spec(self, model: str | None) -> Any:
        return _spec(self.args, model, self.values)

    def evaluate(self, spec: Any, run_options: Any = None) -> list[Any]:
        """One model's runs on every task (its own engine, closed afterwards), as ``mue-eval run`` does; a list
        of served models' specs shares one schedule."""
        import asyncio

        from ..backends.options import ServedOptions, options_for
        from ..run.session import evaluate, serve_and_evaluate

        opts = run_options or self.run_options
        if self.args.serve:
            via = options_for("openai", self.values)
            assert isinstance(via, ServedOptions)
            work = serve_and_evaluate(spec, via, self.task_names, opts, self.judges, self.budget)
        else:
            work = evaluate(spec=spec, task_names=self.task_names, options=opts, judges=self.judges, budget=self.budget)
        results: list[Any] = asyncio.run(work)
        return results


def run(args: argparse.Namespace) -> int:
    from ..plugins import registry
    from ..results.labels import label_runs
    from ..run.session import incomplete
    from ..run.tracking import trackers
    from .models import expand_models

    invocation = Invocation.of(args)
    models = expand_models(args.model) if args.model else [None]
    if args.name and len(models) > 1:
        raise MueError(f"--name labels one run; --model names {len(models)} models")
    specs = [invocation.spec(model) for model in models]  # every model checked before the first runs
    results = []
    # the leaderboard printed at the end: imported while the answers arrive, not after the last one
    registry.preload("renderers", also=("rich.console", "rich.table"))
    # served models share one schedule (their requests one stream per server); in-process engines take turns
    shared = len(specs) > 1 and not args.serve and all(spec.backend == "openai" for spec in specs)
    turns = [specs] if shared else [[spec] for spec in specs]
    with trackers(args.log_to or (), invocation.run_options.out) as track:
        for turn in turns:
            done = invocation.evaluate(turn if len(turn) > 1 else turn[0])
            track(done)
            results += done
    registry.lookup("renderers", "leaderboard").print_table(label_runs(results))
    return 1 if incomplete(results) else 0
