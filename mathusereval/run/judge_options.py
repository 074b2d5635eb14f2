"""The ``--judge*`` and ``--verifier*`` options and the judge settings built from them, in one place for the
CLI (``mue-eval run``/``grade``) and the lm-eval hooks (which get them as ``$MUE_JUDGE*`` variables)."""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..backends import resolve_model
from ..backends.options import BatchSettings
from ..errors import ConfigError
from .budget import parse_prices
from .judging import JUDGE_ROLE, JudgeSettings

VERIFIER_ROLE = "verifier"


@dataclass(frozen=True)
class JudgeOptions:
    """What the user said about the judge models. Field ``x_y`` is the flag ``--x-y`` and the variable
    ``$MUE_X_Y``."""

    judge: str | None = None
    judge_backend: str | None = None
    judge_base_url: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    judge_concurrency: int | None = None
    judge_timeout: float | None = None
    judge_max_tokens: int = 2048
    judge_n_ctx: int | None = None
    judge_retries: int = 2
    judge_cascade: bool = False
    judge_price: str | None = None
    judge_budget: float | None = None
    judge_token_budget: int | None = None
    verifier: str | None = None
    verifier_base_url: str | None = None
    verifier_backend: str | None = None
    judge_batch: bool = False
    batch_poll: float = 30.0
    batch_window: str = "24h"
    batch_max_requests: int = 50_000
    batch_max_bytes: int = 200_000_000
    batch_fallback: str = "batch"
    batch_discount: float = 0.5
    batch_cancel_on_interrupt: bool = False

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> JudgeOptions:
        """From parsed CLI options (argparse's namespace as a dict): the fields it has."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JudgeOptions:
        """From ``$MUE_JUDGE``, ``$MUE_JUDGE_BASE_URL`` ... (how ``mue-eval lm-eval --judge*`` reach the hooks)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, hint in typing.get_type_hints(cls).items():
            raw = environ.get(env_name(name))
            if not raw:
                continue
            kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)  # X | None -> X
            try:
                values[name] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
            except ValueError:
                raise ConfigError(f"${env_name(name)} = {raw!r} is not a valid {kind.__name__}") from None
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The variables `from_env` reads back, for the options that are set."""
        return {
            env_name(f.name): str(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) not in (None, False) and getattr(self, f.name) != f.default
        }


def env_name(field_name: str) -> str:
    return "MUE_" + field_name.upper()


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{flag_name(name)} must be positive, got {value}")


def judge_settings(options: JudgeOptions) -> dict[str, JudgeSettings]:
    """Settings per role (``judge`` for ``--judge``, ``verifier`` for ``--verifier``; the verifier shares the
    judge's settings, not its model); empty without either. Option clashes are `ConfigError`s."""
    o = options
    for name in ("judge_concurrency", "judge_timeout", "judge_max_tokens", "judge_n_ctx", "judge_budget"):
        _positive(name, getattr(o, name))
    _positive("judge_token_budget", o.judge_token_budget)
    if o.judge_retries < 0:
        raise ConfigError(f"--judge-retries must be 0 or more, got {o.judge_retries}")
    prices = parse_prices(o.judge_price, "--judge-price")
    if o.judge_budget is not None and prices is None:
        raise ConfigError("--judge-budget is in USD: also pass --judge-price IN,OUT")
    if o.verifier is None and (o.verifier_base_url or o.verifier_backend):
        raise ConfigError("verifier options were given without --verifier MODEL")
    if o.judge is None:
        judge_only = [f for f in ("judge_backend", "judge_base_url", "judge_price") if getattr(o, f)]
        if judge_only or o.judge_cascade or o.judge_budget or o.judge_token_budget:
            raise ConfigError("judge options were given without --judge MODEL")
    engine: dict[str, Any] = {"concurrency": o.judge_concurrency, "timeout": o.judge_timeout, "n_ctx": o.judge_n_ctx}
    engine["api_key_env"] = o.judge_api_key_env
    if o.judge_batch:  # --judge-batch: the judges' calls through the Batch API, at its discount
        engine["batch"] = BatchSettings.from_values(dataclasses.asdict(o), o.judge_retries)

    def settings(model: str, backend: str | None, base_url: str | None) -> JudgeSettings:
        spec = resolve_model(model, backend, base_url, engine)
        if o.judge_batch and spec.backend != "openai":
            raise ConfigError(
                f"--judge-batch needs an OpenAI-compatible judge (--judge-base-url); {model} runs on {spec.backend}"
            )
        return JudgeSettings(
            spec=spec,
            max_tokens=o.judge_max_tokens,
            parse_retries=o.judge_retries,
            cascade=o.judge_cascade,
            prices=prices,
            budget_usd=o.judge_budget,
            budget_tokens=o.judge_token_budget,
        )

    roles = {}
    if o.judge is not None:
        roles[JUDGE_ROLE] = settings(o.judge, o.judge_backend, o.judge_base_url)
    if o.verifier is not None:
        roles[VERIFIER_ROLE] = settings(o.verifier, o.verifier_backend, o.verifier_base_url)
    return roles
