"""The judge roles at run time: LLM graders driven through any backend.

The judge model is an ordinary `Backend` in a role (as inspect_ai's model roles are): an OpenAI model, a
vLLM server or the embedded llama.cpp model, with the same retries, concurrency and usage accounting as the
model under test. Each LLM grader names its role (``judge`` for ``--judge MODEL``, ``verifier`` for
``--verifier MODEL``; a role without a model of its own falls back to the judge's). On top of that:

- **settle first**: before anything is sent, the grader's own ``settle`` step may decide items without a
  call (the verifier's rule verdicts; with ``--judge-cascade``, the clear math items of an LLM judge,
  `mathusereval.graders.judge`); each such grade records what decided it.
- **cache**: each reply is appended to ``judgments.jsonl`` under a key of judge backend and model,
  prompt-template hash, the rendered messages (question, reference, answer), sampling settings and attempt.
  A resumed run, or ``mue-eval grade RUN_DIR``, reuses every stored reply and never regenerates answers.
- **bounded retries**: an unparseable reply is asked again up to ``parse_retries`` times, then recorded as
  a parse failure (score None, counted), never as a silent 1 or 0. Retries sample at
  ``retry_temperature`` with a new seed, because a greedy judge would repeat the same text.
- **budget**: tokens and cost are counted per invocation; at the cap, the items not yet judged get an error
  grade (not a score) and the next run, with a larger budget, judges only those.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends import Backend, ModelSpec
from ..plugins.contracts import Item, JudgeGrader
from ..records import Generation, GenerationParams, Grade, JudgeUsage, Settled
from .budget import Budget
from .roles import JUDGE_ROLE, RoleOptions

Slot = tuple[str, int]


@dataclass(frozen=True)
class JudgeSettings:
    """How one role's model is run (`mathusereval.run.role_settings` builds it from the role's record).

    Attributes:
        spec: the judge model and its backend options.
        max_tokens: reply limit; upstream sets none, so keep it generous.
        parse_retries: extra attempts for an unparseable reply.
        retry_temperature: sampling temperature of those extra attempts (the first is greedy, as upstream).
        cascade: let the judge's settle step decide clear math items (``--judge-cascade``).
        prices: USD per million (prompt, completion) tokens, for cost reports and the grading budget.
        options: the role's record as the user gave it (the manifest shows what differs from the defaults).
        budget_usd / budget_tokens: the grading cap (``--judge-budget``, ``--judge-token-budget``), the same
            on every role: the roles of an invocation spend against it together (`shared_budgets`).
    """

    spec: ModelSpec
    max_tokens: int = 2048
    parse_retries: int = 2
    retry_temperature: float = 0.5
    cascade: bool = False
    prices: tuple[float, float] | None = None
    options: RoleOptions | None = None
    budget_usd: float | None = None
    budget_tokens: int | None = None

    def params(self, attempt: int) -> GenerationParams:
        """Temperature 0 and a single user turn, as upstream judges (THUDM/ChatGLM-Math and THUDM/AlignBench
        judge.py); a retry samples at `retry_temperature`."""
        temperature = 0.0 if attempt == 0 else self.retry_temperature
        return GenerationParams(temperature=temperature, max_tokens=self.max_tokens)


@dataclass
class _Tally:
    """Counts of one grading call, mutable while it runs; `usage` freezes them."""

    counts: Counter[str] = field(default_factory=Counter)
    cost_usd: float | None = None
    direct_cost_usd: float | None = None

    def usage(self) -> JudgeUsage:
        return JudgeUsage(**self.counts, cost_usd=self.cost_usd, direct_cost_usd=self.direct_cost_usd)


@dataclass
class _Attempts:
    """Per item across attempts: the first reply's upstream score and why earlier replies failed."""

    first_upstream: dict[Slot, float] = field(default_factory=dict)
    failures: dict[Slot, list[str]] = field(default_factory=dict)


