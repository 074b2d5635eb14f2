"""Leaderboard rendering from stored results."""

from .tables import StoredRun, Table, build_table, collect_runs, load_run, print_table, to_markdown

__all__ = ["StoredRun", "Table", "build_table", "collect_runs", "load_run", "print_table", "to_markdown"]
