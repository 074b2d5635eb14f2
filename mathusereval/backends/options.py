"""Backend options, typed per backend: what ``ModelSpec.options`` holds.

The CLI (and `ModelSpec.of`) gathers what the user set into one flat mapping; `options_for` keeps the
fields the chosen backend understands. Each options record says which of its settings change the answers
(`identity`): those join the run's fingerprint, so a resume with another ``--endpoint`` or chat template is
refused instead of mixed. Secrets (`Secret`) are usable by the backend and shown nowhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..run.choices import RAY_DISPATCH


@dataclass(frozen=True)
class Secret:
    """An API key or header value: usable by the backend, invisible in reprs, manifests and logs."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"


ENDPOINTS = ("chat", "completions")


def _digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


BATCH_FALLBACKS = ("batch", "direct")


def _batch_flag(default: Any, flag: str, help: str, metavar: str | None = None) -> Any:
    """A `BatchSettings` field and its ``--batch-{flag}`` (`mathusereval.cli.options` makes the flags)."""
    return field(default=default, metadata={"flag": flag, "help": help, "metavar": metavar})


@dataclass(frozen=True)
class BatchSettings:
    """``--batch-*`` (`mathusereval.backends.batch_api`): how batches are sent, polled, split, retried and priced;
    one set for every role that batches (``--batch``, ``--judge-batch``, ``--verifier-batch``). The defaults
    here are the only ones."""

    poll_s: float = _batch_flag(30.0, "poll", "seconds between polls (default: {default:g})", "S")
    window: str = _batch_flag("24h", "window", "the batch's completion_window (default: {default})", "WINDOW")
    max_requests: int = _batch_flag(50_000, "max-requests", "lines per batch (default: {default:,})", "N")
    max_bytes: int = _batch_flag(200_000_000, "max-bytes", "bytes per batch (default: {default:,})", "B")
    fallback: str = _batch_flag(
        "batch",
        "fallback",
        "requests a batch failed: into a new batch (default; at most the role's --*-retries times), or direct calls",
    )
    discount: float = _batch_flag(
        0.5, "discount", "batch price as a share of the role's price (default: {default})", "SHARE"
    )
    cancel_on_interrupt: bool = _batch_flag(
        False,
        "cancel-on-interrupt",
        "Ctrl-C cancels the batches being polled (default: they keep running and the next run collects them)",
    )
    retries: int = 2
    """New batches for the lines a batch failed: the role's ``--*-retries`` (not a flag of its own)."""

    def __post_init__(self) -> None:
        if self.fallback not in BATCH_FALLBACKS:
            raise ConfigError(f"--batch-fallback must be batch or direct, got {self.fallback!r}")
        if not 0 <= self.discount <= 1:
            raise ConfigError(f"--batch-discount must be between 0 and 1, got {self.discount}")
        if not self.poll_s > 0 or self.poll_s == float("inf") or self.max_requests < 1 or self.max_bytes < 1024:
            raise ConfigError("--batch-poll, --batch-max-requests and --batch-max-bytes must be positive")
        if self.retries < 0:
            raise ConfigError(f"batch retries must be 0 or more, got {self.retries}")

    @staticmethod
    def flags() -> dict[str, dataclasses.Field[Any]]:
        """``batch_poll`` (argparse's destination) -> its field, for every field that is a flag."""
        return {
            "batch_" + str(f.metadata["flag"]).replace("-", "_"): f
            for f in dataclasses.fields(BatchSettings)
            if "flag" in f.metadata
        }

    @classmethod
    def from_values(cls, values: Mapping[str, Any], retries: int | None = None) -> BatchSettings:
        """``--batch-*`` (argparse's names) as settings, shared by every role that batches; `retries`: the
        role's (unset: the default above)."""
        given: dict[str, Any] = {f.name: values[key] for key, f in cls.flags().items() if values.get(key) is not None}
        if retries is not None:
            given["retries"] = retries
        return cls(**given)


