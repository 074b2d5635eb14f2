"""What an OpenAI-compatible server sends back is hostile input: bounded reading, total parsing, no secrets.

- `read_body` reads at most ``cap`` decoded bytes; gzip/deflate bodies are inflated here, chunk by chunk
  under the same cap (a 1 MB gzip body that inflates to 1 GiB stops at the cap, never in memory whole);
  `body_lines` streams a body line by line under the same caps (a Batch API file is never held whole).
- `parse_reply` turns any JSON value into (content, reasoning, finish reason, usage) or a `RetryableError`:
  non-numeric or absurd token counts read as 0, lone surrogates become U+FFFD (they cannot be stored as
  UTF-8), ``content: null`` is an error, not an empty answer.
- `UrlCredentials` takes user:password and secret query values (``api-key=``, ``token=``) out of a base URL
  so they are sent but never written or printed.
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import aiohttp

from ..records import Usage
from .endpoints import RetryableError

_SURROGATE = re.compile("[\ud800-\udfff]")
_SECRET_QUERY = re.compile(r"key|token|secret|password|passwd|sig|auth", re.IGNORECASE)
MAX_TOKEN_COUNT = 1 << 40
READ_CHUNK = 1 << 16
REDACTED = "REDACTED"


def clean_text(text: str) -> str:
    """Lone surrogates (``"\\ud800"`` in JSON) replaced by U+FFFD: valid JSON, but not encodable text."""
    if text.isascii():  # the common case, checked at memory speed (a 20 KB reply: ~1 µs, the regex ~100 µs)
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


def token_count(value: Any) -> int:
    """A usage count as an int; anything that is not a plausible count (``"lots"``, a list, 1e400) is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if 0 <= value <= MAX_TOKEN_COUNT else 0
    if isinstance(value, float) and math.isfinite(value) and 0 <= value <= MAX_TOKEN_COUNT:
        return int(value)
    return 0


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[" * 100000
        raise RetryableError(f"malformed JSON reply: {raw[:200]!r}") from exc


def parse_reply(data: Any, endpoint: str) -> tuple[str, str | None, str | None, Usage]:
    """(content, server-side reasoning, finish_reason, usage) of one reply; a reply without them is retried."""
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict):
        raise RetryableError(f"reply without choices[0]: {clean_text(str(data)[:200])}")
    reasoning: Any = None
    if endpoint == "chat":
        message = choice.get("message")
        if not isinstance(message, dict):
            raise RetryableError("reply without choices[0].message")
        text = message.get("content")
        # vLLM's reasoning parsers (and DeepSeek) return the thinking apart from the answer
        reasoning = message.get("reasoning_content") or message.get("reasoning")
    else:
        text = choice.get("text")
    reasoning = clean_text(reasoning) if isinstance(reasoning, str) and reasoning else None
    finish = choice.get("finish_reason")
    finish = finish if isinstance(finish, str) else None
    counts = data.get("usage")
    counts = counts if isinstance(counts, dict) else {}
    usage = Usage(token_count(counts.get("prompt_tokens")), token_count(counts.get("completion_tokens")))
    if text is None and reasoning is None:
        raise RetryableError("reply with content null")
    if text is not None and not isinstance(text, str):
        raise RetryableError(f"reply content is a {type(text).__name__}, not text")
    text = clean_text(text or "")
    # An empty reply is the model's answer when the server says it generated and stopped (a sampled
    # end-of-text); without that account it is a server hiccup, worth another try.
    generated = finish in ("stop", "length") and usage.completion_tokens > 0
    if not text.strip() and not reasoning and not generated:
        raise RetryableError("empty content")
    return text, reasoning, finish, usage


class ReplyTooLarge(RetryableError):
    pass


INFLATE_PIECE = 1 << 20
"""The most a compressed chunk is inflated into at once: a 64 KiB chunk of a gzip bomb becomes at most 1 MiB."""


async def decoded_pieces(response: aiohttp.ClientResponse, cap: int) -> AsyncIterator[bytes]:
    """The body, decoded, in pieces of at most `INFLATE_PIECE` bytes; `ReplyTooLarge` once it passes `cap` bytes
    (the session must not auto-decompress: gzip and deflate are inflated here, bounded)."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    inflate = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    elif encoding not in ("", "identity"):
        raise RetryableError(f"reply in an unsupported Content-Encoding {encoding!r}")
    total = 0
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        data, more = chunk, True
        while more:
            if inflate is None:
                piece, more = data, False
            else:
                limit = min(INFLATE_PIECE, cap + 1 - total)  # at least 1: past the cap has raised
                try:
                    piece = inflate.decompress(data, limit)
                except zlib.error as exc:
                    raise RetryableError(f"corrupt {encoding} reply: {exc}") from exc
                data = inflate.unconsumed_tail
                more = bool(data) or len(piece) == limit  # a full piece may leave output pending in zlib
            total += len(piece)
            if total > cap:
                raise ReplyTooLarge(f"reply larger than {cap} bytes (--max-reply-bytes)")
            if piece:
                yield piece


async def read_body(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, decoded, or `ReplyTooLarge` once it passes `cap` bytes (`decoded_pieces`)."""
    out = bytearray()
    async for piece in decoded_pieces(response, cap):
        out.extend(piece)
    return bytes(out)


