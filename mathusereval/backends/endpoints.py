"""Several endpoints serving one model, and the retry policy for calls to them.

Load balancing is least-outstanding-requests: each call goes to the endpoint with the fewest requests in
flight, so a slow replica gets less work without any tuning. An endpoint that fails at the transport level
(refused, reset, timed out) is benched for a growing cool-down, and a retried call prefers another
endpoint, so one dead replica costs a few retries, not the run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..errors import one_line

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
"""Worth another try: timeouts, conflicts, rate limits, and server-side failures."""
MAX_BACKOFF_S = 60.0
MAX_BENCH_S = 30.0


class RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None, transport: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.transport = transport


class FatalError(Exception):
    """A reply that retrying cannot fix (400, 404 ...): that item's error."""


class AuthFailure(FatalError):
    """401 or 403: every other request would fail the same way, so the run stops at the first one."""


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds, capped; the HTTP-date form falls back to our own backoff."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return min(MAX_BACKOFF_S, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def backoff_s(base: float, attempt: int) -> float:
    """Exponential backoff with full jitter around the nominal delay (0.5x to 1.5x), so that many clients
    throttled at the same moment do not come back at the same moment."""
    return min(MAX_BACKOFF_S, base * 2.0**attempt) * (0.5 + random.random())


def server_message(body: bytes, limit: int = 300) -> str:
    """What an error reply says, on one line: OpenAI's ``{"error": {"message": ...}}`` when it is that shape,
    else the start of the body."""
    text = body[:4096].decode(errors="replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("message"))
        error = error.get("message", error) if isinstance(error, dict) else error
        if isinstance(error, str):
            text = error
    return one_line(text)[:limit]


def check_status(status: int, headers: Mapping[str, str], body: bytes) -> None:
    if status in RETRY_STATUS:
        raise RetryableError(f"HTTP {status}: {server_message(body, 200)}", retry_after(headers))
    if status in (401, 403):
        raise AuthFailure(f"HTTP {status} (authentication or permission refused): {server_message(body)}")
    if status >= 400:
        raise FatalError(f"HTTP {status}: {server_message(body)}")


@dataclass
class Endpoint:
    url: str
    in_flight: int = 0
    failures: int = 0
    benched_until: float = 0.0


class EndpointPool:
    """Base URLs of one model; `concurrency` requests in flight per endpoint at most."""

    def __init__(self, urls: Sequence[str], concurrency: int) -> None:
        self.endpoints = [Endpoint(url.rstrip("/")) for url in urls]
        self.capacity = concurrency * len(self.endpoints)
        self._slots = asyncio.Semaphore(self.capacity)
        self._turn = itertools.count()

    def _pick(self, avoid: Endpoint | None) -> Endpoint:
        now = time.monotonic()
        healthy = [e for e in self.endpoints if e.benched_until <= now and e is not avoid]
        if not healthy:
            healthy = [e for e in self.endpoints if e.benched_until <= now] or [
                min(self.endpoints, key=lambda e: e.benched_until)
            ]
        # least outstanding; ties rotate so that an idle pool spreads its first requests
        start = next(self._turn)
        order = healthy[start % len(healthy) :] + healthy[: start % len(healthy)]
        return min(order, key=lambda e: e.in_flight)

    @asynccontextmanager
    async def lease(self, avoid: Endpoint | None = None) -> AsyncIterator[Endpoint]:
        """A slot on the least busy healthy endpoint for one attempt."""
        async with self._slots:
            endpoint = self._pick(avoid)
            endpoint.in_flight += 1
            try:
                yield endpoint
            finally:
                endpoint.in_flight -= 1

    @staticmethod
    def succeeded(endpoint: Endpoint) -> None:
        endpoint.failures = 0
        endpoint.benched_until = 0.0

    @staticmethod
    def failed(endpoint: Endpoint) -> None:
        """A transport failure: bench the endpoint for 1, 2, 4 ... 30 s."""
        endpoint.failures += 1
        endpoint.benched_until = time.monotonic() + min(MAX_BENCH_S, 2.0 ** (endpoint.failures - 1))