@dataclass(frozen=True)
class ServedOptions:
    """An OpenAI-compatible server (``--base-url``); several URLs serving one model are load-balanced."""

    base_url: tuple[str, ...] = ()
    endpoint: str = "chat"
    concurrency: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    max_reply_bytes: int | None = None
    backoff: float = 1.0
    api_key_env: str = "OPENAI_API_KEY"
    api_key: Secret | None = None
    headers: Mapping[str, Secret] = field(default_factory=dict)
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    """``--extra-body JSON``: fields added to every request body (top_k, min_p, repetition_penalty ...)."""
    chat_template: str | None = None
    """``--chat-template FILE``'s Jinja text: a continued assistant turn (a tool-integrated chain) goes to
    ``/completions`` rendered with it, for chat servers that cannot continue a turn (`chat_template`)."""
    served_by: Mapping[str, Any] | None = None
    batch: BatchSettings | None = None
    """``--batch`` (``--judge-batch`` for a judge): requests go through the Batch API (not part of the run's
    identity: the request bodies, and so the answers, are the same as direct calls')."""

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"--endpoint must be one of {', '.join(ENDPOINTS)}, got {self.endpoint!r}")

    def identity(self) -> dict[str, Any]:
        # a template changes what a continued reply's prompt is, so its answers; absent, the key is left out
        # so that runs made before it existed keep their identity
        template = {"chat_template": _digest(self.chat_template)} if self.chat_template else {}
        return {"endpoint": self.endpoint, "extra_body": dict(self.extra_body), **template}


@dataclass(frozen=True)
class LlamaCppOptions:
    """A GGUF file run in this process by llama.cpp."""

    threads: int | None = None
    n_ctx: int | None = None
    chat_template: str | None = None
    """``--chat-template FILE``'s Jinja text, in place of the template the GGUF carries."""

    def identity(self) -> dict[str, Any]:
        return {"chat_template": _digest(self.chat_template)}


@dataclass(frozen=True)
class VLLMOptions:
    """A Hugging Face model folder run in this process by vLLM."""

    tensor_parallel_size: int | None = None
    data_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    dtype: str | None = None
    enforce_eager: bool = False
    distributed_executor_backend: str | None = None
    endpoint: str = "chat"
    chat_template: str | None = None
    max_num_seqs: int | None = None

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"--endpoint must be one of {', '.join(ENDPOINTS)}, got {self.endpoint!r}")

    def identity(self) -> dict[str, Any]:
        # the weights' dtype changes the numbers the engine computes, so the answers
        return {
            "endpoint": self.endpoint,
            "chat_template": _digest(self.chat_template),
            "dtype": self.dtype,
        }


@dataclass(frozen=True)
class PluginOptions:
    """A plugin backend's options: whatever the user set, as given."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k in ("endpoint", "chat_template", "extra_body")}


@dataclass(frozen=True)
class RayOptions:
    """``--ray ADDRESS``: replicas of an in-process engine as Ray actors. `engine` is the replica's backend
    and its options; `cpus`/`gpus` override what each replica asks of the cluster."""

    address: str
    engine: str
    engine_options: BackendOptions
    replicas: int = 1
    cpus: float | None = None
    gpus: float | None = None
    includes: tuple[str, ...] = ()
    """``--include`` files the driver loaded: each replica loads them too, so a plugin's backend runs there."""
    replica_timeout: float = 600.0
    """Seconds a replica with requests in flight may answer nothing before it is given up on."""
    dispatch: str = "stream"
    """"stream": each replica kept at its ``max_in_flight`` plus a margin, topped up as answers arrive;
    "batch": 0.2's scheme (one batch of ``max_in_flight`` per replica at a time), kept to measure against."""

    def __post_init__(self) -> None:
        for flag, value in (("--ray-cpus-per-replica", self.cpus), ("--ray-gpus-per-replica", self.gpus)):
            if value is not None and value < 0:
                raise ConfigError(f"{flag} must be 0 or more, got {value:g}")
        if self.dispatch not in RAY_DISPATCH:
            raise ConfigError(f"--ray-dispatch must be stream or batch, got {self.dispatch!r}")
        if self.replica_timeout <= 0:
            raise ConfigError(f"--replica-timeout must be positive, got {self.replica_timeout:g}")

    def identity(self) -> dict[str, Any]:
        return {"engine": self.engine, **self.engine_options.identity()}


BackendOptions = ServedOptions | LlamaCppOptions | VLLMOptions | RayOptions | PluginOptions
_BY_BACKEND: dict[str, type[Any]] = {"openai": ServedOptions, "llamacpp": LlamaCppOptions, "vllm": VLLMOptions}


def options_for(backend: str, values: Mapping[str, Any]) -> BackendOptions:
    """The options `backend` understands, taken from everything the user set (unset values are left out;
    settings another backend would use are ignored). ``base_url`` may be one URL, a comma list or a list."""
    cls = _BY_BACKEND.get(backend)
    given = {k: v for k, v in values.items() if v is not None}
    if cls is None:
        return PluginOptions(given)
    names = {f.name for f in dataclasses.fields(cls)}
    if "base_url" in given and cls is ServedOptions:
        urls = given["base_url"]
        urls = urls.split(",") if isinstance(urls, str) else list(urls)
        given["base_url"] = tuple(u.strip() for u in urls if u.strip())
    return cls(**{k: v for k, v in given.items() if k in names})  # type: ignore[no-any-return]
