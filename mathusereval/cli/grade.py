"""``mue-eval grade RUN_DIR...``: grade stored answers again (missing grades, or another judge)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import options


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval grade",
        description="Grade stored answers again (missing grades, or judge grades from another judge). "
        "Answers are never regenerated; stored judge replies are reused.",
    )
    p.add_argument("runs", nargs="+", help="run directories, e.g. results/MODEL/mathusereval")
    p.add_argument("--limit", type=int, help="grade only the first N samples of each run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    options.add_grading_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ..plugins import registry
    from ..run.pipeline import RunOptions
    from ..run.role_settings import judge_settings
    from ..run.session import grade, incomplete

    options.positive("--limit", args.limit)
    judges = judge_settings(options.grading_options(args))
    run_options = RunOptions(
        limit=args.limit, progress=not args.quiet, graders=options.grader_names(args), parity=args.parity
    )
    results = asyncio.run(grade([Path(r) for r in args.runs], run_options, judges))
    registry.lookup("renderers", "leaderboard").print_table(results)
    return 1 if incomplete(results) else 0
