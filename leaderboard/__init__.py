"""The leaderboard renderer: tables and publication files from runs already read (`mathusereval.results`).

Registered as the ``leaderboard`` renderer; the CLI finds it by name (`mathusereval.plugins.registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mathusereval.plugins.registry import register
from mathusereval.records import RunResult

from .comparison import comparison_markdown, write_comparison
from .export import write_leaderboard
from .tables import Table, build_table, print_table, to_markdown


class Leaderboard:
    """The built-in `mathusereval.Renderer`."""

    def print_table(self, runs: Sequence[RunResult], *, reference: bool = False, scale: float = 1.0) -> None:
        print_table(build_table(runs, reference=reference), judge_scale=scale)

    def markdown(self, runs: Sequence[RunResult], *, reference: bool = False) -> str:
        return to_markdown(build_table(runs, reference=reference))

    def write(
        self,
        runs: Sequence[RunResult],
        out: Path,
        *,
        scale: float = 1.0,
        reference: bool = False,
        analysis: Any = None,
        reference_name: str | None = None,
    ) -> list[Path]:
        return write_leaderboard(
            runs, out, scale, reference=reference, analysis=analysis, reference_name=reference_name
        )

    def comparison_markdown(self, report: dict[str, Any]) -> str:
        return comparison_markdown(report)

    def write_comparison(self, report: dict[str, Any], out: Path) -> list[Path]:
        return write_comparison(report, out)


LEADERBOARD = Leaderboard()
register("renderers", "leaderboard", LEADERBOARD)

__all__ = ["LEADERBOARD", "Leaderboard", "Table", "build_table", "print_table", "to_markdown", "write_leaderboard"]
