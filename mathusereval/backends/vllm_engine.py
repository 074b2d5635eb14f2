"""vLLM in this process (``vllm.LLM``) for a local Hugging Face model directory.

The engine is built once per backend (so once per ``mue-eval`` invocation, across its tasks). Every prompt
of a call goes to the engine at once, so continuous batching and prefix caching see the whole workload;
finished requests are handed back as the engine reports them, not at the end, so a killed run keeps every
answer that was done. Chat prompts go through vLLM's own chat rendering (``LLM.enqueue_chat``: the model's
chat template), completions prompts through ``LLM.enqueue``. The engine loop runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, ConfigError
from ..records import Generation, GenerationParams, Request, Usage
from .base import ModelSpec, completion_prompt
from .options import VLLMOptions

ENGINE_KWARGS = (
    "tensor_parallel_size",
    "data_parallel_size",
    "distributed_executor_backend",
    "gpu_memory_utilization",
    "max_model_len",
    "dtype",
    "enforce_eager",
    "max_num_seqs",
)
DEFAULT_MAX_NUM_SEQS = 256
"""vLLM's own default of sequences batched at once (``max_num_seqs``), when the user sets none."""
_DONE = object()


NO_TRACKING = {"VLLM_NO_USAGE_STATS": "1", "VLLM_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1"}
"""vLLM reports usage statistics to a public host unless told not to; an evaluation must not."""


def offline_env() -> None:
    """Tracking off (`NO_TRACKING`) for the engine in this process. Its logs go to stderr: stdout carries our
    tables, which scripts parse."""
    for name, value in NO_TRACKING.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


class VLLMBackend:
    """One ``vllm.LLM`` engine on one model directory."""

    def __init__(self, spec: ModelSpec) -> None:
        self.model = spec.model
        self.path = Path(spec.model)
        if not (self.path / "config.json").is_file():
            raise BackendUnavailable(f"--model {spec.model}: not a Hugging Face model directory (no config.json)")
        if not isinstance(spec.options, VLLMOptions):
            raise ConfigError(f"the vllm backend takes VLLMOptions, not {type(spec.options).__name__}")
        self.options = spec.options
        values = {k: getattr(spec.options, k) for k in ENGINE_KWARGS}
        self.engine_kwargs = {k: v for k, v in values.items() if v is not None and v is not False}
        self.endpoint = spec.options.endpoint
        self.max_in_flight = int(spec.options.max_num_seqs or DEFAULT_MAX_NUM_SEQS)
        self._llm: Any = None
        self._lock = threading.Lock()  # one engine loop at a time

    def describe(self) -> dict[str, Any]:
        import vllm

        return {
            "path": str(self.path.resolve()),
            "engine": self.engine_kwargs,
            **self.options.identity(),
            "vllm": vllm.__version__,
        }

    def _load(self) -> Any:
        if self._llm is None:
            offline_env()
            from vllm import LLM

            self._llm = LLM(model=str(self.path), seed=0, **self.engine_kwargs)
        return self._llm

    def _sampling(self, request: Request, params: GenerationParams) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            seed=params.seed + request.n_index,  # the k-th sample of an item is reproducible on its own
            **params.sampling_extras(),
        )

    def _enqueue(self, llm: Any, requests: Sequence[Request], params: GenerationParams) -> list[str]:
        sampling = [self._sampling(r, params) for r in requests]
        if self.endpoint == "chat":
            conversations = [list(r.sample.messages) for r in requests]
            template = {"chat_template": self.options.chat_template} if self.options.chat_template else {}
            return list(llm.enqueue_chat(conversations, sampling, use_tqdm=False, **template))
        prompts = [completion_prompt(r.sample.messages) for r in requests]
        return list(llm.enqueue(prompts, sampling, use_tqdm=False))

    def _generation(self, request: Request, output: Any, start: float) -> Generation:
        completion = output.outputs[0]
        return Generation(
            sample_id=request.sample.id,
            n_index=request.n_index,
            model=self.model,
            text=completion.text,  # raw: mathusereval.run.postprocess applies --think for every backend
            finish_reason=completion.finish_reason,
            usage=Usage(len(output.prompt_token_ids or ()), len(completion.token_ids)),
            latency_s=time.perf_counter() - start,
        )

    def _run(
        self,
        requests: Sequence[Request],
        params: GenerationParams,
        emit: Callable[[Any], None],
        cancelled: threading.Event,
    ) -> None:
        """The engine loop (worker thread): enqueue everything, then step until done or cancelled."""
        with self._lock:
            llm = self._load()
            start = time.perf_counter()
            # enqueue returns engine-internal ids ("7-1f3a..."); outputs carry the external part ("7")
            by_id: dict[str, Request] = {}
            internal: dict[str, str] = {}

            def add(batch: Sequence[Request]) -> None:
                for rid, request in zip(self._enqueue(llm, batch, params), batch, strict=True):
                    by_id[rid.split("-")[0]] = request
                    internal[rid.split("-")[0]] = rid

            try:
                add(requests)
            except ValueError:  # one prompt the engine refuses (e.g. longer than max_model_len) fails the batch
                for request in requests:
                    try:
                        add([request])
                    except ValueError as exc:
                        emit(Generation(request.sample.id, request.n_index, self.model, error=f"vLLM: {exc}"))
            engine = llm.llm_engine
            while by_id and engine.has_unfinished_requests():
                if cancelled.is_set():
                    engine.abort_request([internal[k] for k in by_id], internal=True)
                    return
                for output in engine.step():
                    if output.finished and output.request_id in by_id:
                        emit(self._generation(by_id.pop(output.request_id), output, start))

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                self._run(requests, params, emit, cancelled)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the event loop below
                emit(exc)
            finally:
                emit(_DONE)

        worker = loop.run_in_executor(None, work)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise BackendUnavailable(f"vLLM failed on {self.path}: {item}") from item
                yield item
        finally:
            cancelled.set()
            await worker

    async def aclose(self) -> None:
        if self._llm is not None:
            engine = getattr(self._llm, "llm_engine", None)
            shutdown = getattr(engine, "shutdown", None)
            if shutdown is not None:
                shutdown()
            self._llm = None
