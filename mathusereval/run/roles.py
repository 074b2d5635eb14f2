"""Model roles, declared once: one `RoleOptions` record per role, and the flags, the TOML tables, the
``$MUE_*`` variables and the judge settings all made from its fields.

A role is a model playing a part in an invocation: ``model`` (the model under test), ``judge`` (``--judge``),
``verifier`` (``--verifier``) and whatever role a plugin grader names. Each field of `RoleOptions` carries its
help text and where it applies in its metadata (`option`); `mathusereval.cli.options` turns the fields into
``--{role}-*`` flags (and the model's unprefixed ones), so a renamed field renames its flag, and
`tests/test_role_options.py` fails for a flag that maps to no field or a field with no flag.

What a role takes from another (the README says the same):
- a role other than the judge whose model is served (no ``.gguf``, no model folder, not the embedded model) and
  that names no ``--{role}-base-url`` talks to the judge's server, with the judge's API key variable and
  headers. Nothing else is inherited: its concurrency, timeout, reply limit, retries, price and batching are
  its own, with the defaults below.
- the grading budget (``--judge-budget``, ``--judge-token-budget``) is one cap on every LLM grader together
  (the judge, the verifier, plugin roles): each role's calls are priced at its own ``--{role}-price`` and
  all of them count against the same spend. The model under test has its own cap (``--max-cost``,
  ``--max-tokens-total``).

Only the standard library is imported at module level: the CLI builds its parser from these records.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODEL_ROLE = "model"
JUDGE_ROLE = "judge"
"""The role of ``--judge MODEL``; an LLM grader whose own role has no model falls back to it."""
VERIFIER_ROLE = "verifier"
GRADING_ROLES = (JUDGE_ROLE, VERIFIER_ROLE)
"""The roles of the built-in LLM graders; a plugin grader's role (loaded with ``--include``) is added to these."""
API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_CONCURRENCY = 64
"""Requests in flight per endpoint when a role says nothing (`mathusereval.backends.endpoints`)."""


