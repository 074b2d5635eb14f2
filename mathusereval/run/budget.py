"""Token and USD accounting with an optional cap, shared by generation (``--max-cost``,
``--max-tokens-total``) and judging (``--judge-budget``, ``--judge-token-budget``).

A budget spans one invocation (all its tasks). Reaching the cap stops sending new requests; what was not
sent is left for the next run, which resumes exactly there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..records import Usage


def parse_prices(text: str | None, flag: str) -> tuple[float, float] | None:
    """``IN,OUT`` in USD per million prompt and completion tokens, e.g. ``2.5,10``."""
    if text is None:
        return None
    try:
        prices = tuple(float(x) for x in text.split(","))
    except ValueError:
        prices = ()
    if len(prices) != 2 or min(prices) < 0:
        raise ConfigError(f"{flag} wants IN,OUT in USD per million tokens, e.g. 10,30; got {text!r}")
    return prices[0], prices[1]


@dataclass
class Budget:
    """What has been spent, and whether a cap is reached. `what` names the spender in messages."""

    what: str
    prices: tuple[float, float] | None = None
    max_usd: float | None = None
    max_tokens: int | None = None
    tokens: int = 0
    usd: float = 0.0

    def __post_init__(self) -> None:
        if self.max_usd is not None and self.prices is None:
            raise ConfigError(f"a USD cap on {self.what} needs prices: pass IN,OUT per million tokens")

    def cost(self, usage: Usage) -> float | None:
        if self.prices is None:
            return None
        return (usage.prompt_tokens * self.prices[0] + usage.completion_tokens * self.prices[1]) / 1e6

    def charge(self, usage: Usage) -> float | None:
        """Count one reply; returns its cost in USD when prices are known."""
        self.tokens += usage.total_tokens
        cost = self.cost(usage)
        if cost is not None:
            self.usd += cost
        return cost

    @property
    def exhausted(self) -> bool:
        return (self.max_tokens is not None and self.tokens >= self.max_tokens) or (
            self.max_usd is not None and self.usd >= self.max_usd
        )

    def message(self) -> str:
        if self.max_usd is not None and self.usd >= self.max_usd:
            return f"{self.what} budget exhausted: spent ${self.usd:.4f} of ${self.max_usd:g}"
        return f"{self.what} budget exhausted: spent {self.tokens} of {self.max_tokens} tokens"
