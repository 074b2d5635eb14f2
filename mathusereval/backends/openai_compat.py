"""OpenAI-compatible chat endpoints (vLLM, SGLang, llama.cpp server, OpenAI, DeepSeek, GLM ...) over httpx.

Concurrency is bounded by a semaphore over one pooled client. Retryable failures (429, 408, 5xx,
connection errors, timeouts, malformed or empty replies) are retried with jittered exponential backoff that
honours ``Retry-After``; anything else, or a retry budget spent, becomes an error `Generation`: the run
goes on, and the next run redoes only those items.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from ..errors import BackendUnavailable
from ..records import Generation, GenerationParams, Request, Usage
from .base import ModelSpec

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 60.0


class RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(Exception):
    """A reply that retrying cannot fix (400, 401, 404 ...)."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # HTTP-date form: fall back to our own backoff
        return None


def _parse_reply(data: Any) -> tuple[str, str | None, Usage]:
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise RetryableError(f"reply without choices[0].message: {str(data)[:200]}") from exc
    if not text.strip() and finish != "length":
        raise RetryableError("empty content")
    usage = data.get("usage") or {}
    return text, finish, Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


class OpenAIBackend:
    """Chat completions against one OpenAI-compatible server."""

    def __init__(self, spec: ModelSpec) -> None:
        self.model = spec.model
        self.base_url = str(spec.options["base_url"]).rstrip("/")
        self.concurrency = int(spec.options.get("concurrency") or 32)
        self.timeout_s = float(spec.options.get("timeout") or 600.0)
        self.max_retries = int(spec.options.get("max_retries", 5))
        self.backoff_s = float(spec.options.get("backoff", 1.0))
        self.api_key_env = str(spec.options.get("api_key_env") or "OPENAI_API_KEY")
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(self.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._client = httpx.AsyncClient(headers=headers, timeout=self.timeout_s, limits=limits)
        self._slots = asyncio.Semaphore(self.concurrency)

    def describe(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "api_key_env": self.api_key_env,
        }

    async def check_reachable(self) -> None:
        """Fail fast, before anything is written, when nothing listens at the base URL."""
        try:
            await self._client.get(f"{self.base_url}/models", timeout=10.0)
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach {self.base_url}: {exc.__class__.__name__}: {exc}") from exc

    def _body(self, request: Request, params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(request.sample.messages),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed + request.n_index,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    async def _attempt(self, body: dict[str, Any]) -> tuple[str, str | None, Usage]:
        try:
            response = await self._client.post(f"{self.base_url}/chat/completions", json=body)
        except httpx.TransportError as exc:  # connect errors, resets, timeouts
            raise RetryableError(f"{exc.__class__.__name__}: {exc}") from exc
        if response.status_code in RETRY_STATUS:
            raise RetryableError(f"HTTP {response.status_code}: {response.text[:200]}", _retry_after(response))
        if response.status_code >= 400:
            raise FatalError(f"HTTP {response.status_code}: {response.text[:300]}")
        try:
            data = response.json()
        except ValueError as exc:
            raise RetryableError(f"malformed JSON reply: {response.text[:200]!r}") from exc
        return _parse_reply(data)

    async def _generate_one(self, request: Request, params: GenerationParams) -> Generation:
        body = self._body(request, params)
        start = time.perf_counter()
        error = "not attempted"
        async with self._slots:
            for attempt in range(self.max_retries + 1):
                try:
                    text, finish, usage = await self._attempt(body)
                    return Generation(
                        sample_id=request.sample.id,
                        n_index=request.n_index,
                        model=self.model,
                        text=text,
                        finish_reason=finish,
                        usage=usage,
                        latency_s=time.perf_counter() - start,
                    )
                except FatalError as exc:
                    error = str(exc)
                    break
                except RetryableError as exc:
                    error = str(exc)
                    if attempt == self.max_retries:
                        break
                    delay = min(MAX_BACKOFF_S, self.backoff_s * 2**attempt) * (0.5 + random.random())
                    await asyncio.sleep(exc.retry_after if exc.retry_after is not None else delay)
        return Generation(
            sample_id=request.sample.id,
            n_index=request.n_index,
            model=self.model,
            latency_s=time.perf_counter() - start,
            error=error,
        )

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        pending = [asyncio.ensure_future(self._generate_one(r, params)) for r in requests]
        try:
            for finished in asyncio.as_completed(pending):
                yield await finished
        finally:
            for task in pending:
                task.cancel()

    async def aclose(self) -> None:
        await self._client.aclose()
