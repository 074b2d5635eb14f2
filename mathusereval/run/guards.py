"""Run-health guards: stop a run that is going wrong before it spends the whole budget on it.

A reasoning model cut at 2048 tokens scores near zero (evalscope issues #636, #1055); a job relaunched in a
loop against a broken server drains a GPU budget with nothing to show (NVIDIA-NeMo Skills issue #84). Each
guard is a share of the recent answers of one task (``--max-truncated``: cut at ``max_tokens``;
``--max-no-answer``: no final answer found by the rule grader; ``--max-errors``: failed requests;
``--max-judge-unparseable``: judge replies that could not be read), checked on the last `window` answers once
`min_answers` have arrived. A tripped guard stops the invocation with one line naming the guard, the share
seen and the items that tripped it (exit 3); everything stored stays, and the same command with the guard
raised continues (guards are not part of a run's identity).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import MueError

if TYPE_CHECKING:  # the CLI's entry imports this module: nothing heavy at start-up
    from ..records import Generation, Grade

GUARDS = {
    "truncated": ("--max-truncated", "were cut at max_tokens (a larger --max-tokens is another run: add --name)"),
    "no_answer": ("--max-no-answer", "stated no final answer"),
    "errors": ("--max-errors", "failed"),
    "judge_unparseable": ("--max-judge-unparseable", "had judge replies that could not be read"),
}


class GuardTripped(MueError):
    """A run-health guard stopped the invocation (exit 3)."""

    exit_code = 3


@dataclass(frozen=True)
class Guards:
    """The shares of recent answers at which a run stops (None: that guard is off)."""

    truncated: float | None = None
    no_answer: float | None = None
    errors: float | None = None
    judge_unparseable: float | None = None
    min_answers: int = 20
    window: int = 200

    def __post_init__(self) -> None:
        for name, (flag, _) in GUARDS.items():
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise MueError(f"{flag} is a share of answers between 0 and 1, got {value}")
        if self.min_answers < 1 or self.window < self.min_answers:
            raise MueError("--guard-min-answers must be at least 1 and at most the window (200)")

    @property
    def active(self) -> bool:
        return any(getattr(self, name) is not None for name in GUARDS)


class HealthWatch:
    """The guards over one task's answers in this invocation."""

    def __init__(self, guards: Guards, label: str) -> None:
        self.guards, self.label = guards, label
        self.recent = {name: deque[tuple[str, bool]](maxlen=guards.window) for name in GUARDS}

    def answered(self, generation: Generation) -> None:
        key = f"{generation.sample_id}#{generation.n_index}"
        self._see("errors", key, not generation.ok)
        if generation.ok:
            self._see("truncated", key, generation.finish_reason == "length")

    def rule_graded(self, grade: Grade | None, key: str, truncated: bool = False) -> None:
        """The primary rule grade of an answer: no extracted answer is "no answer" (a reply cut at max_tokens
        is the truncation guard's, not this one's)."""
        if grade is not None and "extracted" in grade.details and not truncated:
            self._see("no_answer", key, not grade.details.get("extracted"))

    def judged(self, grade: Grade) -> None:
        self._see("judge_unparseable", f"{grade.sample_id}#{grade.n_index}", bool(grade.details.get("parse_failure")))

    def _see(self, name: str, key: str, bad: bool) -> None:
        limit = getattr(self.guards, name)
        if limit is None:
            return
        seen = self.recent[name]
        seen.append((key, bad))
        bad_keys = [k for k, b in seen if b]
        if len(seen) >= self.guards.min_answers and len(bad_keys) / len(seen) > limit:
            flag, what = GUARDS[name]
            items = ", ".join(bad_keys[:5]) + (" ..." if len(bad_keys) > 5 else "")
            raise GuardTripped(
                f"{self.label}: {flag} {limit:g} tripped: {len(bad_keys)} of the last {len(seen)} answers "
                f"({len(bad_keys) / len(seen):.0%}) {what} (items {items}); what is stored is kept: run the same "
                f"command with {flag} raised to continue"
            )