class JudgeRole:
    """One model in one role, shared by every judged task of an invocation. `budget` prices its calls and
    counts them against the invocation's grading cap, shared with the other roles
    (`mathusereval.run.role_settings.grading_budget`); without one, calls are only counted."""

    def __init__(self, settings: JudgeSettings, backend: Backend, budget: Budget | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self.name = settings.options.role if settings.options else JUDGE_ROLE
        self.budget = budget or Budget(self.name, settings.prices)

    def identity(self, judge: JudgeGrader) -> str:
        """Which judge made a grade: backend, model and prompt. A grade from another judge is redone."""
        spec = self.settings.spec
        return f"{spec.backend}:{spec.model}:{judge.prompt_sha256[:16]}"

    def describe(self, judge: JudgeGrader) -> dict[str, Any]:
        """The manifest entry: enough to say which judge produced the scores (never secrets)."""
        spec = self.settings.spec
        return {
            "role": judge.role,
            "judge_model": spec.model,
            "judge_backend": spec.backend,
            "judge_config": self.backend.describe(),
            "style": judge.style,
            "prompt_sha256": judge.prompt_sha256,
            "params": self.settings.params(0).to_json(),
            "parse_retries": self.settings.parse_retries,
            "retry_temperature": self.settings.retry_temperature,
            "cascade": self.settings.cascade,
            "options": self.settings.options.given() if self.settings.options else {},
        }

    def is_current(self, judge: JudgeGrader, grade: Grade | None) -> bool:
        """A stored grade stands if this judge made it and it is final: a score, or a parse failure after
        the retries. Failed calls and budget stops are redone; cascade grades only stand under a cascade."""
        if grade is None or grade.details.get("judge_id") != self.identity(judge):
            return False
        if grade.details.get("cascade") and not self.settings.cascade:
            return False
        return grade.error is None or bool(grade.details.get("parse_failure"))

    def key(
        self, judge: JudgeGrader, messages: Sequence[Mapping[str, str]], params: GenerationParams, attempt: int
    ) -> str:
        spec = self.settings.spec
        identity = [spec.backend, spec.model, judge.prompt_sha256, list(messages), params.to_json(), attempt]
        return hashlib.sha256(json.dumps(identity, ensure_ascii=False, sort_keys=True).encode()).hexdigest()

    def count(self, reply: Generation, tally: _Tally) -> None:
        """Count a reply's tokens and cost into `tally` (the lane charged it against the budget already)."""
        tally.counts["prompt_tokens"] += reply.usage.prompt_tokens
        tally.counts["completion_tokens"] += reply.usage.completion_tokens
        cost = self.budget.cost(reply.usage)
        if cost is not None:
            tally.cost_usd = (tally.cost_usd or 0.0) + cost
            tally.direct_cost_usd = (tally.direct_cost_usd or 0.0) + (self.budget.list_cost(reply.usage) or 0.0)

    def _grade(self, judge: JudgeGrader, item: Item, score: float | None, **details: Any) -> Grade:
        sample, generation = item
        error = details.pop("error", None)
        return Grade(
            sample_id=sample.id,
            n_index=generation.n_index,
            grader=judge.name,
            score=score,
            correct=None if score is None else score >= judge.threshold,
            details={"judge_id": self.identity(judge), "judge_model": self.settings.spec.model, **details},
            error=error,
        )

    def settle_one(self, judge: JudgeGrader, item: Item, tally: _Tally) -> Grade | None:
        """The grade the judge's settle step decides for `item` without a call, or None (ask the model)."""
        decisions: Sequence[Settled | None] = judge.settle([item], self.settings.cascade)
        settled = decisions[0] if decisions else None
        if settled is None:
            return None
        tally.counts["cascade_decided"] += 1
        # a decision that stands only while the cascade is on is marked so (`is_current`)
        marks = {} if settled.standing else {"cascade": True}
        return self._grade(judge, item, settled.score, settled=True, **marks, **settled.details)

    def read(
        self,
        judge: JudgeGrader,
        item: Item,
        attempt: int,
        key: str | None,
        reply: Generation | None,
        state: _Attempts,
        tally: _Tally,
    ) -> Grade | None:
        """The grade one reply decides, or None when the item is to be asked again."""
        if key is None or reply is None:
            tally.counts["budget_skipped"] += 1
            return self._grade(judge, item, None, error=self.budget.message())
        if not reply.ok:
            tally.counts["call_errors"] += 1
            return self._grade(judge, item, None, error=f"judge call failed: {reply.error}", key=key)
        slot = (item[0].id, item[1].n_index)
        judgment = judge.parse(reply.text, item[1].text)
        state.first_upstream.setdefault(slot, judge.upstream(reply.text))
        common = {"key": key, "attempts": attempt + 1, "upstream_score": state.first_upstream[slot]}
        if judgment.score is not None:
            earlier = state.failures.get(slot, [])
            return self._grade(
                judge, item, judgment.score, dimensions=judgment.dimensions, earlier_failures=earlier, **common
            )
        state.failures.setdefault(slot, []).append(judgment.error or "unparseable")
        if attempt < self.settings.parse_retries:
            tally.counts["retries"] += 1
            return None
        tally.counts["parse_failures"] += 1
        reasons = "; ".join(state.failures[slot])
        return self._grade(judge, item, None, error=f"unparseable judgment ({reasons})", parse_failure=True, **common)


def shared_budgets(judges: Mapping[str, JudgeSettings]) -> dict[str, Budget]:
    """One budget per role, all spending against one cap, each pricing calls at its own rates and discount."""
    budgets: dict[str, Budget] = {}
    shared: Budget | None = None
    for name, settings in judges.items():
        batch = getattr(settings.spec.options, "batch", None)  # --{role}-batch: calls at the batch discount
        discount = batch.discount if batch is not None else 1.0
        if shared is None:
            shared = Budget("judge", settings.prices, settings.budget_usd, settings.budget_tokens, discount)
            budgets[name] = shared
        else:
            budgets[name] = shared.priced(settings.prices, discount)
    return budgets


def role_for(roles: Mapping[str, JudgeRole], judge: JudgeGrader) -> JudgeRole | None:
    """The model that plays `judge`: its own role's, else the judge's (`JUDGE_ROLE`)."""
    return roles.get(judge.role) or roles.get(JUDGE_ROLE)
