"""``mue-eval compare A B``: is B better than A on the same items (paired deltas, CIs and p-values)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import options


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval compare",
        description="Compare two runs (or two results trees, task by task) on the answers both hold: A, B, "
        "B - A with a 95% CI (paired bootstrap), a paired p-value (exact McNemar for pass/fail, a sign-flip "
        "permutation test for scores), n, B's wins/losses/ties, per task and per category, and the items that "
        "changed most; the settings A and B differ in are listed above the table.",
    )
    p.add_argument("a", help="run directory or results tree (the baseline)")
    p.add_argument("b", help="run directory or results tree (the candidate)")
    p.add_argument("--json", action="store_true", help='print {"comparisons": [...]} instead of the table')
    p.add_argument("--out", help="also write compare.json, compare.md and compare.html into this directory")
    p.add_argument("--top", type=int, default=20, help="items that changed most, per task (default: 20)")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap and permutation rounds (default: 10000)")
    options.add_parity_option(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..plugins import registry
    from ..results.compare import report
    from ..store.guard import check_output, guarded_outputs
    from ..store.jsonl import json_text

    options.positive("--resamples", args.resamples)
    if args.top < 0:
        options.positive("--top", args.top)
    renderer = registry.lookup("renderers", "leaderboard")
    with guarded_outputs():
        if args.out:
            for name in ("compare.json", "compare.md", "compare.html"):
                check_output(Path(args.out) / name)
        result = report(Path(args.a), Path(args.b), resamples=args.resamples, top=args.top, parity=args.parity)
        sys.stdout.write(json_text(result).decode() if args.json else renderer.comparison_markdown(result))
        if args.out:
            written = renderer.write_comparison(result, Path(args.out))
            print(f"mue-eval: wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0
