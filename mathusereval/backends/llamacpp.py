"""llama.cpp in-process (``llama-cpp-python``): GGUF files, including the embedded default model.

Generation runs on one thread this backend owns. Closing (Ctrl-C, SIGTERM, the end of a run) stops the
generation under way at its next token and joins that thread before the model is freed: ``Llama.close()``
under a thread still decoding was a segmentation fault (issue 35, item 15).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, ConfigError
from ..plugins.contracts import BackendDefaults
from ..records import Generation, GenerationParams, Message, Request, Usage
from .base import EMBEDDED_MODEL, ModelSpec, continues, embedded_gguf_path
from .options import LlamaCppOptions


def default_threads() -> int:
    """Half the cores. Measured here on 2 cores: the 25-item demo took 115 s with one thread and 186 s with
    two (OpenMP spin-waiting against the event loop and grader); docs/design-notes.md §5 has the
    same collapse whenever another process holds a core."""
    return max(1, (os.cpu_count() or 2) // 2)


class LlamaCppBackend(BackendDefaults):
    """Runs one GGUF model in this process; requests are served one at a time in a worker thread."""

    def __init__(self, spec: ModelSpec) -> None:
        try:
            import llama_cpp  # noqa: F401  (checked here so the error is clear and early)
        except ImportError as exc:
            raise BackendUnavailable(
                "the llamacpp backend needs llama-cpp-python: pip install 'mathusereval[embedded]'"
            ) from exc
        self.path = embedded_gguf_path() if spec.model == EMBEDDED_MODEL else Path(spec.model)
        if not self.path.is_file():
            raise BackendUnavailable(f"model file {self.path} does not exist")
        if not isinstance(spec.options, LlamaCppOptions):
            raise ConfigError(f"the llamacpp backend takes LlamaCppOptions, not {type(spec.options).__name__}")
        self.model = spec.model
        self.options = spec.options
        self.n_ctx = int(spec.options.n_ctx or 4096)
        self.threads = int(spec.options.threads or default_threads())
        self._llm: Any = None
        self._draining = False
        # held while the engine works on a worker thread: closing it under a generation in flight (Ctrl-C,
        # SIGTERM, a cancelled run) crashed the process with SIGSEGV; close waits for that item instead
        self._busy = threading.Lock()
        self.max_in_flight = 1  # one sequence at a time
        self._closing = threading.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")

    def describe(self) -> dict[str, Any]:
        import llama_cpp

        return {
            "path": str(self.path),
            "n_ctx": self.n_ctx,
            "threads": self.threads,
            "llama_cpp_python": llama_cpp.__version__,
            **self.options.identity(),
        }

    def _load(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            try:
                llm = Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    verbose=False,
                    seed=0,
                )
            except (ValueError, RuntimeError) as exc:
                raise BackendUnavailable(f"llama.cpp could not load {self.path}: {exc}") from exc
            if self.options.chat_template is not None:
                llm.chat_handler = chat_template_handler(llm, self.options.chat_template)
            decode = llm.eval

            def eval_unless_closing(tokens: Any) -> Any:
                # llama-cpp-python's generate() decodes each token through Llama.eval, in Python: the one
                # place a generation can be stopped between tokens without changing how it samples
                if self._closing.is_set():
                    raise GenerationStopped
                return decode(tokens)

            llm.eval = eval_unless_closing  # type: ignore[method-assign]
            self._llm = llm
        return self._llm

    def _generate_one(self, request: Request, params: GenerationParams) -> Generation:
        with self._busy:
            return self._generate_locked(request, params)

    def _generate_locked(self, request: Request, params: GenerationParams) -> Generation:
        llm = self._load()
        start = time.perf_counter()
        sampling = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stop": list(params.stop) or None,
            "seed": params.seed + request.n_index,
            **_sampling(params),
        }
        try:
            if continues(request.sample.messages):  # a raw completion of the rendered prompt, the reply so far
                out = llm.create_completion(self._continued_prompt(llm, request.sample.messages), **sampling)
                out["choices"][0]["message"] = {"content": out["choices"][0].get("text")}
            else:
                out = llm.create_chat_completion(messages=list(request.sample.messages), **sampling)
        except GenerationStopped:
            return Generation(request.sample.id, request.n_index, self.model, error="llama.cpp: stopped (closing)")
        except TemplateBlocked as exc:  # the same template would be refused for every item: the run stops
            raise ConfigError(f"--chat-template: {exc}") from None
        except (ValueError, RuntimeError, TemplateFailed) as exc:  # a prompt longer than the context window
            return Generation(
                sample_id=request.sample.id,
                n_index=request.n_index,
                model=self.model,
                latency_s=time.perf_counter() - start,
                error=f"llama.cpp: {exc}",
            )
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Generation(
            sample_id=request.sample.id,
            n_index=request.n_index,
            model=self.model,
            text=choice["message"].get("content") or "",  # str from llama.cpp's own chat formatter
            finish_reason=choice.get("finish_reason"),
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0)
            ),
            latency_s=time.perf_counter() - start,
        )

    def _continued_prompt(self, llm: Any, messages: Sequence[Message]) -> list[int]:
        """The tokens of the conversation before its last (assistant) turn, rendered with the chat template
        up to where the assistant's turn begins, then that turn's text: the model goes on writing it."""
        template = self.options.chat_template or llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise TemplateFailed("the model has no chat template to continue a reply with (--chat-template FILE)")
        rendered = chat_template_handler(llm, template, render_only=True)(messages=list(messages[:-1]))
        text = rendered.prompt + messages[-1]["content"]
        return list(llm.tokenize(text.encode(), add_bos=not rendered.added_special, special=True))

    def stop_sending(self) -> bool:
        """Finish the item being generated, start no other (a spent budget)."""
        self._draining = True
        return True

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        self._draining = False
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._load)
        for request in requests:
            if self._draining:
                return
            yield await loop.run_in_executor(self._thread, self._generate_one, request, params)

    def _close(self) -> None:
        with self._busy:  # after the item in flight, if any
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    async def aclose(self) -> None:
        """Stop the generation under way (at its next token), join its thread, then free the model."""
        self._closing.set()
        self._thread.shutdown(wait=True, cancel_futures=True)  # blocks for at most one token or a model load
        if self._llm is not None:
            await asyncio.to_thread(self._close)


class GenerationStopped(Exception):
    """Raised between two tokens once the backend is closing."""


def _sampling(params: GenerationParams) -> dict[str, float]:
    """``--top-k``, ``--min-p``, ``--repetition-penalty`` under llama.cpp's names."""
    names = {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repeat_penalty"}
    return {names[k]: v for k, v in params.sampling_extras().items()}


def chat_template_handler(llm: Any, template: str, render_only: bool = False) -> Any:
    """``--chat-template FILE``: llama.cpp renders the conversation with this Jinja template (as the GGUF's
    own ``tokenizer.chat_template`` would be), ending the prompt where the assistant's turn begins.
    `render_only`: the renderer itself (messages -> a response with ``prompt``), for a continued reply."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos = llm.detokenize([llm.token_eos()]).decode(errors="replace")
    bos = llm.detokenize([llm.token_bos()]).decode(errors="replace")
    try:
        formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
    except Exception as exc:  # a template that does not compile: the user's file
        raise ConfigError(f"--chat-template: not a usable Jinja chat template ({exc})") from exc
    handler = formatter if render_only else formatter.to_chat_handler()

    def render_checked(*args: Any, **kwargs: Any) -> Any:
        """The handler, with the template's failures as our errors: what the Jinja sandbox refuses would be
        refused for every item (`TemplateBlocked`); any other failure, e.g. ``raise_exception`` on one
        conversation, is that item's (`TemplateFailed`)."""
        import jinja2

        try:
            return handler(*args, **kwargs)
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateBlocked(f"blocked by the Jinja sandbox ({exc})") from None
        except jinja2.exceptions.TemplateError as exc:
            raise TemplateFailed(f"the chat template failed on this conversation ({exc})") from None

    return render_checked


class TemplateBlocked(Exception):
    pass


class TemplateFailed(Exception):
    pass
