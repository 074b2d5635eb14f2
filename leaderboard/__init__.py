"""The leaderboard renderer: tables and publication files from runs already read (`mathusereval.results`).

Registered as the ``leaderboard`` renderer; the CLI finds it by name (`mathusereval.plugins.registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mathusereval.plugins.registry import register
from mathusereval.records import RunResult

from .export import write_leaderboard
from .tables import Table, build_table, print_table, to_markdown


class Leaderboard:
    """The built-in `mathusereval.Renderer`."""

    def print_table(self, runs: Sequence[RunResult], *, reference: bool = False, scale: float = 1.0) -> None:
        print_table(build_table(runs, reference=reference))

    def markdown(self, runs: Sequence[RunResult], *, reference: bool = False) -> str:
        return to_markdown(build_table(runs, reference=reference))

    def write(self, runs: Sequence[RunResult], out: Path, *, scale: float = 1.0, reference: bool = False) -> list[Path]:
        return write_leaderboard(runs, out, scale, reference=reference)


LEADERBOARD = Leaderboard()
register("renderers", "leaderboard", LEADERBOARD)

__all__ = ["LEADERBOARD", "Leaderboard", "Table", "build_table", "print_table", "to_markdown", "write_leaderboard"]
