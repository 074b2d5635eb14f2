"""The OpenAI Batch API for an OpenAI-compatible backend (``--batch`` for the model, ``--judge-batch`` for the
judges): the same request bodies as direct calls, sent as one JSONL file, at the provider's batch discount.

Flow (OpenAI API reference, "Batch"): upload the requests (``POST /files``, multipart, ``purpose=batch``),
create a batch (``POST /batches``), poll it (``GET /batches/{id}``) until it is completed, failed, expired or
cancelled, then download its output and error files (``GET /files/{id}/content``). Each output line becomes
the `Generation` a direct call would have returned, so storing, the judge cache, parsing and its retries
are unchanged.

Resumable: before polling starts, the batch id, its input file's id, sha256 and size and its ``custom_id`` ->
item map are appended to ``batches.jsonl`` in the run directory (sealed: `batch_state`). A run started again
with requests that a stored batch already holds (the same body for each ``custom_id``) polls that batch
rather than creating another, so a request is never paid for twice, once the provider shows it is this run's
batch: its input file has the stored id and sha256 and holds each request's line byte for byte. Failed
lines, and the requests of an expired, cancelled or failed batch, go into a new batch of just those (or
direct calls with ``--batch-fallback direct``), at most `BatchSettings.retries` times; what still fails is an
error generation, counted as any failed call is.

What the provider sends is hostile input (issue 35): ids are checked before they go into a URL
(`batch_state.checked_id`) and quoted there; output and error files are bounded by what the batch can return
and streamed (`batch_replies`); a reply's ``custom_id`` and ``model`` must be the run's; every string shown is
one printable line; polls and downloads retry transient failures with backoff that honours ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

from ..errors import BackendUnavailable, one_line
from ..records import Generation, GenerationParams, Request
from .batch_replies import Replies
from .batch_state import BatchLog, checked_id
from .endpoints import FatalError, RetryableError, backoff_s, check_status
from .options import BatchSettings
from .replies import ReplyTooLarge, body_lines, parse_reply, read_body, with_path

if TYPE_CHECKING:
    import aiohttp

    from .openai_compat import OpenAIBackend

T = TypeVar("T")
TERMINAL = ("completed", "failed", "expired", "cancelled")
CONTROL_BYTES = 1 << 20
"""The cap on a control-plane reply (a batch or file object)."""

IN_FLIGHT: dict[str, tuple[str, str, dict[str, str]]] = {}
"""batch id -> (the URL shown, the URL requested, its headers) while this process polls it (for Ctrl-C)."""


def custom_id(request: Request | Generation) -> str:
    """A request's line id in a batch, and the id of the generation that answers it."""
    if isinstance(request, Generation):
        return f"{request.sample_id}#{request.n_index}"
    return f"{request.sample.id}#{request.n_index}"


def shown(value: object, limit: int = 60) -> str:
    """A server-provided value as it may be printed: one line, no control characters (issue 35, item 12)."""
    return one_line(str(value))[:limit]


def _count(value: object) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "?"


def same_model(asked: str, replied: str) -> bool:
    """Whether a reply's ``model`` is the model a request named: the same name, a dated snapshot of it
    (``gpt-4o-mini`` answered by ``gpt-4o-mini-2024-07-18``), or it without a provider prefix."""
    asked, replied = asked.casefold(), replied.casefold()
    return replied in (asked, asked.rsplit("/", 1)[-1]) or replied.startswith(asked + "-")


