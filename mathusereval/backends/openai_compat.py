"""OpenAI-compatible endpoints (vLLM, SGLang, llama.cpp server, OpenAI, DeepSeek, GLM ...) over aiohttp.

Chat (``/chat/completions``) or plain completions (``/completions``, for base models and raw few-shot
prompts). A fixed set of workers (``--concurrency`` per endpoint) pulls requests from the batch, so memory
stays flat however many samples a run has; requests are spread over several base URLs
(`endpoints.EndpointPool`) through one pooled aiohttp session. aiohttp, not httpx, on this hot path:
httpx/httpcore's pool scans every connection on each request, which cost 2-4 ms of CPU per request at
256 connections against aiohttp's 0.3 ms (benchmarks/backend_bench.py).

Retryable failures (429, 408, 5xx, connection errors, timeouts, malformed or empty replies) are
retried with jittered exponential backoff that honours ``Retry-After``; anything else, or a spent retry
budget, becomes an error `Generation`: the run goes on, and the next run redoes only those items. Secrets
(API key, header values) are never returned by `describe`, so never reach a results file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ..errors import BackendUnavailable, ConfigError, one_line
from ..plugins.contracts import BackendDefaults
from ..records import Generation, GenerationParams, Request, Usage
from .base import ModelSpec, completion_prompt, continues
from .chat_template import TemplateFailed, TemplateRenderer
from .endpoints import AuthFailure, Endpoint, EndpointPool, FatalError, RetryableError, backoff_s, check_status
from .options import ServedOptions
from .replies import (
    REDACTED,
    UrlCredentials,
    parse_json,
    parse_reply,
    read_body,
    secrets_of,
    served_model_ids,
    with_path,
)

DEFAULT_CONCURRENCY = 64
"""Per endpoint. vLLM and SGLang batch far more than this; hosted APIs usually rate-limit below it, and
429s are honoured anyway. benchmarks/backend_bench.py measures the harness at 64 and 256."""
REPLY_BYTES_BASE = 1 << 20
REPLY_BYTES_PER_TOKEN = 64
"""Default reply cap: 1 MiB + 64 bytes per requested token, room for JSON-escaped CJK text and a reasoning
field, far below what a runaway or hostile server could send (--max-reply-bytes overrides)."""


PROBE_TIMEOUT_S = 10.0
"""How long the start-up probe waits for ``/models`` unless ``--timeout`` says otherwise."""


HARNESS_KEYS = {
    **dict.fromkeys(("model",), "--model"),
    **dict.fromkeys(("messages", "prompt"), "the task's prompt and --system-prompt"),
    **dict.fromkeys(("max_tokens", "max_completion_tokens"), "--max-tokens: the cost bound and the reply cap"),
    **dict.fromkeys(("n", "best_of"), "--samples: one answer per call is what is counted and paid for"),
    **dict.fromkeys(("stream", "stream_options"), "replies are read whole"),
    **dict.fromkeys(("logprobs", "top_logprobs", "prompt_logprobs", "echo"), "the reply cap"),
    **dict.fromkeys(("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls"), "text answers"),
    "temperature": "--temperature",
    "top_p": "--top-p",
    "top_k": "--top-k",
    "min_p": "--min-p",
    "repetition_penalty": "--repetition-penalty",
    "seed": "--seed",
    "stop": "--stop",
}
"""Request fields the harness sets, or counts on (issue 35, item 9): ``--extra-body`` may not send them."""


def check_extra_body(extra: dict[str, Any]) -> None:
    """One line for the first ``--extra-body`` key the run sets or depends on, naming what governs it."""
    for key in extra:
        if key in HARNESS_KEYS:
            raise ConfigError(
                f"--extra-body may not set {key!r}: the harness sets or relies on it ({HARNESS_KEYS[key]})"
            )


class OpenAIBackend(BackendDefaults):
    """Generations from one model served behind one or more OpenAI-compatible base URLs."""

    def __init__(self, spec: ModelSpec) -> None:
        o = spec.options
        if not isinstance(o, ServedOptions):
            raise ConfigError(f"the openai backend takes ServedOptions, not {type(o).__name__}")
        self.model = spec.model
        self.credentials = [UrlCredentials.of(u.strip().rstrip("/")) for u in o.base_url if u.strip()]
        if not self.credentials:
            raise ConfigError("the openai backend needs --base-url URL")
        self.urls = [c.shown for c in self.credentials]  # what describe() and messages show: no secrets
        self.endpoint = o.endpoint
        self.chat_template = o.chat_template
        self._renderer = None if o.chat_template is None else TemplateRenderer(o.chat_template)
        if self._renderer is not None:
            if self.endpoint != "chat":
                raise ConfigError(
                    "--chat-template with --base-url renders continued replies for --endpoint chat; "
                    "on --endpoint completions every prompt is already raw text"
                )
            if o.batch is not None:
                raise ConfigError("--chat-template with --base-url sends continuations to /completions, not --batch")
            self._renderer.check()
        self.concurrency = int(o.concurrency or DEFAULT_CONCURRENCY)
        self.timeout_s = float(o.timeout or 600.0)
        self.probe_timeout_s = float(o.timeout or PROBE_TIMEOUT_S)
        self.max_retries = 5 if o.max_retries is None else int(o.max_retries)
        self.backoff_s = float(o.backoff)
        self.api_key_env = o.api_key_env
        self.extra_body = dict(o.extra_body)
        check_extra_body(self.extra_body)
        extra = dict(o.headers)
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip, deflate",  # inflated by replies.read_body under the reply cap
            **{k: v.value for k, v in extra.items()},
        }
        self.header_names = sorted(extra)
        key = o.api_key
        api_key = key.value if key is not None else os.environ.get(self.api_key_env)
        # which credential wins: an Authorization header, then the API key, then user:password in the URL
        has_auth_header = any(k.lower() == "authorization" for k in headers)
        if api_key and not has_auth_header:
            headers["Authorization"] = f"Bearer {api_key}"
        self.url_auth = not has_auth_header and not api_key
        self.max_reply_bytes = o.max_reply_bytes
        self.key_source = "--api-key" if key is not None else f"${self.api_key_env}"
        self._secrets = secrets_of(self.credentials, api_key, [v.value for v in extra.values()])
        self.pool = EndpointPool([c.request_url for c in self.credentials], self.concurrency)
        self._by_url = {e.url: c for e, c in zip(self.pool.endpoints, self.credentials, strict=True)}
        self._fatal: str | None = None
        self.headers = headers
        self._session: aiohttp.ClientSession | None = None
        self.served_by = dict(o.served_by) if o.served_by else None
        self.served_models: set[str] = set()
        """What the servers' ``/models`` say they serve (recorded in the manifest)."""
        self._draining = False
        self.max_in_flight = self.pool.capacity
        self.served_at = tuple(e.url for e in self.pool.endpoints)
        self.batch = None
        self.overlapping_calls = True  # calls share the endpoint pool's slots
        if o.batch is not None:  # --batch / --{role}-batch: the Batch API instead of one request each
            from .batch_api import BatchRunner

            self.batch = BatchRunner(self, o.batch)
            self.overlapping_calls, self.keeps_run_state = False, True

    @property
    def batches_created(self) -> int:
        return self.batch.created if self.batch is not None else 0

    def bind_run(self, directory: Path) -> None:
        """Where this backend keeps run state (the batches of ``--batch``): the run directory being written."""
        if self.batch is not None:
            self.batch.state_dir = directory

    def _client(self) -> aiohttp.ClientSession:
        """The pooled session, made on first use inside the running event loop (as aiohttp requires)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.pool.capacity, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self.headers,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            )
        return self._session

    def describe(self) -> dict[str, Any]:
        return {
            "base_urls": self.urls,
            "endpoint": self.endpoint,
            "concurrency_per_endpoint": self.concurrency,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "api_key_from": self.key_source,
            **({"extra_body": self.extra_body} if self.extra_body else {}),
            **({"continued_replies": "/completions, rendered with --chat-template"} if self.chat_template else {}),
            "extra_headers": self.header_names,  # names only: values may be credentials
            **({"served_by": self.served_by} if self.served_by else {}),
            **({"served_models": sorted(self.served_models)} if self.served_models else {}),
            **({"batch": dataclasses.asdict(self.batch.settings)} if self.batch is not None else {}),
        }

    def _auth(self, endpoint: Endpoint) -> dict[str, str] | None:
        basic = self._by_url[endpoint.url].basic_auth
        return {"Authorization": basic} if basic and self.url_auth else None

    def _scrub(self, text: str) -> str:
        """`text` (an error, a server's reply quoted in one) with every credential of this backend replaced:
        servers echo keys and URLs back in error bodies."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    async def check_reachable(self) -> None:
        """Fail fast, before anything is written, when no endpoint answers or one refuses our credentials;
        bench the ones that do not answer."""
        down = []
        # a busy server can take long to answer /models: --timeout (when set) is how long the probe waits too
        wait = self.probe_timeout_s
        for endpoint in self.pool.endpoints:
            shown = self._by_url[endpoint.url].shown
            status = 0
            try:
                async with self._client().get(
                    with_path(endpoint.url, "/models"),
                    headers=self._auth(endpoint),
                    timeout=aiohttp.ClientTimeout(total=wait),
                ) as response:
                    body = await read_body(response, REPLY_BYTES_BASE)
                    status = response.status
                    check_status(status, response.headers, body)
                    self.served_models.update(served_model_ids(body))
            except AuthFailure as exc:
                raise BackendUnavailable(f"{shown}: {self._scrub(str(exc))}") from None
            except asyncio.TimeoutError:
                down.append(
                    f"{shown}: no answer to /models within {wait:g} s (a busy server? --timeout S waits longer)"
                )
                self.pool.failed(endpoint)
            except aiohttp.ClientError as exc:
                down.append(f"{shown}: {exc.__class__.__name__}: {self._scrub(str(exc))}")
                self.pool.failed(endpoint)
            except (RetryableError, FatalError):
                # it answers; some servers have no /models, or a broken one. A 404 on a base URL without a
                # path is the classic typo: the API lives under /v1
                if status == 404 and not urlsplit(endpoint.url).path.strip("/"):
                    raise BackendUnavailable(
                        f"{shown}: HTTP 404 for /models; an OpenAI-compatible API lives under /v1: try --base-url "
                        f"{with_path(shown, '/v1')}"
                    ) from None
        if len(down) == len(self.pool.endpoints):
            raise BackendUnavailable(f"cannot reach {'; '.join(down)}")
        if self.served_models and self.model not in self.served_models:  # a typo, or a server of another model
            print(
                f"mue-eval: warning: --model {self.model!r} is not among the models the server lists "
                f"({', '.join(sorted(self.served_models)[:5])}); it may answer with another model or refuse",
                file=sys.stderr,
            )
        for problem in down:
            # what a connection error says may quote the server: one plain line, as every server string is shown
            shown = one_line(problem)
            print(f"mue-eval: warning: endpoint unreachable, others take its share: {shown}", file=sys.stderr)

    def route(self, request: Request) -> str:
        """The endpoint `request` goes to: ``--endpoint``, except a continued assistant turn under
        ``--chat-template``, which goes to completions rendered with it (`chat_template`)."""
        if self.chat_template is not None and continues(request.sample.messages):
            return "completions"
        return self.endpoint

    def _body(self, request: Request, params: GenerationParams, rendered: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.extra_body,  # none of the keys below (`check_extra_body`)
            "model": self.model,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed + request.n_index,  # the k-th sample of an item is reproducible on its own
        }
        if self.route(request) == "chat":
            body["messages"] = list(request.sample.messages)
            if continues(request.sample.messages):  # vLLM's and SGLang's names: the assistant turn goes on
                body.update(continue_final_message=True, add_generation_prompt=False)
        elif self._renderer is not None:
            body["prompt"] = rendered if rendered is not None else self._renderer.render(request.sample.messages)
        else:
            body["prompt"] = completion_prompt(request.sample.messages)
        if params.stop:
            body["stop"] = list(params.stop)
        body.update(params.sampling_extras())  # vLLM, SGLang and llama.cpp's server read these names
        return body

    def reply_cap(self, max_tokens: int) -> int:
        """The largest reply body accepted, decoded: ``--max-reply-bytes``, or room for `max_tokens`."""
        return self.max_reply_bytes or REPLY_BYTES_BASE + REPLY_BYTES_PER_TOKEN * max_tokens

    async def _attempt(
        self, endpoint: Endpoint, body: dict[str, Any], route: str
    ) -> tuple[str, str | None, str | None, Usage]:
        path = "/chat/completions" if route == "chat" else "/completions"
        cap = self.reply_cap(int(body["max_tokens"]))
        try:
            async with self._client().post(
                with_path(endpoint.url, path), data=json.dumps(body).encode(), headers=self._auth(endpoint)
            ) as response:
                raw = await read_body(response, cap)
                status, headers = response.status, response.headers
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # refused, reset, timed out, cut short
            message = f"{exc.__class__.__name__}: {exc}"
            raise RetryableError(message, transport=True) from exc
        check_status(status, headers, raw)
        return parse_reply(parse_json(raw), route)

    def _generation(self, request: Request, start: float, **fields: Any) -> Generation:
        return Generation(
            sample_id=request.sample.id,
            n_index=request.n_index,
            model=self.model,
            latency_s=time.perf_counter() - start,
            **fields,
        )

    def stop_sending(self) -> bool:
        """Send nothing more: requests in flight finish and are yielded, queued ones are dropped (a spent
        budget: what was paid for is kept, what was not sent is left for the next run)."""
        self._draining = True
        return True

    async def _generate_one(self, request: Request, params: GenerationParams) -> Generation | None:
        start = time.perf_counter()
        try:
            rendered = None
            if self._renderer is not None and self.route(request) != self.endpoint:  # a continuation: rendered
                rendered = await asyncio.to_thread(self._renderer.render, request.sample.messages)  # by a child
            body, route = self._body(request, params, rendered), self.route(request)
        except TemplateFailed as exc:  # this conversation only: the template's own raise_exception, say
            return self._generation(request, start, error=f"--chat-template: {one_line(str(exc))}")
        error, last = "not attempted", None
        for attempt in range(self.max_retries + 1):
            try:
                async with self.pool.lease(avoid=last) as endpoint:
                    if self._draining:
                        return None
                    last = endpoint
                    text, reasoning, finish, usage = await self._attempt(endpoint, body, route)
                    self.pool.succeeded(endpoint)
            except AuthFailure as exc:  # every other request would be refused too: stop the run
                shown = self._by_url[last.url].shown if last is not None else "endpoint"
                self._fatal = self._scrub(f"{shown}: {exc}")
                self._draining = True
                return None
            except FatalError as exc:
                error = str(exc)
                if "continue_final_message" in body:  # most likely the field itself was refused
                    error += (
                        " (a continued reply: this server may not continue an assistant turn; --chat-template FILE "
                        "sends continuations to /completions rendered with the model's template)"
                    )
                break
            except RetryableError as exc:
                error = str(exc)
                if exc.transport and last is not None:
                    self.pool.failed(last)
                if attempt == self.max_retries:
                    break
                wait = exc.retry_after if exc.retry_after is not None else backoff_s(self.backoff_s, attempt)
                await asyncio.sleep(wait)
                continue
            except Exception as exc:  # noqa: BLE001 - a reply nobody foresaw fails its item, never the run
                error = f"unreadable reply ({exc.__class__.__name__}: {str(exc)[:200]})"
                break
            # raw text: mathusereval.run.postprocess applies --think, stop sequences and finish reasons
            return self._generation(request, start, text=text, reasoning=reasoning, finish_reason=finish, usage=usage)
        return self._generation(request, start, error=self._scrub(error))

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        """Workers share one iterator over `requests`, each taking the next as it finishes one."""
        if self.batch is not None:
            async for batched in self.batch.generate(requests, params):
                yield batched
            return
        if self._fatal is not None:  # a refused key stays refused: every call after it fails the same way
            raise BackendUnavailable(self._fatal)
        self._draining = False
        done: asyncio.Queue[Generation | None] = asyncio.Queue()
        # a budgeted stream (`mathusereval.run.budget.Admitted`) admits each request as a slot frees, so the
        # replies in flight can settle what they really cost first
        admit = getattr(requests, "admit", None)
        todo = requests.ungated() if admit is not None else iter(requests)  # type: ignore[attr-defined]

        async def worker() -> None:
            for request in todo:
                if self._draining or (admit is not None and not await admit(request)):
                    return
                generation = await self._generate_one(request, params)
                if generation is not None:
                    done.put_nowait(generation)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(len(requests), self.pool.capacity))]
        finished = asyncio.gather(*workers)

        def on_finished(future: asyncio.Future[Any]) -> None:
            if not future.cancelled():
                future.exception()  # retrieved here, so Ctrl-C prints no "exception was never retrieved"
            done.put_nowait(None)

        finished.add_done_callback(on_finished)
        try:
            while (generation := await done.get()) is not None:
                yield generation
            await finished  # a worker's crash surfaces here
            if self._fatal is not None:
                raise BackendUnavailable(self._fatal)
        finally:
            for task in workers:
                task.cancel()
            if not finished.done():
                await asyncio.gather(*workers, return_exceptions=True)

    async def aclose(self) -> None:
        if self._renderer is not None:
            self._renderer.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
