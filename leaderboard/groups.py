"""Task-group columns (``math-suite-en``): the unweighted mean of the group's parts, each part the pooled
accuracy of its tasks, for every row that has all of them (a group average over missing tasks would not
compare with the published one, so such a row shows no value)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mathusereval.records import MetricValue

from .layout import is_share


def group_cells(
    columns: Sequence[str], cells: Mapping[str, Mapping[str, MetricValue]]
) -> dict[str, dict[str, MetricValue]]:
    """Group name -> row -> its average, for the registered groups whose tasks are all among `columns`."""
    from mathusereval.plugins import registry

    found: dict[str, dict[str, MetricValue]] = {}
    for name in registry.names("groups"):
        group = registry.lookup("groups", name)
        if name in columns or not set(group.tasks) <= set(columns):
            continue
        for row, by_column in cells.items():
            parts, answers = [], 0
            for _, tasks in group.parts:
                metrics = [by_column.get(task) for task in tasks]
                usable = [m for m in metrics if m is not None and m.n > 0 and is_share(m) and not math.isnan(m.value)]
                if len(usable) < len(tasks):
                    break
                answers += sum(m.n for m in usable)
                parts.append(sum(m.value * m.n for m in usable) / sum(m.n for m in usable))
            else:
                found.setdefault(name, {})[row] = MetricValue("accuracy", sum(parts) / len(parts), answers)
    return found
