"""The OpenAI Batch API for an OpenAI-compatible backend (``--batch`` for the model, ``--judge-batch`` for the
judges): the same request bodies as direct calls, sent as one JSONL file, at the provider's batch discount.

Flow (OpenAI API reference, "Batch"): upload the requests (``POST /files``, multipart, ``purpose=batch``),
create a batch (``POST /batches``), poll it (``GET /batches/{id}``) until it is completed, failed, expired or
cancelled, then download its output and error files (``GET /files/{id}/content``). Each output line becomes
the `Generation` a direct call would have returned, so storing, the judge cache, parsing and its retries
are unchanged.

Resumable: before polling starts, the batch id, the sha256 of its input file and its ``custom_id`` -> item
map are appended to ``batches.jsonl`` in the run directory. A run started again with requests that a
stored batch already holds (the same body for each ``custom_id``) polls that batch rather than creating
another, so a request is never paid for twice. Failed lines, and the requests of an expired, cancelled or
failed batch, go into a new batch of just those (or direct calls with ``--batch-fallback direct``), at most
`BatchSettings.retries` times; what still fails is an error generation, counted as any failed call is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import BackendUnavailable
from ..records import Generation, GenerationParams, Request
from .endpoints import FatalError, RetryableError, check_status
from .options import BatchSettings
from .replies import parse_reply, read_body, with_path

if TYPE_CHECKING:
    from .openai_compat import OpenAIBackend

STATE = "batches.jsonl"
TERMINAL = ("completed", "failed", "expired", "cancelled")
MAX_FILE_BYTES = 1 << 31
"""An output or error file larger than this is refused (a batch's replies are bounded by its requests)."""

IN_FLIGHT: dict[str, tuple[str, str, dict[str, str]]] = {}
"""batch id -> (the URL shown, the URL requested, its headers) while this process polls it (for Ctrl-C)."""


def custom_id(request: Request | Generation) -> str:
    """A request's line id in a batch, and the id of the generation that answers it."""
    if isinstance(request, Generation):
        return f"{request.sample_id}#{request.n_index}"
    return f"{request.sample.id}#{request.n_index}"


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

    # -- the state file ---------------------------------------------------------------------------------
    def _state_path(self) -> Path:
        return (self.state_dir or Path.cwd()) / STATE

    def _records(self) -> list[dict[str, Any]]:
        path = self._state_path()
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed run
            if isinstance(record, dict) and isinstance(record.get("batch_id"), str):
                records.append(record)
        return records

    def _append(self, record: dict[str, Any]) -> None:
        path = self._state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _stored_batch(self, digests: dict[str, str]) -> str | None:
        """A stored batch (not given up on) that holds every one of these requests with the same body."""
        records = self._records()
        dropped = {r["batch_id"] for r in records if r.get("given_up")}
        failed: dict[str, set[str]] = {}
        for r in records:
            if isinstance(r.get("failed"), list):
                failed.setdefault(r["batch_id"], set()).update(str(c) for c in r["failed"])
        for record in reversed(records):
            held = record.get("items")
            if record["batch_id"] in dropped or not isinstance(held, dict):
                continue
            if failed.get(record["batch_id"], set()) & set(digests):
                continue  # a line this batch failed is sent again in a new batch
            if all(held.get(cid, {}).get("body_sha256") == digest for cid, digest in digests.items()):
                return str(record["batch_id"])
        return None

    # -- HTTP -----------------------------------------------------------------------------------------
    async def _read(self, method: str, path: str, cap: int, **kwargs: Any) -> bytes:
        """A control-plane reply's body, read as every reply is (`read_body`: capped, gzip inflated, since the
        session asks for compression and leaves it to us); an error status or a broken connection is one
        line naming the call, never a traceback (credentials scrubbed)."""
        import aiohttp

        try:
            async with self.backend._client().request(method, with_path(self.base, path), **kwargs) as response:
                raw = await read_body(response, cap)
                check_status(response.status, response.headers, raw)
        # a reply past its cap (ReplyTooLarge) is a RetryableError too
        except (RetryableError, FatalError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise BackendUnavailable(self.backend._scrub(f"batch API {method} {path}: {exc}")) from exc
        return raw

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        raw = await self._read(method, path, 1 << 20, **kwargs)
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise BackendUnavailable(f"batch API {method} {path}: the reply is not a JSON object")
        return payload

    async def _content(self, file_id: str) -> list[dict[str, Any]]:
        raw = await self._read("GET", f"/files/{file_id}/content", MAX_FILE_BYTES)
        lines = []
        for line in raw.decode("utf-8", errors="replace").splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue  # a line nobody can read answers nothing: its request is retried
            if isinstance(parsed, dict) and isinstance(parsed.get("custom_id"), str):
                lines.append(parsed)
        return lines

    async def _submit(self, data: bytes, items: dict[str, dict[str, Any]]) -> str:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", data, filename="requests.jsonl", content_type="application/jsonl")
        payload = form()  # its own multipart Content-Type, not the session's JSON one
        uploaded = await self._json("POST", "/files", data=payload, headers={"Content-Type": payload.content_type})
        body = {"input_file_id": uploaded["id"], "endpoint": self.url_path, "completion_window": self.settings.window}
        batch = await self._json("POST", "/batches", json=body)
        batch_id = str(batch["id"])
        self.created += 1
        self._append(
            {
                "batch_id": batch_id,
                "input_file_id": uploaded["id"],
                "input_sha256": hashlib.sha256(data).hexdigest(),
                "items": items,
                "created_at": time.time(),
            }
        )  # before polling: a run killed from here on resumes this batch
        return batch_id

    async def _poll(self, batch_id: str) -> dict[str, Any]:
        auth = {k: v for k, v in self.backend.headers.items() if k.lower() == "authorization"}
        IN_FLIGHT[batch_id] = (self.backend.urls[0], self.base, auth)
        while True:  # interrupted, the batch stays in IN_FLIGHT for the one-line message (`interrupted`)
            batch = await self._json("GET", f"/batches/{batch_id}")
            counts = batch.get("request_counts") or {}
            print(
                f"batch {batch_id}: {batch.get('status')}, {counts.get('completed', 0)} of "
                f"{counts.get('total', '?')} done, {counts.get('failed', 0)} failed",
                file=sys.stderr,
                flush=True,
            )
            if batch.get("status") in TERMINAL:
                IN_FLIGHT.pop(batch_id, None)
                return batch
            await asyncio.sleep(self.settings.poll_s)

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

    async def _one(self, chunk: list[tuple[Request, bytes]]) -> list[Generation]:
        """The generations of one batch's requests: replies, or errors saying why a line has none."""
        digests = {custom_id(r): hashlib.sha256(line).hexdigest() for r, line in chunk}
        batch_id = self._stored_batch(digests)
        if batch_id is None:
            items = {
                custom_id(r): {"sample_id": r.sample.id, "n_index": r.n_index, "body_sha256": digests[custom_id(r)]}
                for r, _ in chunk
            }
            batch_id = await self._submit(b"".join(line for _, line in chunk), items)
        else:
            print(f"batch {batch_id}: resuming the batch an earlier run created", file=sys.stderr, flush=True)
        batch = await self._poll(batch_id)
        lines: dict[str, dict[str, Any]] = {}
        for key in ("error_file_id", "output_file_id"):  # a line in the output wins over the error file
            if batch.get(key):
                lines.update({line["custom_id"]: line for line in await self._content(str(batch[key]))})
        status = batch.get("status")
        if status != "completed":
            self._append({"batch_id": batch_id, "given_up": status})  # its requests go into a new batch
        generations = [self._generation(r, lines.get(custom_id(r)), batch_id, str(status)) for r, _ in chunk]
        failed = [custom_id(g) for g in generations if not g.ok]
        if failed and status == "completed":
            self._append({"batch_id": batch_id, "failed": failed})
        return generations

    def _generation(self, request: Request, line: dict[str, Any] | None, batch_id: str, status: str) -> Generation:
        def base(**fields: Any) -> Generation:
            return Generation(request.sample.id, request.n_index, self.backend.model, **fields)

        if line is None:
            return base(error=f"batch {batch_id} {status}: no reply for this request")
        found = line.get("response")
        response: dict[str, Any] = found if isinstance(found, dict) else {}
        code = response.get("status_code")
        if code != 200 or line.get("error"):
            error = line.get("error") or response.get("body")
            shown = self.backend._scrub(json.dumps(error, ensure_ascii=False)[:300])
            return base(error=f"batch {batch_id}: line failed (status {code}): {shown}")
        try:
            text, reasoning, finish, usage = parse_reply(response["body"], self.backend.endpoint)
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
                for generation in await self._one(chunk):
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
            request = urllib.request.Request(
                with_path(base, f"/batches/{batch_id}/cancel"), b"{}", headers, method="POST"
            )
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
