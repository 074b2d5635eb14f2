"""Option groups shared by several commands, and the typed settings built from them.

Only argparse is imported here; what the options become (`RunOptions`, backend options, judge settings,
a budget) is imported when a command builds it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import MueError

if TYPE_CHECKING:
    from ..run.budget import Budget
    from ..run.judge_options import JudgeOptions


def positive(flag: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise MueError(f"{flag} must be positive, got {value}")


def add_served_options(p: argparse.ArgumentParser) -> None:
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
        "--batch",
        action="store_true",
        help="send the model's requests through the OpenAI Batch API (--base-url; half price, hours of latency)",
    )
    s.add_argument(
        "--serve",
        action="store_true",
        help="start vLLM's OpenAI server for --model DIR (one per --data-parallel-size) and evaluate through it",
    )


def add_vllm_options(p: argparse.ArgumentParser) -> None:
    v = p.add_argument_group("vLLM (--model HF_DIR)")
    v.add_argument("--tensor-parallel-size", type=int, help="GPUs per model replica")
    v.add_argument("--data-parallel-size", type=int, help="model replicas")
    v.add_argument("--gpu-memory-utilization", type=float, help="fraction of GPU memory vLLM may use (vLLM: 0.9)")
    v.add_argument("--max-model-len", type=int, help="context length (default: the model's)")
    v.add_argument(
        "--max-num-seqs",
        type=int,
        metavar="N",
        help="sequences vLLM batches at once (vLLM: 256); also each Ray replica's max_in_flight",
    )
    v.add_argument("--dtype", help="weights dtype, e.g. bfloat16 (default: vLLM's auto)")
    v.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs / torch.compile: faster start")
    v.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run --data-parallel-size replicas of the in-process engine (llama.cpp, vLLM or a plugin's "
        "--backend) as Ray actors: 'auto' (a running cluster), 'local' (start one here) or a cluster address; "
        "needs mathusereval[ray]",
    )
    v.add_argument(
        "--ray-cpus-per-replica",
        type=float,
        metavar="X",
        help="CPUs each replica asks of the cluster, fractions allowed (default: --threads for llama.cpp, else 1)",
    )
    v.add_argument(
        "--ray-gpus-per-replica",
        type=float,
        metavar="Y",
        help="GPUs each replica asks of the cluster, fractions allowed (default: --tensor-parallel-size for vLLM)",
    )
    v.add_argument(
        "--ray-dispatch",
        choices=("stream", "batch"),
        default="stream",
        help="'stream' (default): keep each replica at its max_in_flight, topped up as answers arrive; 'batch': "
        "one batch per replica at a time (the 0.2 scheme, for measuring against)",
    )
    v.add_argument(
        "--replica-timeout",
        type=float,
        metavar="S",
        help="a replica with requests in flight that answers nothing for S seconds is given up on and its "
        "requests go to the others (default: 60 + 0.1 s per --max-tokens, 4096 when unset)",
    )


def add_budget_options(p: argparse.ArgumentParser) -> None:
    b = p.add_argument_group("cost and budget of the evaluated model")
    b.add_argument("--price", metavar="IN,OUT", help="USD per million prompt,completion tokens, for cost reports")
    b.add_argument("--max-cost", type=float, metavar="USD", help="stop generating after spending this much")
    b.add_argument("--max-tokens-total", type=int, metavar="N", help="stop generating after this many tokens")


def add_grading_options(p: argparse.ArgumentParser) -> None:
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
    g.add_argument(
        "--judge-batch", action="store_true", help="send judge (and verifier) calls through the OpenAI Batch API"
    )
    b = p.add_argument_group("the Batch API (--batch, --judge-batch)")
    b.add_argument("--batch-poll", type=float, default=30.0, metavar="S", help="seconds between polls (default: 30)")
    b.add_argument("--batch-window", default="24h", help="the batch's completion_window (default: 24h)")
    b.add_argument("--batch-max-requests", type=int, default=50_000, metavar="N", help="lines per batch (50,000)")
    b.add_argument("--batch-max-bytes", type=int, default=200_000_000, metavar="B", help="bytes per batch (200 MB)")
    b.add_argument(
        "--batch-fallback",
        choices=("batch", "direct"),
        default="batch",
        help="requests a batch failed: into a new batch (default; at most --judge-retries times), or direct calls",
    )
    b.add_argument(
        "--batch-discount", type=float, default=0.5, help="batch price as a share of --price/--judge-price (0.5)"
    )
    b.add_argument(
        "--batch-cancel-on-interrupt",
        action="store_true",
        help="Ctrl-C cancels the batches being polled (default: they keep running and the next run collects them)",
    )
    g.add_argument("--judge-token-budget", type=int, metavar="N", help="stop judging after this many tokens")
    g.add_argument(
        "--verifier",
        metavar="MODEL",
        help="model of the 'verifier' grader (--graders answer,verifier): answers the rules mark wrong or cannot "
        "read are checked by it (A/B/C); a served name with --verifier-base-url, a .gguf, or the embedded model",
    )
    g.add_argument("--verifier-base-url", help="OpenAI-compatible endpoint of the verifier")
    g.add_argument("--verifier-backend", help="force the verifier's backend")
    add_parity_option(g)


def add_parity_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--parity",
        choices=("none", "upstream"),
        default="none",
        help="'upstream': aggregate judge scores as upstream code does (unparseable = -1), for comparisons",
    )


def judge_options(args: argparse.Namespace) -> JudgeOptions:
    from ..run.judge_options import JudgeOptions

    return JudgeOptions.from_values(vars(args))


def grader_names(args: argparse.Namespace) -> tuple[str, ...] | None:
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
    "max_num_seqs",
    "dtype",
    "endpoint",
    "api_key_env",
)


def _headers(values: list[str] | None) -> dict[str, Any]:
    from ..backends.options import Secret

    headers: dict[str, Any] = {}
    for value in values or []:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise MueError(f"--header wants 'NAME: VALUE', got {value!r}")
        headers[name.strip()] = Secret(content.strip())
    return headers


def backend_values(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the command line says about the backend, as one flat mapping (`options_for` keeps what
    the chosen backend understands); secrets wrapped so no record or repr shows them."""
    from ..backends.options import BatchSettings, Secret

    for dest in ("concurrency", "threads", "n_ctx", "timeout", "tensor_parallel_size", "data_parallel_size",
                 "max_num_seqs"):  # fmt: skip
        positive("--" + dest.replace("_", "-"), getattr(args, dest))
    positive("--max-reply-bytes", args.max_reply_bytes)
    if args.max_retries is not None and args.max_retries < 0:
        raise MueError(f"--max-retries must be 0 or more, got {args.max_retries}")
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        raise MueError(f"--gpu-memory-utilization must be in (0, 1], got {args.gpu_memory_utilization}")
    values: dict[str, Any] = {k: getattr(args, k) for k in ENGINE_OPTIONS if getattr(args, k) is not None}
    if args.enforce_eager:
        values["enforce_eager"] = True
    if args.api_key:
        values["api_key"] = Secret(args.api_key)
    if args.header:
        values["headers"] = _headers(args.header)
    if getattr(args, "batch", False):
        values["batch"] = BatchSettings.from_values(vars(args), getattr(args, "judge_retries", 2))
    return values


def budget(args: argparse.Namespace) -> Budget | None:
    from ..run.budget import Budget, parse_prices

    positive("--max-cost", args.max_cost)
    positive("--max-tokens-total", args.max_tokens_total)
    prices = parse_prices(args.price, "--price")
    if args.max_cost is not None and prices is None:
        raise MueError("--max-cost is in USD: also pass --price IN,OUT")
    if prices is None and args.max_tokens_total is None:
        return None
    discount = args.batch_discount if getattr(args, "batch", False) else 1.0  # batch calls are charged at the discount
    return Budget("generation", prices, args.max_cost, args.max_tokens_total, discount=discount)