LINE_HEAD = 4096
"""What is kept of a line longer than its cap: enough to find its ``custom_id``, never the line."""


async def body_lines(
    response: aiohttp.ClientResponse, cap: int, line_cap: int, seen: Callable[[bytes], None] | None = None
) -> AsyncIterator[tuple[bytes, bool]]:
    """The body's lines, streamed (the body is never held whole): (line without its newline, True), or for a
    line longer than `line_cap` (its first `LINE_HEAD` bytes, False). `ReplyTooLarge` once the body passes
    `cap` decoded bytes; `seen` is given every decoded piece (to hash the body as it streams)."""
    line = bytearray()
    head: bytes | None = None  # set while the current line is past its cap: the rest of it is skipped
    async for piece in decoded_pieces(response, cap):
        if seen is not None:
            seen(piece)
        start = 0
        while start < len(piece):
            end = piece.find(b"\n", start)
            stop = len(piece) if end < 0 else end
            if head is None:
                line += piece[start:stop]
                if len(line) > line_cap:
                    head = bytes(line[:LINE_HEAD])
                    line.clear()
            if end < 0:
                break
            yield (bytes(line), True) if head is None else (head, False)
            line.clear()
            head = None
            start = end + 1
    if head is not None:
        yield head, False
    elif line:
        yield bytes(line), True


@dataclass(frozen=True)
class UrlCredentials:
    """A base URL split into what is sent and what may be shown.

    ``http://user:secret@host/v1?api-key=K`` is requested as ``http://host/v1?api-key=K`` with HTTP Basic
    auth for user:secret (unless an API key or an ``Authorization`` header is given: those win, and the
    URL's user:password is not sent), and shown everywhere as ``http://REDACTED@host/v1?api-key=REDACTED``.
    """

    request_url: str
    shown: str
    basic_auth: str | None = None
    secrets: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, url: str) -> UrlCredentials:
        parts = urlsplit(url)
        secrets: list[str] = []
        netloc = parts.netloc
        shown_netloc = netloc
        basic = None
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            netloc, shown_netloc = host, f"{REDACTED}@{host}"
            secrets.append(userinfo)
            secrets += [s for s in userinfo.split(":", 1) if len(s) >= 4]
            basic = "Basic " + base64.b64encode(unquote(userinfo).encode()).decode()
        query = parse_qsl(parts.query, keep_blank_values=True)
        shown_query = []
        for key, value in query:
            if _SECRET_QUERY.search(key) and value:
                secrets.append(value)
                shown_query.append((key, REDACTED))
            else:
                shown_query.append((key, value))
        request = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        shown = urlunsplit((parts.scheme, shown_netloc, parts.path, urlencode(shown_query), ""))
        return cls(request, shown, basic, tuple(sorted(set(secrets), key=len, reverse=True)))


def with_path(base: str, path: str) -> str:
    """`base` with `path` appended to its path, its query string kept after it: ``http://h/v1?api-key=X`` and
    ``/chat/completions`` give ``http://h/v1/chat/completions?api-key=X``."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, parts.fragment))


MAX_MODEL_IDS = 32


def served_model_ids(body: bytes) -> list[str]:
    """The model ids of a ``/models`` reply (OpenAI's ``{"data": [{"id": ...}]}``), at most 32 of at most 200
    characters each; anything else reads as none."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    ids = [e.get("id") for e in entries[:MAX_MODEL_IDS] if isinstance(e, dict)]
    return [clean_text(i)[:200] for i in ids if isinstance(i, str)]


MIN_SECRET_CHARS = 4
"""Shorter header values (``X-Debug: 1``) are not secrets worth redacting: replacing them would mangle text."""


def secrets_of(credentials: list[UrlCredentials], api_key: str | None, header_values: list[str]) -> tuple[str, ...]:
    """Every credential a backend sends, in the forms a server may echo (as given, URL-encoded, the Basic
    auth value), longest first so a longer secret is replaced before a part of it."""
    found: set[str] = set()
    for credential in credentials:
        found.update(credential.secrets)
        if credential.basic_auth:
            found.add(credential.basic_auth.removeprefix("Basic "))
    for value in [api_key or "", *header_values]:
        found.add(value)
        if value.startswith("Bearer "):
            found.add(value.removeprefix("Bearer "))
    found |= {quote(s, safe="") for s in found}
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True))
