"""The judge role at run time: LLM judge graders driven through any backend.

The judge model is an ordinary `Backend` (the judge is a backend in a role, as inspect_ai's model roles are): an
OpenAI model, a vLLM
server or the embedded llama.cpp model, with the same retries, concurrency and usage accounting as the
model under test. On top of that this module adds:

- **cache**: each reply is appended to ``judgments.jsonl`` under a key of judge backend and model,
  prompt-template hash, the rendered messages (question, reference, answer), sampling settings and attempt.
  A resumed run, or ``mue-eval grade RUN_DIR``, reuses every stored reply and never regenerates answers.
- **bounded retries**: an unparseable reply is asked again up to ``parse_retries`` times, then recorded as
  a parse failure (score None, counted), never as a silent 1 or 0. Retries sample at
  ``retry_temperature`` with a new seed, because a greedy judge would repeat the same text.
- **cascade** (``--judge-cascade``, opt-in): on math items the answer grader settles the clear cases and
  only the rest reach the judge; see `_cascade`.
- **budget**: tokens and cost are counted per invocation; at the cap, the items not yet judged get an error
  grade (not a score) and the next run, with a larger budget, judges only those.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .backends import Backend, ModelSpec
from .backends.base import generation_stream, stop_sending
from .budget import Budget
from .contracts import JudgeGrader
from .records import Generation, GenerationParams, Grade, JudgeCall, Request, Sample
from .store import RunStore

Item = tuple[Sample, Generation]
# Verdicts the cascade accepts as settled: an exact match of any kind, or a definite mismatch between two
# numbers or two choice letters. A mismatch of free text against a worked-solution reference is left to
# the judge, since extraction from prose references is where rule graders err (docs/design-notes.md §4).
_CLEAR_WRONG = frozenset({"numeric", "choice letter"})
_UNSETTLED = frozenset({"no answer found", "timeout", "memory limit", "parse failure"})
CURATED_REFERENCE_CHARS = 40


@dataclass(frozen=True)
class JudgeSettings:
    """How the judge model is run: ``--judge*`` options.

    Attributes:
        spec: the judge model and its backend options.
        max_tokens: reply limit; upstream sets none, so keep it generous.
        parse_retries: extra attempts for an unparseable reply.
        retry_temperature: sampling temperature of those extra attempts (the first is greedy, as upstream).
        cascade: let the answer grader settle clear math items.
        prices: USD per million (prompt, completion) tokens, for cost reports and ``budget_usd``.
        budget_usd / budget_tokens: stop sending judge calls once this invocation has spent this much.
    """

    spec: ModelSpec
    max_tokens: int = 2048
    parse_retries: int = 2
    retry_temperature: float = 0.5
    cascade: bool = False
    prices: tuple[float, float] | None = None
    budget_usd: float | None = None
    budget_tokens: int | None = None
    verifier: JudgeSettings | None = None
    """``--verifier MODEL``: the model behind the ``verifier`` grader, when it is not the judge."""

    def params(self, attempt: int) -> GenerationParams:
        """Temperature 0 and a single user turn, as upstream judges (ChatGLM-Math and AlignBench judge.py;
        docs/design-notes.md §1-2)."""
        temperature = 0.0 if attempt == 0 else self.retry_temperature
        return GenerationParams(temperature=temperature, max_tokens=self.max_tokens)


@dataclass
class JudgeUsage:
    """What judging one run cost and how it went; written into the run summary."""

    items: int = 0
    calls: int = 0
    cached: int = 0
    retries: int = 0
    cascade_decided: int = 0
    parse_failures: int = 0
    call_errors: int = 0
    budget_skipped: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def plus(self, other: JudgeUsage) -> JudgeUsage:
        """Two usages of one judge added up (a run judged in chunks)."""
        names = [f.name for f in dataclasses.fields(self) if f.name != "cost_usd"]
        total = {name: getattr(self, name) + getattr(other, name) for name in names}
        costs = [c for c in (self.cost_usd, other.cost_usd) if c is not None]
        return JudgeUsage(**total, cost_usd=sum(costs) if costs else None)


class JudgeRole:
    """One judge backend shared by every judged task of an invocation; the budget spans them all."""

    def __init__(self, settings: JudgeSettings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self.budget = Budget("judge", settings.prices, settings.budget_usd, settings.budget_tokens)
        self.verifier: JudgeRole | None = None
        """The role of ``--verifier MODEL`` when it is another model than ``--judge``'s."""

    def for_grader(self, name: str) -> JudgeRole:
        return self.verifier if name == "verifier" and self.verifier is not None else self

    def identity(self, judge: JudgeGrader) -> str:
        """Which judge made a grade: backend, model and prompt. A grade from another judge is redone."""
        spec = self.settings.spec
        return f"{spec.backend}:{spec.model}:{judge.prompt_sha256[:16]}"

    def describe(self, judge: JudgeGrader) -> dict[str, Any]:
        """The manifest entry: enough to say which judge produced the scores (never secrets)."""
        spec = self.settings.spec
        return {
            "judge_model": spec.model,
            "judge_backend": spec.backend,
            "judge_config": self.backend.describe(),
            "style": judge.style,
            "prompt_sha256": judge.prompt_sha256,
            "params": self.settings.params(0).to_json(),
            "parse_retries": self.settings.parse_retries,
            "retry_temperature": self.settings.retry_temperature,
            "cascade": self.settings.cascade,
        }

    def is_current(self, judge: JudgeGrader, grade: Grade | None) -> bool:
        """A stored grade stands if this judge made it and it is final: a score, or a parse failure after
        the retries. Failed calls and budget stops are redone; cascade grades only stand under a cascade."""
        if grade is None or grade.details.get("judge_id") != self.identity(judge):
            return False
        if grade.details.get("cascade") and not self.settings.cascade:
            return False
        return grade.error is None or bool(grade.details.get("parse_failure"))

    def _key(
        self, judge: JudgeGrader, messages: Sequence[dict[str, str]], params: GenerationParams, attempt: int
    ) -> str:
        spec = self.settings.spec
        identity = [spec.backend, spec.model, judge.prompt_sha256, list(messages), params.to_json(), attempt]
        return hashlib.sha256(json.dumps(identity, ensure_ascii=False, sort_keys=True).encode()).hexdigest()

    def _charge(self, generation: Generation, usage: JudgeUsage) -> None:
        usage.prompt_tokens += generation.usage.prompt_tokens
        usage.completion_tokens += generation.usage.completion_tokens
        cost = self.budget.charge(generation.usage)
        if cost is not None:
            usage.cost_usd = (usage.cost_usd or 0.0) + cost

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

    def _cascade(self, judge: JudgeGrader, items: list[Item]) -> tuple[list[Grade], list[Item]]:
        """Settle clear math items with the answer grader; return (their grades, the items left for the judge).

        Clear means: the response states its final answer explicitly, the reference is a curated answer
        (boxed, or at most 40 characters), and the verdict is a match, or a mismatch of two numbers or two
        choice letters. Worked-solution references in prose (MathUserEval, AlignBench) are left to the
        judge: on the 567 GPT-4-1106 MathUserEval answers, reading their answer out of the prose settled
        21 items as wrong, most of them against an intermediate value of the reference. The
        settled score is the judge's own band for that outcome (the judge's ``cascade_scores``), so avg-score is
        an approximation while hard-split (>= 7) keeps its meaning.
        """
        from .graders.answer import grade_many
        from .graders.extract import last_boxed, states_answer

        candidates = [
            (s, g)
            for s, g in items
            if s.metadata.get("math", True)
            and states_answer(g.text)
            and (len(s.reference.strip()) <= CURATED_REFERENCE_CHARS or last_boxed(s.reference) is not None)
        ]
        verdicts = grade_many([(s.reference, g.text) for s, g in candidates]) if candidates else []
        settled: list[Grade] = []
        keys: set[tuple[str, int]] = set()
        for item, verdict in zip(candidates, verdicts, strict=True):
            if verdict.reason in _UNSETTLED or not (verdict.correct or verdict.reason in _CLEAR_WRONG):
                continue
            score = judge.cascade_scores[0] if verdict.correct else judge.cascade_scores[1]
            settled.append(
                self._grade(judge, item, score, cascade=True, rule=verdict.reason, extracted=verdict.extracted)
            )
            keys.add((item[0].id, item[1].n_index))
        return settled, [(s, g) for s, g in items if (s.id, g.n_index) not in keys]

    async def grade(
        self, judge: JudgeGrader, items: list[Item], store: RunStore, on_grade: Callable[[Grade], None]
    ) -> JudgeUsage:
        """Judge `items`, calling `on_grade` for each final grade as it is decided."""
        usage = JudgeUsage(items=len(items))
        pending = list(items)
        settle = getattr(judge, "settle", None)  # a verifier: what the rules already settled is not sent
        if settle is not None and pending:
            still = []
            for item, outcome in zip(pending, settle(pending), strict=True):
                if outcome is None:
                    still.append(item)
                    continue
                usage.cascade_decided += 1
                on_grade(self._grade(judge, item, outcome[0], **outcome[1]))
            pending = still
        if self.settings.cascade:
            settled, pending = self._cascade(judge, pending)
            usage.cascade_decided = len(settled)
            for grade in settled:
                on_grade(grade)
        cache = store.judge_calls()
        first_upstream: dict[tuple[str, int], float] = {}
        failures: dict[tuple[str, int], list[str]] = {}
        for attempt in range(self.settings.parse_retries + 1):
            if not pending:
                break
            params = self.settings.params(attempt)
            keys: dict[tuple[str, int], str] = {}
            replies: dict[str, Generation] = {}  # by key: identical prompts (the same answer twice) share one call
            to_send: dict[str, Item] = {}
            requests: list[Request] = []
            for sample, generation in pending:
                messages = judge.messages(sample, generation)
                key = keys[(sample.id, generation.n_index)] = self._key(judge, messages, params, attempt)
                stored = cache.get(key)
                if stored is not None and stored.generation.ok:
                    replies[key] = stored.generation
                    usage.cached += 1
                elif key not in to_send:
                    to_send[key] = (sample, generation)
                    requests.append(Request(Sample(f"judge/{judge.name}", key, messages, ""), attempt))
            stopping = False
            if to_send and not self.budget.exhausted:
                async with generation_stream(self.backend, requests, params) as stream:
                    async for reply in stream:
                        sample, generation = to_send[reply.sample_id]
                        store.add_judge_call(
                            JudgeCall(reply.sample_id, judge.name, sample.id, generation.n_index, attempt, reply)
                        )
                        usage.calls += 1
                        self._charge(reply, usage)
                        replies[reply.sample_id] = reply
                        if self.budget.exhausted and not stopping:
                            stopping = True
                            if not stop_sending(self.backend):
                                break  # in-flight calls are cancelled when the stream closes
            retry: list[Item] = []
            for item in pending:
                slot = (item[0].id, item[1].n_index)
                key = keys[slot]
                if key not in replies:
                    usage.budget_skipped += 1
                    on_grade(self._grade(judge, item, None, error=self.budget.message()))
                    continue
                reply = replies[key]
                if not reply.ok:
                    usage.call_errors += 1
                    on_grade(self._grade(judge, item, None, error=f"judge call failed: {reply.error}", key=key))
                    continue
                judgment = judge.parse(reply.text, item[1].text)
                first_upstream.setdefault(slot, judge.upstream(reply.text))
                common = {"key": key, "attempts": attempt + 1, "upstream_score": first_upstream[slot]}
                if judgment.score is not None:
                    on_grade(
                        self._grade(
                            judge,
                            item,
                            judgment.score,
                            dimensions=judgment.dimensions,
                            earlier_failures=failures.get(slot, []),
                            **common,
                        )
                    )
                    continue
                failures.setdefault(slot, []).append(judgment.error or "unparseable")
                if attempt < self.settings.parse_retries:
                    usage.retries += 1
                    retry.append(item)
                else:
                    usage.parse_failures += 1
                    reasons = "; ".join(failures[slot])
                    on_grade(
                        self._grade(
                            judge, item, None, error=f"unparseable judgment ({reasons})", parse_failure=True, **common
                        )
                    )
            pending = retry
        return usage


def judge_view(grades: Sequence[Grade], judge_names: Sequence[str], parity: str) -> list[Grade]:
    """Grades as the aggregation should see them.

    ``parity="upstream"`` reproduces upstream arithmetic for judge grades: the first reply's upstream
    parse, -1 included when upstream's regexes miss (AlignBench judge.py; docs/design-notes.md §2), and parse
    failures count as -1
    instead of being left out. Failed calls and budget stops stay out either way: upstream aborts there.
    """
    if parity != "upstream":
        return list(grades)
    out = []
    for grade in grades:
        upstream = grade.details.get("upstream_score")
        if grade.grader in judge_names and upstream is not None:
            grade = dataclasses.replace(grade, score=float(upstream), error=None)
        out.append(grade)
    return out
