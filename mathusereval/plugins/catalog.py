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

    seen: dict[str, tuple[int | None, str, bool]] = {}
    for name in registry.names("tasks"):
        task = registry.lookup("tasks", name)
        base = name.removesuffix("-tir")
        if task.tir and base in seen:  # a tool-integrated variant reads its base's data (tasks/tir.py): once
            items, problem, per_item = seen[base]
        else:
            try:
                samples = load_task(task, data_dir).samples
                items, problem, per_item = len(samples), "", any("temperature" in s.metadata for s in samples)
            except MueError as exc:
                items, problem, per_item = None, str(exc), False
        seen[name] = (items, problem, per_item)
        yield TaskEntry(name, task.description, task.graders, task.params, items, problem, per_item)
