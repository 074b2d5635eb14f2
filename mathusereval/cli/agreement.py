"""``mue-eval agreement A B``: how far two graders agree on the same answers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import MueError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval agreement",
        description="Agreement of two graders on the same answers: two judges (RUN_A RUN_B, the same answers "
        "judged by different models) or two graders of one run (RUN:math-critique RUN:answer).",
    )
    p.add_argument("a", help="RUN_DIR or RUN_DIR:GRADER (default grader: the run's primary)")
    p.add_argument("b", help="RUN_DIR or RUN_DIR:GRADER")
    p.add_argument("--out", help="also write agreement.json and agreement.md into this directory")
    p.add_argument("--top", type=int, default=20, help="largest disagreements listed (default: 20)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..results.agreement import compare, parse_side, to_markdown, write_report
    from ..store.guard import check_output, guarded_outputs

    if args.top < 0:
        raise MueError(f"--top must be 0 or more, got {args.top}")
    with guarded_outputs():
        for name in ("agreement.json", "agreement.md") if args.out else ():
            check_output(Path(args.out) / name)
        report = compare(parse_side(args.a), parse_side(args.b), args.top)
        print(to_markdown(report))
        if args.out:  # nothing is written into the current directory unless asked
            paths = write_report(report, Path(args.out))
            print(f"mue-eval: wrote {', '.join(map(str, paths))}", file=sys.stderr)
    return 0 if report["overall"]["n"] else 1
