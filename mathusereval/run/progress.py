"""Progress on stderr: rich bars on a terminal, plain lines in logs (Slurm, ``nohup``, CI).

When stderr is not a terminal, each bar prints one line every 30 s or every 5 % of its total, whichever
comes first: ``mue-eval: progress: model/gsm8k generate 240/1319 (18%), 4.1/s, ETA 4m23s``. Rates count
only this invocation's work since the bar began (resumed items are not in the total), names are never cut.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TextIO

LOG_EVERY_S = 30.0
LOG_EVERY_SHARE = 0.05


def _rich_progress() -> Any:
    """Build the rich bars; imported lazily so that ``--help`` stays fast."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f}/s" if speed else "  -/s", style="cyan")

    return RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@dataclass
class _LogBar:
    """One bar as plain log lines."""

    name: str
    total: int
    stream: TextIO
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    last_line: float = field(default_factory=time.monotonic)
    last_share: float = 0.0

    def advance(self, amount: int) -> None:
        self.done += amount
        now = time.monotonic()
        share = self.done / self.total if self.total else 1.0
        if self.done >= self.total or now - self.last_line >= LOG_EVERY_S or share - self.last_share >= LOG_EVERY_SHARE:
            self.last_line, self.last_share = now, share
            self.stream.write(f"mue-eval: progress: {self.line(now)}\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        left = "done" if self.done >= self.total else f"ETA {_duration(eta)}" if eta is not None else "ETA -"
        return f"{self.name} {self.done}/{self.total}{share}, {rate:.2f}/s, {left}"


class Progress:
    """Named bars, or nothing at all when disabled (``--quiet``). Bars may be advanced from the rule-grading
    worker thread as well as the event loop."""

    def __init__(self, enabled: bool, label: str, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.label = label
        self.stream = stream or sys.stderr
        self._bars: Any = None
        self._ids: dict[str, Any] = {}
        self._logs: dict[str, _LogBar] = {}
        self._lock = threading.Lock()
        self.terminal = self.stream.isatty()

    def __enter__(self) -> Progress:
        if self.enabled and self.terminal:
            self._bars = _rich_progress()
            self._bars.__enter__()
        return self

    def add(self, name: str, total: int) -> None:
        """A bar `name` of `total` steps (a bar of 0 may `grow`: a judge's work arrives with the answers)."""
        shown = f"{self.label} {name}".strip()
        if self._bars is not None:
            self._ids[name] = self._bars.add_task(shown, total=total)
        elif self.enabled:
            self._logs[name] = _LogBar(shown, total, self.stream)

    def grow(self, name: str, amount: int = 1) -> None:
        """`amount` more steps for bar `name`."""
        if self._bars is not None:
            with self._lock:
                task = self._ids[name]
                total = next(t.total for t in self._bars.tasks if t.id == task) or 0
                self._bars.update(task, total=total + amount)
        elif name in self._logs:
            with self._lock:
                self._logs[name].total += amount

    def view(self, label: str) -> ProgressView:
        """Bars of one task in this invocation's display, named ``label name``."""
        return ProgressView(self, label)

    def advance(self, name: str, amount: int = 1) -> None:
        if self._bars is not None:
            self._bars.advance(self._ids[name], amount)
        elif name in self._logs:
            with self._lock:
                self._logs[name].advance(amount)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bars is not None:
            self._bars.__exit__(exc_type, exc, tb)


class ProgressView(Progress):
    """One task's bars within an invocation's `Progress`: the same display, names prefixed with its label."""

    def __init__(self, parent: Progress, label: str) -> None:  # noqa: D107 - shares the parent's display
        self.parent, self.prefix = parent, label
        self.enabled, self.label, self.stream, self.terminal = parent.enabled, label, parent.stream, parent.terminal

    def _name(self, name: str) -> str:
        return f"{self.prefix} {name}"

    def add(self, name: str, total: int) -> None:
        self.parent.add(self._name(name), total)

    def grow(self, name: str, amount: int = 1) -> None:
        self.parent.grow(self._name(name), amount)

    def advance(self, name: str, amount: int = 1) -> None:
        self.parent.advance(self._name(name), amount)

    def __enter__(self) -> ProgressView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
