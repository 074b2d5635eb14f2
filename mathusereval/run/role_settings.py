"""The grading roles' settings at run time, built from their `RoleOptions` records (`mathusereval.run.roles`):
for the CLI (``mue-eval run``/``grade``) and the lm-eval hooks (which get them as ``$MUE_*`` variables)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import resolve_model
from ..backends.options import BatchSettings, Secret
from ..errors import ConfigError, MueError
from .budget import parse_prices
from .judging import JudgeSettings
from .roles import API_KEY_ENV, JUDGE_ROLE, RoleOptions, env_name, grading_roles


@dataclass(frozen=True)
class GradingOptions:
    """Every grading role's record, and the ``--batch-*`` values they share."""

    roles: Mapping[str, RoleOptions]
    batch_values: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> GradingOptions:
        """From parsed CLI options (argparse's namespace as a dict)."""
        roles = {role: RoleOptions.from_values(role, values) for role in grading_roles()}
        batch = {k: values[k] for k in BatchSettings.flags() if values.get(k) is not None}
        return cls(roles, batch)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GradingOptions:
        """From ``$MUE_JUDGE``, ``$MUE_JUDGE_BASE_URL``, ``$MUE_BATCH_POLL`` ... (how ``mue-eval lm-eval
        --judge*`` reach the hooks)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field in env_fields().items():
            raw = environ.get(name)
            if raw:
                values[name[len("MUE_") :].lower()] = _typed(name, raw, field)
        return cls.from_values(values)

    def to_env(self) -> dict[str, str]:
        """The variables `from_env` reads back, for the options that are set."""
        env: dict[str, str] = {}
        for role, options in self.roles.items():
            for field in RoleOptions.flag_fields(role):
                value = getattr(options, field.name)
                if value not in (None, False, ()) and value != field.default:
                    env[env_name(role, field)] = "\n".join(value) if field.name == "header" else str(value)
        for key, value in self.batch_values.items():
            env["MUE_" + key.upper()] = str(value)
        return env


def env_fields() -> dict[str, dataclasses.Field[Any]]:
    """``$MUE_JUDGE_BASE_URL`` -> the field it sets, for every grading role's flag and ``--batch-*``."""
    fields = {env_name(role, f): f for role in grading_roles() for f in RoleOptions.flag_fields(role)}
    fields.update({"MUE_" + key.upper(): f for key, f in BatchSettings.flags().items()})
    return fields


def _typed(name: str, raw: str, field: dataclasses.Field[Any]) -> Any:
    """A variable's text as its field's type (the annotation is a string under postponed evaluation)."""
    hint = str(field.type)
    if field.name == "header":
        return tuple(line for line in raw.splitlines() if line.strip())
    if hint.startswith("bool"):
        return raw.lower() in ("1", "true", "yes")
    kind = int if hint.startswith("int") else float if hint.startswith("float") else str
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"${name} = {raw!r} is not a valid {kind.__name__}") from None


def headers_of(role: RoleOptions) -> dict[str, Secret]:
    headers: dict[str, Secret] = {}
    for value in role.header:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"{role.flag('header')} wants 'NAME: VALUE', got {value!r}")
        headers[name.strip()] = Secret(content.strip())
    return headers


def _served(model: str) -> bool:
    """A model name a server serves (not a local file, folder or the embedded model)."""
    from ..backends.base import EMBEDDED_MODEL

    return not (model == EMBEDDED_MODEL or model.endswith(".gguf") or Path(model).exists())


def _connection(role: RoleOptions, judge: RoleOptions | None) -> RoleOptions:
    """A role other than the judge, for a served model and without a base URL of its own, talks to the
    judge's server with the judge's key variable and headers (the only inheritance; module docstring)."""
    if judge is None or role.role == JUDGE_ROLE or role.base_url or role.backend or role.model is None:
        return role
    if judge.base_url is None or not _served(role.model):
        return role
    own_key = role.api_key_env != API_KEY_ENV
    return dataclasses.replace(
        role,
        base_url=judge.base_url,
        api_key_env=role.api_key_env if own_key else judge.api_key_env,
        header=role.header or judge.header,
    )


def role_settings(role: RoleOptions, batch_values: Mapping[str, Any]) -> JudgeSettings:
    """One role's run-time settings: its backend spec (connection, engine, batching) and judging settings."""
    role.check()
    engine: dict[str, Any] = {
        "concurrency": role.concurrency,
        "timeout": role.timeout,
        "max_retries": role.max_retries,
        "n_ctx": role.n_ctx,
        "api_key_env": role.api_key_env,
    }
    if role.header:
        engine["headers"] = headers_of(role)
    if role.batch:  # --{role}-batch: this role's calls through the Batch API, at its discount
        engine["batch"] = BatchSettings.from_values(batch_values, role.retries)
    assert role.model is not None
    try:
        spec = resolve_model(role.model, role.backend, role.base_url, engine)
    except MueError as exc:  # said with the role's own flags, not the model under test's
        if role.base_url or role.backend:
            raise
        raise ConfigError(
            f"{role.flag('model')} {role.model}: not a .gguf file, a model folder or the embedded model; for a "
            f"served model pass {role.flag('base_url')} URL ({exc})"
        ) from None
    if role.batch and spec.backend != "openai":
        raise ConfigError(
            f"{role.flag('batch')} needs an OpenAI-compatible {role.role} ({role.flag('base_url')}); "
            f"{role.model} runs on {spec.backend}"
        )
    return JudgeSettings(
        spec=spec,
        max_tokens=role.max_tokens,
        parse_retries=role.retries,
        cascade=role.cascade,
        prices=parse_prices(role.price, role.flag("price")),
        options=role,
    )


def judge_settings(options: GradingOptions) -> dict[str, JudgeSettings]:
    """Settings per grading role that names a model; empty when none does. Option clashes are `ConfigError`s."""
    judge = options.roles.get(JUDGE_ROLE)
    for role in options.roles.values():
        # --judge-retries alone also sets how often the model's failed --batch lines are retried (as before)
        given = {k for k in role.given() if not (role.role == JUDGE_ROLE and k == "retries")}
        if role.model is None and given:
            raise ConfigError(f"{role.role} options were given without {role.flag('model')} MODEL")
    roles = {
        name: role_settings(_connection(role, judge), options.batch_values)
        for name, role in options.roles.items()
        if role.model is not None
    }
    cap = judge or RoleOptions()
    if cap.budget is not None:
        unpriced = [s.options.flag("price") for s in roles.values() if s.prices is None and s.options]
        if unpriced:
            raise ConfigError(f"--judge-budget is in USD: also pass {' and '.join(unpriced)} IN,OUT")
    if (cap.budget is not None or cap.token_budget is not None) and JUDGE_ROLE not in roles:
        raise ConfigError("--judge-budget and --judge-token-budget cap the LLM graders: pass --judge MODEL")
    return {
        name: dataclasses.replace(settings, budget_usd=cap.budget, budget_tokens=cap.token_budget)
        for name, settings in roles.items()
    }
