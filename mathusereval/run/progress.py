"""Rich progress bars on stderr: count, rate and ETA for generation and grading."""

from __future__ import annotations

from types import TracebackType
from typing import Any


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


class Progress:
    """Named bars, or nothing at all when disabled (``--quiet``)."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self._bars: Any = None
        self._ids: dict[str, Any] = {}

    def __enter__(self) -> Progress:
        if self.enabled:
            self._bars = _rich_progress()
            self._bars.__enter__()
        return self

    def add(self, name: str, total: int) -> None:
        if self._bars is not None:
            self._ids[name] = self._bars.add_task(f"{self.label} {name}", total=total)

    def advance(self, name: str, amount: int = 1) -> None:
        if self._bars is not None:
            self._bars.advance(self._ids[name], amount)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bars is not None:
            self._bars.__exit__(exc_type, exc, tb)
