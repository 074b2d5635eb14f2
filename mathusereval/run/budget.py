"""Token and USD accounting with an optional cap, shared by generation (``--max-cost``,
``--max-tokens-total``) and judging (``--judge-budget``, ``--judge-token-budget``).

A budget spans one invocation (all its tasks). A request is sent only while what was spent plus what the
requests in flight may still cost stays under the cap: each request reserves its worst case (its prompt's
UTF-8 bytes, an upper bound on its tokens for byte-level tokenizers, plus ``max_tokens``) until its reply
says what it really cost. So the spend never passes the cap by more than one request's worth, and the
figure printed and stored is what the replies reported. What was not sent is left for the next run.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from ..errors import ConfigError
from ..records import Generation, GenerationParams, Request, Usage


def parse_prices(text: str | None, flag: str) -> tuple[float, float] | None:
    """``IN,OUT`` in USD per million prompt and completion tokens, e.g. ``2.5,10``."""
    if text is None:
        return None
    try:
        prices = tuple(float(x) for x in text.split(","))
    except ValueError:
        prices = ()
    if len(prices) != 2 or not all(math.isfinite(p) and p >= 0 for p in prices):
        raise ConfigError(f"{flag} wants IN,OUT in USD per million tokens, e.g. 10,30; got {text!r}")
    return prices[0], prices[1]


@dataclass
class Spend:
    """What was spent and is reserved under one cap; shared by every `Budget` priced against that cap."""

    tokens: int = 0
    usd: float = 0.0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0
    refused: int = 0
    """Requests not sent because their worst case would have passed the cap."""


@dataclass
class Budget:
    """What has been spent, and whether a cap is reached. `what` names the spender in messages.

    Several budgets may share one `Spend` (`priced`): the grading roles each price their calls at their own
    rates, and all of them count against the one ``--judge-budget``."""

    what: str
    prices: tuple[float, float] | None = None
    max_usd: float | None = None
    max_tokens: int | None = None
    discount: float = 1.0
    """What a call costs as a share of the list price (``--batch-discount`` for batch calls, else 1)."""
    spend: Spend = field(default_factory=Spend)

    def __post_init__(self) -> None:
        if self.max_usd is not None and self.prices is None:
            raise ConfigError(f"a USD cap on {self.what} needs prices: pass IN,OUT per million tokens")

    def priced(self, prices: tuple[float, float] | None, discount: float = 1.0) -> Budget:
        """A budget under the same cap and spend, pricing its calls at `prices` (times `discount`)."""
        return Budget(self.what, prices, self.max_usd, self.max_tokens, discount, self.spend)

    @property
    def tokens(self) -> int:
        return self.spend.tokens

    @property
    def usd(self) -> float:
        return self.spend.usd

    @property
    def refused(self) -> int:
        return self.spend.refused

    def list_cost(self, usage: Usage) -> float | None:
        """What `usage` costs at the list prices (direct calls)."""
        if self.prices is None:
            return None
        return (usage.prompt_tokens * self.prices[0] + usage.completion_tokens * self.prices[1]) / 1e6

    def cost(self, usage: Usage) -> float | None:
        """What `usage` costs as sent: the list price times `discount`."""
        listed = self.list_cost(usage)
        return None if listed is None else listed * self.discount

    @property
    def capped(self) -> bool:
        return self.max_tokens is not None or self.max_usd is not None

    def fits(self) -> bool:
        """Whether the spend and the reservations are still under the cap (one more request may go)."""
        s = self.spend
        return not (
            (self.max_tokens is not None and s.tokens + s.reserved_tokens >= self.max_tokens)
            or (self.max_usd is not None and s.usd + s.reserved_usd >= self.max_usd)
        )

    def reserve(self, worst: Usage) -> None:
        self.spend.reserved_tokens += worst.total_tokens
        self.spend.reserved_usd += self.cost(worst) or 0.0

    def charge(self, usage: Usage, reserved: Usage | None = None) -> float | None:
        """Count one reply (releasing what its request reserved); returns its cost in USD when prices are known."""
        s = self.spend
        if reserved is not None:
            s.reserved_tokens = max(0, s.reserved_tokens - reserved.total_tokens)
            s.reserved_usd = max(0.0, s.reserved_usd - (self.cost(reserved) or 0.0))
        s.tokens += usage.total_tokens
        cost = self.cost(usage)
        if cost is not None:
            s.usd += cost
        return cost

    @property
    def exhausted(self) -> bool:
        """Spent up to the cap, or refusing requests because their worst case would pass it."""
        return bool(self.refused) or (
            (self.max_tokens is not None and self.tokens >= self.max_tokens)
            or (self.max_usd is not None and self.usd >= self.max_usd)
        )

    def message(self) -> str:
        """What was really spent (the replies' usage) against the cap."""
        if self.max_usd is not None:
            return f"{self.what} budget exhausted: spent ${self.usd:.4f} of ${self.max_usd:g} ({self.tokens} tokens)"
        return f"{self.what} budget exhausted: spent {self.tokens} of {self.max_tokens} tokens"


def worst_case(request: Request, params: GenerationParams) -> Usage:
    """What a request may cost at most: its prompt's UTF-8 bytes (each token of a byte-level tokenizer is at
    least one byte) plus a few tokens of chat template per turn, and ``max_tokens``."""
    prompt = sum(len(m.get("content", "").encode()) + 8 for m in request.sample.messages)
    return Usage(prompt, params.max_tokens)


class Admitted(Sequence[Request]):
    """`requests` as a backend consumes them, under the budget.

    Iterating hands out each request only if the budget still fits (its worst case is then reserved); the
    first that does not ends the iteration. A backend with many requests in flight (the OpenAI-compatible
    one) instead awaits `admit` per request, which waits for replies in flight to settle their reservations
    before it refuses, and iterates `ungated`."""

    def __init__(self, requests: Sequence[Request], params: GenerationParams, budget: Budget | None) -> None:
        self.requests, self.params, self.budget = requests, params, budget
        self.reserved: dict[tuple[str, int], Usage] = {}
        self._settled: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self.requests)

    @overload
    def __getitem__(self, index: int) -> Request: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Request]: ...
    def __getitem__(self, index: int | slice) -> Request | Sequence[Request]:
        return self.requests[index]

    def _take(self, request: Request) -> None:
        assert self.budget is not None
        worst = worst_case(request, self.params)
        self.budget.reserve(worst)
        self.reserved[(request.sample.id, request.n_index)] = worst

    def __iter__(self) -> Iterator[Request]:
        for request in self.requests:
            if self.budget is not None and self.budget.capped:
                if not self.budget.fits():
                    self.budget.spend.refused += 1
                    return
                self._take(request)
            yield request

    def ungated(self) -> Iterator[Request]:
        return iter(self.requests)

    async def admit(self, request: Request) -> bool:
        """True once `request` may be sent (its worst case reserved); False when the budget cannot take it
        even after every reply in flight has settled."""
        if self.budget is None or not self.budget.capped:
            return True
        while not self.budget.fits():
            if not self.reserved:
                self.budget.spend.refused += 1
                return False
            self._settled = self._settled or asyncio.Event()
            self._settled.clear()
            await self._settled.wait()
        self._take(request)
        return True

    def charge(self, generation: Generation) -> float | None:
        """Count a reply against the budget, releasing its request's reservation."""
        if self.budget is None:
            return None
        reserved = self.reserved.pop((generation.sample_id, generation.n_index), None)
        cost = self.budget.charge(generation.usage, reserved)
        if self._settled is not None:
            self._settled.set()
        return cost
