"""What ``mue-eval tasks`` lists: every installed task with its item count (or why it cannot load)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import MueError
from ..records import GenerationParams


@dataclass(frozen=True)
class TaskEntry:
    name: str
    description: str
    graders: tuple[str, ...]
    params: GenerationParams
    items: int | None
    """None when the data cannot be loaded (`problem` says why)."""
    problem: str = ""
    per_item_temperature: bool = False
    """The task sets a temperature per item (AlignBench by category)."""


def catalog(data_dir: Path | None) -> Iterator[TaskEntry]:
    """Each installed task in name order, its data loaded to count the items."""
    from . import registry
    from .task import load_task

    for name in registry.names("tasks"):
        task = registry.lookup("tasks", name)
        try:
            samples = load_task(task, data_dir).samples
            items: int | None = len(samples)
            problem, per_item = "", any("temperature" in s.metadata for s in samples)
        except MueError as exc:
            items, problem, per_item = None, str(exc), False
        yield TaskEntry(name, task.description, task.graders, task.params, items, problem, per_item)
