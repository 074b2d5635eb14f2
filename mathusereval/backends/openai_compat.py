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
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp

from ..errors import BackendUnavailable, ConfigError
from ..records import Generation, GenerationParams, Request, Usage
from .base import ModelSpec, Secret, completion_prompt, split_reasoning
from .endpoints import Endpoint, EndpointPool, FatalError, RetryableError, backoff_s, check_status

DEFAULT_CONCURRENCY = 64
"""Per endpoint. vLLM and SGLang batch far more than this; hosted APIs usually rate-limit below it, and
429s are honoured anyway. benchmarks/backend_bench.py measures the harness at 64 and 256."""
ENDPOINTS = ("chat", "completions")


def _parse_reply(data: Any, endpoint: str) -> tuple[str, str | None, str | None, Usage]:
    """(content, server-side reasoning, finish_reason, usage) of one reply; a reply without them is retried."""
    try:
        choice = data["choices"][0]
        if endpoint == "chat":
            message = choice["message"]
            text = message.get("content") or ""
            # vLLM's reasoning parsers (and DeepSeek) return the thinking apart from the answer
            reasoning = message.get("reasoning_content") or message.get("reasoning")
        else:
            text, reasoning = choice["text"] or "", None
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise RetryableError(f"reply without choices[0]: {str(data)[:200]}") from exc
    counts = data.get("usage") or {}
    usage = Usage(int(counts.get("prompt_tokens") or 0), int(counts.get("completion_tokens") or 0))
    # An empty reply is the model's answer when the server says it generated and stopped (a sampled
    # end-of-text); without that account it is a server hiccup, worth another try.
    generated = finish in ("stop", "length") and usage.completion_tokens > 0
    if not isinstance(text, str) or (not text.strip() and not reasoning and not generated):
        raise RetryableError("empty content")
    return text, reasoning if isinstance(reasoning, str) else None, finish, usage


class OpenAIBackend:
    """Generations from one model served behind one or more OpenAI-compatible base URLs."""

    def __init__(self, spec: ModelSpec) -> None:
        o = spec.options
        self.model = spec.model
        urls = o["base_url"] if isinstance(o["base_url"], (list, tuple)) else str(o["base_url"]).split(",")
        self.urls = [u.strip().rstrip("/") for u in urls if u.strip()]
        if not self.urls:
            raise ConfigError("--base-url is empty")
        self.endpoint = str(o.get("endpoint") or "chat")
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"--endpoint must be one of {', '.join(ENDPOINTS)}, got {self.endpoint!r}")
        self.concurrency = int(o.get("concurrency") or DEFAULT_CONCURRENCY)
        self.timeout_s = float(o.get("timeout") or 600.0)
        self.max_retries = int(o.get("max_retries", 5))
        self.backoff_s = float(o.get("backoff", 1.0))
        self.think = str(o.get("think") or "strip")
        self.api_key_env = str(o.get("api_key_env") or "OPENAI_API_KEY")
        extra: dict[str, Secret] = dict(o.get("headers") or {})
        headers = {"Content-Type": "application/json", **{k: v.value for k, v in extra.items()}}
        self.header_names = sorted(extra)
        key = o.get("api_key")
        api_key = key.value if isinstance(key, Secret) else os.environ.get(self.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.key_source = "--api-key" if isinstance(key, Secret) else f"${self.api_key_env}"
        self.pool = EndpointPool(self.urls, self.concurrency)
        self.headers = headers
        self._session: aiohttp.ClientSession | None = None
        self.served_by = o.get("served_by")
        self._draining = False

    def _client(self) -> aiohttp.ClientSession:
        """The pooled session, made on first use inside the running event loop (as aiohttp requires)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.pool.capacity, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self.headers,
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
            "think": self.think,
            "api_key_from": self.key_source,
            "extra_headers": self.header_names,  # names only: values may be credentials
            **({"served_by": self.served_by} if self.served_by else {}),
        }

    async def check_reachable(self) -> None:
        """Fail fast, before anything is written, when no endpoint answers; bench the ones that do not."""
        down = []
        for endpoint in self.pool.endpoints:
            try:
                async with self._client().get(f"{endpoint.url}/models", timeout=aiohttp.ClientTimeout(total=10)):
                    pass
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                down.append(f"{endpoint.url}: {exc.__class__.__name__}: {exc}")
                self.pool.failed(endpoint)
        if len(down) == len(self.pool.endpoints):
            raise BackendUnavailable(f"cannot reach {'; '.join(down)}")
        for problem in down:
            print(f"mue-eval: warning: endpoint unreachable, others take its share: {problem}", file=sys.stderr)

    def _body(self, request: Request, params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed + request.n_index,  # the k-th sample of an item is reproducible on its own
        }
        if self.endpoint == "chat":
            body["messages"] = list(request.sample.messages)
        else:
            body["prompt"] = completion_prompt(request.sample.messages)
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    async def _attempt(self, endpoint: Endpoint, body: dict[str, Any]) -> tuple[str, str | None, str | None, Usage]:
        path = "/chat/completions" if self.endpoint == "chat" else "/completions"
        try:
            async with self._client().post(endpoint.url + path, data=json.dumps(body).encode()) as response:
                raw = await response.read()
                status, headers = response.status, response.headers
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # refused, reset, timed out, cut short
            raise RetryableError(f"{exc.__class__.__name__}: {exc}", transport=True) from exc
        check_status(status, headers, raw)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RetryableError(f"malformed JSON reply: {raw[:200]!r}") from exc
        return _parse_reply(data, self.endpoint)

    def _generation(self, request: Request, start: float, **fields: Any) -> Generation:
        return Generation(
            sample_id=request.sample.id,
            n_index=request.n_index,
            model=self.model,
            latency_s=time.perf_counter() - start,
            **fields,
        )

    def stop_sending(self) -> None:
        """Send nothing more: requests in flight finish and are yielded, queued ones are dropped (a spent
        budget: what was paid for is kept, what was not sent is left for the next run)."""
        self._draining = True

    async def _generate_one(self, request: Request, params: GenerationParams) -> Generation | None:
        body = self._body(request, params)
        start = time.perf_counter()
        error, last = "not attempted", None
        for attempt in range(self.max_retries + 1):
            try:
                async with self.pool.lease(avoid=last) as endpoint:
                    if self._draining:
                        return None
                    last = endpoint
                    text, reasoning, finish, usage = await self._attempt(endpoint, body)
                    self.pool.succeeded(endpoint)
            except FatalError as exc:
                error = str(exc)
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
            if self.think == "strip" and reasoning is None:
                text, reasoning = split_reasoning(text)
            return self._generation(request, start, text=text, reasoning=reasoning, finish_reason=finish, usage=usage)
        return self._generation(request, start, error=error)

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        """Workers share one iterator over `requests`, each taking the next as it finishes one."""
        self._draining = False
        done: asyncio.Queue[Generation | None] = asyncio.Queue()
        todo = iter(requests)

        async def worker() -> None:
            for request in todo:
                if self._draining:
                    return
                generation = await self._generate_one(request, params)
                if generation is not None:
                    done.put_nowait(generation)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(len(requests), self.pool.capacity))]
        finished = asyncio.gather(*workers)
        finished.add_done_callback(lambda _: done.put_nowait(None))
        try:
            while (generation := await done.get()) is not None:
                yield generation
            await finished  # a worker's crash surfaces here
        finally:
            for task in workers:
                task.cancel()
            if not finished.done():
                await asyncio.gather(*workers, return_exceptions=True)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
