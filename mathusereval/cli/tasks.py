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
    from ..plugins.catalog import catalog

    data_dir = resolve_data_dir(args.data_dir)
    table = Table(title=f"tasks (data: {data_dir or 'official sources'})")
    for column in ("task", "items", "description"):
        table.add_column(column)
    for entry in catalog(data_dir):
        count = str(entry.items) if entry.items is not None else f"[red]unavailable[/red]: {escape(entry.problem)}"
        table.add_row(escape(entry.name), count, escape(entry.description))
    Console().print(table)
    return 0
