"""Leaderboard rendering from stored results."""

from .export import write_leaderboard
from .tables import Table, build_table, collect_runs, load_run, partial, print_table, to_markdown

__all__ = [
    "Table",
    "build_table",
    "collect_runs",
    "load_run",
    "partial",
    "print_table",
    "to_markdown",
    "write_leaderboard",
]