def option(
    default: Any,
    help: str,
    *,
    metavar: str | None = None,
    roles: tuple[str, ...] | None = None,
    model_flag: str | None = None,
    model_help: str | None = None,
) -> Any:
    """A `RoleOptions` field with what its flag needs. `help` may say ``{role}`` and ``{default}``;
    `roles` limits the field to those roles (default: every grading role); `model_flag` is the model under
    test's own flag for it (without the dashes; None: the model has no such flag)."""
    meta: dict[str, Any] = {"help": help, "metavar": metavar, "roles": roles}
    meta.update(model_flag=model_flag, model_help=model_help)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class RoleOptions:
    """What the user said about one role's model. For a grading role, field ``x_y`` is the flag
    ``--{role}-x-y`` (``model`` is ``--{role}`` itself), the TOML key ``x_y`` of the ``[{role}]`` table and
    the variable ``$MUE_{ROLE}_X_Y``."""

    role: str = dataclasses.field(default=JUDGE_ROLE, metadata={"flag": False})
    model: str | None = option(
        None,
        "the {role}'s model: a served name with --{role}-base-url, a .gguf file, or 'smollm2-135m-instruct' "
        "(embedded, offline plumbing only)",
        metavar="MODEL",
        model_flag="model",
        model_help="a .gguf file, an HF model directory, a served model name with --base-url, or "
        "'smollm2-135m-instruct' (embedded, the default); several as a comma list or a glob (runs/ckpt-*): "
        "each is evaluated as its own run, in turn",
    )
    backend: str | None = option(
        None, "force the {role}'s backend: llamacpp, openai, vllm, or a plugin's name", metavar="NAME",
        model_flag="backend",
    )  # fmt: skip
    base_url: str | None = option(
        None,
        "OpenAI-compatible endpoint of the {role}{inherited}",
        metavar="URL",
        model_flag="base-url",
        model_help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; several comma-separated URLs "
        "serving the same model are load-balanced",
    )
    api_key_env: str = option(
        API_KEY_ENV,
        "environment variable holding the {role}'s API key (default: {default}; never written to results)",
        metavar="VAR",
        model_flag="api-key-env",
    )
    header: tuple[str, ...] = option(
        (), "extra HTTP header of the {role}'s requests (repeatable)", metavar="'NAME: VALUE'", model_flag="header"
    )
    concurrency: int | None = option(
        None,
        f"{{role}} requests in flight per endpoint (default: {DEFAULT_CONCURRENCY})",
        metavar="N",
        model_flag="concurrency",
    )
    timeout: float | None = option(None, "per-request timeout of {role} calls in seconds (default: 600)",
                                   metavar="S", model_flag="timeout")  # fmt: skip
    max_retries: int | None = option(
        None, "retries of a failed {role} request (default: 5)", metavar="N", model_flag="max-retries"
    )
    max_tokens: int = option(2048, "{role} reply limit in tokens (default: {default})", metavar="N")
    n_ctx: int | None = option(
        None,
        "context window when llama.cpp runs the {role} (default: 4096)",
        metavar="N",
        model_flag="n-ctx",
        model_help="context window (default: 4096)",
    )
    retries: int = option(2, "extra attempts for an unparseable {role} reply (default: {default})", metavar="N")
    cascade: bool = option(
        False, "let the answer grader settle clear math items; only the rest go to the judge", roles=(JUDGE_ROLE,)
    )
    price: str | None = option(
        None,
        "{role} price in USD per million prompt,completion tokens (cost reports and --judge-budget)",
        metavar="IN,OUT",
        model_flag="price",
        model_help="USD per million prompt,completion tokens, for cost reports and --max-cost",
    )
    budget: float | None = option(
        None,
        "stop every LLM grader (judge, verifier, plugin roles) once they have spent this much together",
        metavar="USD",
        roles=(JUDGE_ROLE,),
        model_flag="max-cost",
        model_help="stop generating after spending this much",
    )
    token_budget: int | None = option(
        None,
        "stop every LLM grader once they have used this many tokens together",
        metavar="N",
        roles=(JUDGE_ROLE,),
        model_flag="max-tokens-total",
        model_help="stop generating after this many tokens",
    )
    batch: bool = option(
        False,
        "send the {role}'s calls through the OpenAI Batch API (an OpenAI-compatible {role}; --batch-* settings)",
        model_flag="batch",
        model_help="send the model's requests through the OpenAI Batch API (--base-url; half price, hours of latency)",
    )

    @classmethod
    def flag_fields(cls, role: str) -> list[dataclasses.Field[Any]]:
        """The fields that are flags of `role`."""
        fields = [f for f in dataclasses.fields(cls) if f.metadata.get("flag", True)]
        if role == MODEL_ROLE:
            return [f for f in fields if f.metadata.get("model_flag")]
        return [f for f in fields if f.metadata.get("roles") is None or role in f.metadata["roles"]]

    @classmethod
    def from_values(cls, role: str, values: Mapping[str, Any]) -> RoleOptions:
        """The record of `role` from flat values (argparse's namespace, a config, the environment), each read
        under `dest`; unset (None) values keep the defaults."""
        given: dict[str, Any] = {f.name: values.get(dest(role, f)) for f in cls.flag_fields(role)}
        kept: dict[str, Any] = {k: tuple(v) if k == "header" else v for k, v in given.items() if v is not None}
        return cls(role=role, **kept)

    def check(self) -> None:
        """Values that cannot be right, as one line naming the flag."""
        from ..errors import ConfigError

        for name in ("concurrency", "timeout", "max_tokens", "n_ctx", "budget", "token_budget"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{self.flag(name)} must be positive, got {value}")
        for name in ("retries", "max_retries"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{self.flag(name)} must be 0 or more, got {value}")

    def flag(self, name: str) -> str:
        """The command-line flag of field `name` for this role."""
        return flag_name(self.role, next(f for f in dataclasses.fields(self) if f.name == name))

    def given(self) -> dict[str, Any]:
        """The fields set to something other than their default (the manifest's record; no secrets: headers
        by name only, the API key by its variable's name)."""
        shown: dict[str, Any] = {}
        for f in self.flag_fields(self.role):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if f.name == "header":
                value = [h.partition(":")[0].strip() for h in value]
            elif f.name == "base_url":  # credentials in a URL (user:password, ?api-key=) are never shown
                from ..backends.replies import UrlCredentials

                value = ",".join(UrlCredentials.of(u.strip()).shown for u in str(value).split(","))
            shown[f.name] = value
        return shown


def dest(role: str, field: dataclasses.Field[Any]) -> str:
    """argparse's destination (and the TOML key, the variable's stem) of `field` for `role`."""
    if role == MODEL_ROLE:
        return str(field.metadata["model_flag"]).replace("-", "_")
    return role if field.name == "model" else f"{role}_{field.name}"


def flag_name(role: str, field: dataclasses.Field[Any]) -> str:
    return "--" + dest(role, field).replace("_", "-")


def env_name(role: str, field: dataclasses.Field[Any]) -> str:
    return "MUE_" + dest(role, field).upper()


def role_help(role: str, field: dataclasses.Field[Any]) -> str:
    meta = field.metadata
    if role == MODEL_ROLE and meta.get("model_help"):
        return str(meta["model_help"])
    inherited = " (default: the judge's, for a served model)" if role != JUDGE_ROLE else ""
    return str(meta["help"]).format(role=role, default=field.default, inherited=inherited)


def grading_roles() -> tuple[str, ...]:
    """The built-in grading roles and those of plugin graders registered so far (``--include`` files are
    loaded before the parser is built); a plugin role without flags falls back to the judge."""
    import sys

    roles = list(GRADING_ROLES)
    registry = sys.modules.get("mathusereval.plugins.registry")
    if registry is not None:
        for grader in registry.registered("graders").values():
            role = getattr(grader, "role", None)
            if isinstance(role, str) and role.isidentifier() and role not in roles and role != MODEL_ROLE:
                roles.append(role)
    return tuple(roles)
