"""Option groups shared by several commands, made from the records that hold them, and the typed settings
built from what was parsed.

Roles (`mathusereval.run.roles.RoleOptions`) and the Batch API (`mathusereval.backends.options.BatchSettings`)
are declared once, with their help text and defaults; their flags are made here from the records' fields, so a
flag and its field cannot drift apart. Only argparse and those light records are imported here; what the
options become (`RunOptions`, backend options, judge settings, a budget) is imported when a command builds it.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from ..errors import MueError

if TYPE_CHECKING:
    from ..run.budget import Budget
    from ..run.role_settings import GradingOptions

Group = argparse.ArgumentParser | argparse._ArgumentGroup


def positive(flag: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise MueError(f"{flag} must be positive, got {value}")


def finite(value: str) -> float:
    """argparse type of every float option: NaN and infinities are refused (they are no setting, and JSON
    has no spelling for them)."""
    number = float(value)
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    return number


def _kind(field: Any) -> type | None:
    hint = str(field.type)
    return int if hint.startswith("int") else finite if hint.startswith("float") else None  # type: ignore[return-value]


def add_role_flags(group: Group, role: str, placement: dict[str, Group] | None = None) -> None:
    """``--{role}-*`` from `RoleOptions`' fields (the model under test: its own flag names, each placed in the
    group `placement` names for the field)."""
    from ..run.roles import RoleOptions, dest, flag_name, role_help

    for field in RoleOptions.flag_fields(role):
        target = (placement or {}).get(field.name, group)
        kwargs: dict[str, Any] = {"dest": dest(role, field), "help": role_help(role, field)}
        if field.name == "header":
            kwargs.update(action="append", metavar=field.metadata["metavar"])
        elif str(field.type).startswith("bool"):
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=_kind(field), metavar=field.metadata["metavar"])
        target.add_argument(flag_name(role, field), **kwargs)


def add_batch_flags(group: Group) -> None:
    """``--batch-*`` from `BatchSettings`' fields; unset flags stay None, so the record's defaults apply."""
    from ..backends.options import BATCH_FALLBACKS, BatchSettings

    for key, field in BatchSettings.flags().items():
        kwargs: dict[str, Any] = {"dest": key, "help": field.metadata["help"].format(default=field.default)}
        if isinstance(field.default, bool):
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=_kind(field), metavar=field.metadata["metavar"])
        if key == "batch_fallback":
            kwargs["choices"] = BATCH_FALLBACKS
        group.add_argument("--" + key.replace("_", "-"), **kwargs)


def add_grading_options(p: argparse.ArgumentParser, budgets_title: str = "budgets") -> argparse._ArgumentGroup:
    """``--graders``, ``--parity``, every grading role's flags, the Batch API's, and a budgets group holding
    the grading budget (returned, for the model's own budget flags)."""
    from ..run.roles import grading_roles

    g = p.add_argument_group("grading")
    g.add_argument("--graders", help="comma-separated graders replacing the task's own; the first is primary")
    add_parity_option(g)
    titles = {
        "judge": "the judge (--judge MODEL: judge-scored tasks, e.g. mathusereval, alignbench)",
        "verifier": "the verifier (--graders answer,verifier --verifier MODEL; a served verifier without its own "
        "--verifier-base-url uses the judge's server, key variable and headers)",
    }
    groups = {
        role: p.add_argument_group(titles.get(role, f"the {role} (a plugin grader's role)")) for role in grading_roles()
    }
    add_batch_flags(p.add_argument_group("the Batch API (--batch, --judge-batch, --verifier-batch)"))
    budgets = p.add_argument_group(budgets_title)
    for role, group in groups.items():
        add_role_flags(group, role, {"budget": budgets, "token_budget": budgets})
    return budgets


def add_parity_option(p: Group) -> None:
    from ..run.choices import PARITY_MODES

    p.add_argument(
        "--parity",
        choices=PARITY_MODES,
        default="none",
        help="'upstream': aggregate judge scores as upstream code does (unparseable = -1), for comparisons",
    )


def grading_options(args: argparse.Namespace) -> GradingOptions:
    from ..run.role_settings import GradingOptions

    return GradingOptions.from_values(vars(args))


def option_table(p: argparse.ArgumentParser) -> str:
    """The options of `p` by group, as the README's Markdown table (`scripts/readme_options.py` writes it
    there, and a test checks it is what ``--help`` says)."""
    rows = ["| what you are doing | options |", "|---|---|"]
    for group in p._action_groups:
        flags = [a.option_strings[-1] for a in group._group_actions if a.option_strings and a.dest != "help"]
        if flags:
            rows.append(f"| {group.title} | {', '.join(f'`{flag}`' for flag in flags)} |")
    return "\n".join(rows) + "\n"


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


def backend_values(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the command line says about the model's backend, as one flat mapping (`options_for` keeps
    what the chosen backend understands); secrets wrapped so no record or repr shows them."""
    from ..backends.options import BatchSettings, Secret
    from ..run.role_settings import headers_of
    from ..run.roles import MODEL_ROLE, RoleOptions

    model = RoleOptions.from_values(MODEL_ROLE, vars(args))
    model.check()
    for dest in ("threads", "tensor_parallel_size", "data_parallel_size", "max_num_seqs", "max_reply_bytes"):
        positive("--" + dest.replace("_", "-"), getattr(args, dest))
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        raise MueError(f"--gpu-memory-utilization must be in (0, 1], got {args.gpu_memory_utilization}")
    values: dict[str, Any] = {k: getattr(args, k) for k in ENGINE_OPTIONS if getattr(args, k) is not None}
    if args.enforce_eager:
        values["enforce_eager"] = True
    if args.api_key:
        values["api_key"] = Secret(args.api_key)
    if model.header:
        values["headers"] = headers_of(model)
    if model.batch:  # failed lines are retried --judge-retries times, as the judges' are (default: 2)
        values["batch"] = BatchSettings.from_values(vars(args), getattr(args, "judge_retries", None))
    return values


def budget(args: argparse.Namespace) -> Budget | None:
    """The model under test's budget (``--price``, ``--max-cost``, ``--max-tokens-total``): its own cap."""
    from ..backends.options import BatchSettings
    from ..run.budget import Budget, parse_prices
    from ..run.roles import MODEL_ROLE, RoleOptions

    model = RoleOptions.from_values(MODEL_ROLE, vars(args))
    prices = parse_prices(model.price, "--price")
    if model.budget is not None and prices is None:
        raise MueError("--max-cost is in USD: also pass --price IN,OUT")
    if prices is None and model.token_budget is None:
        return None
    # batch calls are charged at the discount
    discount = BatchSettings.from_values(vars(args)).discount if model.batch else 1.0
    return Budget("generation", prices, model.budget, model.token_budget, discount=discount)