class BatchRunner:
    """Batches for one `OpenAIBackend` (its URL, credentials, bodies and reply parsing)."""

    def __init__(self, backend: OpenAIBackend, settings: BatchSettings) -> None:
        self.backend = backend
        self.settings = settings
        self.state_dir: Path | None = None
        self.created = 0
        """Batches this process created (a resumed batch is not counted)."""
        base = backend.credentials[0].request_url
        self.base = base
        self.url_path = urlsplit(base).path.rstrip("/") + (
            "/chat/completions" if backend.endpoint == "chat" else "/completions"
        )

    @property
    def log(self) -> BatchLog:
        return BatchLog(self.state_dir or Path.cwd())

    # -- HTTP -----------------------------------------------------------------------------------------
    async def _call(
        self, method: str, path: str, handle: Callable[[aiohttp.ClientResponse], Awaitable[T]], **kwargs: Any
    ) -> T:
        """`handle` of a control-plane reply with a success status. A GET (a poll, a download) is retried
        as every call is: 429, 5xx and broken connections with backoff that honours ``Retry-After``; a POST
        is not (a batch created twice is paid twice). What is not retried, or fails every try, is one line
        naming the call (credentials scrubbed), never a traceback; a 401, 403 or 404 stops at once."""
        import aiohttp

        tries = self.backend.max_retries + 1 if method == "GET" else 1
        for attempt in range(tries):
            try:
                async with self.backend._client().request(method, with_path(self.base, path), **kwargs) as response:
                    if response.status >= 400:
                        check_status(response.status, response.headers, await read_body(response, 1 << 16))
                    return await handle(response)
            except ReplyTooLarge as exc:  # the same reply again would be as large
                problem: Exception = exc
                break
            except (RetryableError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                problem = exc
                if attempt + 1 == tries:
                    break
                wait = getattr(exc, "retry_after", None)
                wait = backoff_s(self.backend.backoff_s, attempt) if wait is None else wait
                print(
                    f"mue-eval: note: batch API {method} {path}: {self._said(exc)}; trying again in {wait:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
                await asyncio.sleep(wait)
            except FatalError as exc:
                problem = exc
                break
        raise BackendUnavailable(f"batch API {method} {path}: {self._said(problem)}") from problem

    def _said(self, exc: BaseException) -> str:
        return one_line(self.backend._scrub(f"{exc}" or exc.__class__.__name__))

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async def body(response: aiohttp.ClientResponse) -> bytes:
            return await read_body(response, CONTROL_BYTES)

        raw = await self._call(method, path, body, **kwargs)
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            raise BackendUnavailable(f"batch API {method} {path}: the reply is not a JSON object")
        return payload

    async def _submit(self, data: bytes, items: dict[str, dict[str, Any]]) -> dict[str, Any]:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", data, filename="requests.jsonl", content_type="application/jsonl")
        payload = form()  # its own multipart Content-Type, not the session's JSON one
        uploaded = await self._json("POST", "/files", data=payload, headers={"Content-Type": payload.content_type})
        file_id = checked_id(uploaded.get("id"), "file id")
        body = {"input_file_id": file_id, "endpoint": self.url_path, "completion_window": self.settings.window}
        batch = await self._json("POST", "/batches", json=body)
        record = {
            "batch_id": checked_id(batch.get("id"), "batch id"),
            "input_file_id": file_id,
            "input_sha256": hashlib.sha256(data).hexdigest(),
            "input_bytes": len(data),
            "items": items,
            "created_at": time.time(),
        }
        self.created += 1
        self.log.append(record)  # before polling: a run killed from here on resumes this batch
        return record

    async def _poll(self, batch_id: str) -> dict[str, Any]:
        auth = {k: v for k, v in self.backend.headers.items() if k.lower() == "authorization"}
        IN_FLIGHT[batch_id] = (self.backend.urls[0], self.base, auth)
        while True:  # interrupted, the batch stays in IN_FLIGHT for the one-line message (`interrupted`)
            batch = await self._json("GET", f"/batches/{quote(batch_id, safe='')}")
            counts = batch.get("request_counts")
            counts = counts if isinstance(counts, dict) else {}
            print(
                f"batch {batch_id}: {shown(batch.get('status'))}, {_count(counts.get('completed', 0))} of "
                f"{_count(counts.get('total'))} done, {_count(counts.get('failed', 0))} failed",
                file=sys.stderr,
                flush=True,
            )
            if batch.get("status") in TERMINAL:
                IN_FLIGHT.pop(batch_id, None)
                return batch
            await asyncio.sleep(self.settings.poll_s)

    # -- whose batch is it ----------------------------------------------------------------------------
    async def _not_ours(self, record: dict[str, Any], batch: dict[str, Any], digests: dict[str, str]) -> str | None:
        """Why a stored batch is not the one this run uploaded (its input file's id, its sha256, and a line
        of it for each request, byte for byte), or None: a resumed batch is collected only when it is ours."""
        file_id = batch.get("input_file_id")
        if file_id != record.get("input_file_id"):
            return f"its input file {shown(file_id)} is not the one this run uploaded"
        stored = record.get("input_bytes")
        cap = stored if isinstance(stored, int) else self.settings.max_bytes  # older records lack it

        async def hashed(response: aiohttp.ClientResponse) -> tuple[str, set[str]] | None:
            whole, lines = hashlib.sha256(), set()
            try:
                async for raw, _ in body_lines(response, cap, cap, whole.update):
                    lines.add(hashlib.sha256(raw + b"\n").hexdigest())
            except ReplyTooLarge:
                return None  # larger than what was uploaded
            return whole.hexdigest(), lines

        path = f"/files/{quote(checked_id(file_id, 'input file id'), safe='')}/content"
        found = await self._call("GET", path, hashed)
        if found is None or found[0] != record.get("input_sha256"):
            return "its input file is not the one this run uploaded (sha256)"
        if not set(digests.values()) <= found[1]:
            return "its input file does not hold this run's requests"
        return None

    # -- one batch, and the rounds ----------------------------------------------------------------------
    def _chunks(self, requests: list[Request], params: GenerationParams) -> list[list[tuple[Request, bytes]]]:
        chunks: list[list[tuple[Request, bytes]]] = [[]]
        size = 0
        for request in requests:
            line = json.dumps(
                {"custom_id": custom_id(request), "method": "POST", "url": self.url_path,
                 "body": self.backend._body(request, params)},
                ensure_ascii=False, sort_keys=True,
            ).encode() + b"\n"  # fmt: skip
            if chunks[-1] and (
                len(chunks[-1]) >= self.settings.max_requests or size + len(line) > self.settings.max_bytes
            ):
                chunks.append([])
                size = 0
            chunks[-1].append((request, line))
            size += len(line)
        return [c for c in chunks if c]

    async def _one(self, chunk: list[tuple[Request, bytes]], params: GenerationParams) -> list[Generation]:
        """The generations of one batch's requests: replies, or errors saying why a line has none."""
        digests = {custom_id(r): hashlib.sha256(line).hexdigest() for r, line in chunk}
        record = self.log.stored_batch(digests)
        if record is not None:
            batch_id = checked_id(record["batch_id"], "batch id")
            print(f"batch {batch_id}: resuming the batch an earlier run created", file=sys.stderr, flush=True)
            batch = await self._json("GET", f"/batches/{quote(batch_id, safe='')}")
            foreign = await self._not_ours(record, batch, digests)
            if foreign is not None:
                print(f"mue-eval: warning: batch {batch_id}: {foreign}; it is not collected, its requests go into a "
                      "new batch", file=sys.stderr)  # fmt: skip
                self.log.append({"batch_id": batch_id, "given_up": "foreign"})
                record = None
        if record is None:
            items = {
                custom_id(r): {"sample_id": r.sample.id, "n_index": r.n_index, "body_sha256": digests[custom_id(r)]}
                for r, _ in chunk
            }
            record = await self._submit(b"".join(line for _, line in chunk), items)
        batch_id = record["batch_id"]
        batch = await self._poll(batch_id)
        status = shown(batch.get("status"))
        replies = Replies(frozenset(record["items"]), frozenset(digests), self.backend.reply_cap(params.max_tokens))
        if batch.get("input_file_id") != record["input_file_id"]:
            # the provider says it ran another file: nothing of it is this run's
            replies.foreign_input = True
            status = "foreign"
        else:
            for key in ("output_file_id", "error_file_id"):
                if batch.get(key):
                    path = f"/files/{quote(checked_id(batch[key], key.replace('_', ' ')), safe='')}/content"
                    await self._call("GET", path, replies.read_file)
        for note in replies.notes(batch_id):
            print(f"mue-eval: warning: {note}", file=sys.stderr)
        if status != "completed":
            self.log.append({"batch_id": batch_id, "given_up": status})  # its requests go into a new batch
        generations = [self._generation(r, replies, batch_id, status) for r, _ in chunk]
        failed = [custom_id(g) for g in generations if not g.ok]
        if failed and status == "completed":
            self.log.append({"batch_id": batch_id, "failed": failed})
        return generations

    def _generation(self, request: Request, replies: Replies, batch_id: str, status: str) -> Generation:
        def base(**fields: Any) -> Generation:
            return Generation(request.sample.id, request.n_index, self.backend.model, **fields)

        cid = custom_id(request)
        if replies.foreign_input:
            return base(error=f"batch {batch_id}: the provider ran another input file than this run uploaded")
        problem = replies.problem(cid)
        if problem is not None:
            return base(error=f"batch {batch_id} {status}: {problem}")
        line = replies.lines[cid]
        found = line.get("response")
        response: dict[str, Any] = found if isinstance(found, dict) else {}
        code = response.get("status_code")
        if code != 200 or line.get("error"):
            error = line.get("error") or response.get("body")
            said = one_line(self.backend._scrub(json.dumps(error, ensure_ascii=False)))[:300]
            return base(error=f"batch {batch_id}: line failed (status {shown(code, 20)}): {said}")
        body = response.get("body")
        replied = body.get("model") if isinstance(body, dict) else None
        if isinstance(replied, str) and not same_model(self.backend.model, replied):
            return base(error=f"batch {batch_id}: a reply from model {shown(replied)!r}, not {self.backend.model!r}")
        try:
            text, reasoning, finish, usage = parse_reply(body, self.backend.endpoint)
        except Exception as exc:  # noqa: BLE001 - an unreadable line fails its request only
            return base(error=f"batch {batch_id}: unreadable reply ({exc.__class__.__name__})")
        return base(text=text, reasoning=reasoning, finish_reason=finish, usage=usage)

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        """Every request's generation through batches (iterating `requests` reserves each one's worst case
        against the budget before the batch that holds it is submitted)."""
        pending = list(requests)
        for round_ in range(self.settings.retries + 1):
            failed: list[Request] = []
            by_id = {custom_id(r): r for r in pending}
            for chunk in self._chunks(pending, params):
                for generation in await self._one(chunk, params):
                    last = round_ == self.settings.retries
                    if generation.ok or (last and self.settings.fallback == "batch"):
                        yield generation
                    else:
                        failed.append(by_id[custom_id(generation)])
            if not failed:
                return
            if self.settings.fallback == "direct":
                for request in failed:  # the backend's own retries bound these
                    direct = await self.backend._generate_one(request, params)
                    if direct is not None:
                        yield direct
                return
            print(f"batch: {len(failed)} requests failed; sending them again in a new batch", file=sys.stderr)
            pending = failed


def interrupted(cancel: bool) -> list[str]:
    """Lines for Ctrl-C while batches are polled: they keep running on the provider (or are cancelled)."""
    import urllib.request

    lines = []
    for batch_id, (url, base, headers) in list(IN_FLIGHT.items()):
        if cancel:
            path = f"/batches/{quote(batch_id, safe='')}/cancel"  # an id `checked_id` let through
            request = urllib.request.Request(with_path(base, path), b"{}", headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the run's own base URL
                    lines.append(f"mue-eval: batch {batch_id} at {url} cancelled (--batch-cancel-on-interrupt)")
            except OSError as exc:
                lines.append(f"mue-eval: batch {batch_id} at {url} could not be cancelled ({exc.__class__.__name__})")
        else:
            lines.append(
                f"mue-eval: batch {batch_id} keeps running at {url}; run the same command again to collect its "
                "replies (it is not created twice)"
            )
    return lines
