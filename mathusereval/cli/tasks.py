"""``mue-eval tasks``: the installed tasks, their item counts, graders and default generation settings."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mue-eval tasks", description="List tasks and their item counts.")
    p.add_argument("--data-dir", help="local benchmark data (default: $MUE_DATA_DIR)")
    return p


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..data.files import resolve_data_dir
    from ..errors import one_line as plain
    from ..plugins import registry
    from ..plugins.catalog import catalog

    data_dir = resolve_data_dir(args.data_dir)
    table = Table(title=f"tasks (data: {data_dir or 'official sources'})")
    for column in ("task", "items", "graders", "generation", "description"):
        table.add_column(column, overflow="fold")
    unavailable = []
    for entry in catalog(data_dir):
        count = str(entry.items) if entry.items is not None else "[red]unavailable[/red] (below)"
        if entry.items is None:
            unavailable.append(f"{plain(entry.name)}: {plain(entry.problem)}")
        p = entry.params
        generation = f"temperature {p.temperature:g}, top_p {p.top_p:g}, max_tokens {p.max_tokens}"
        if p.stop:
            generation += f", stop {list(p.stop)}"
        if entry.per_item_temperature:
            generation += " (temperature per category)"
        table.add_row(escape(plain(entry.name)), count, escape(", ".join(entry.graders)), escape(generation),
                      escape(plain(entry.description)))  # fmt: skip
    console = Console(width=max(160, Console().width))
    console.print(table)
    groups = Table(title="task groups (--tasks NAME runs every task of the group)")
    for column in ("group", "headline", "columns (tasks)", "description"):
        groups.add_column(column, overflow="fold")
    for name in registry.names("groups"):
        group = registry.lookup("groups", name)
        parts = "; ".join(
            f"{label} ({', '.join(tasks)})" if tasks != (label,) else label for label, tasks in group.parts
        )
        groups.add_row(
            escape(plain(name)), "unweighted mean of the columns", escape(parts), escape(plain(group.description))
        )
    console.print(groups)
    if unavailable and data_dir is None:  # one line, not one download error per task
        from ..data.sources import cache_dir

        console.print(
            f"unavailable: {len(unavailable)} tasks have no data here. Data is looked for in --data-dir DIR, then "
            f"$MUE_DATA_DIR, then the official downloads (cached in {cache_dir()}); the first failure: "
            f"{escape(unavailable[0])}",
            soft_wrap=True,
        )
        return 0
    for line in unavailable:  # whole lines, never wrapped inside a cell
        console.print(f"unavailable: {escape(line)}", soft_wrap=True)
    return 0
