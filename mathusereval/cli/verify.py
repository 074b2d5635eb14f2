"""``mue-eval verify RUN...``: say whether stored runs were edited after they were written."""

from __future__ import annotations

import argparse
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval verify",
        description="Say whether stored runs were edited after they were written: every record line's digest "
        "chain, and summary.json against the metrics recomputed from the records.",
    )
    p.add_argument("runs", nargs="+", help="run directories or results trees")
    return p


def run(args: argparse.Namespace) -> int:
    from ..results.runs import verify_paths

    verdicts = verify_paths([Path(r) for r in args.runs])
    for verdict in verdicts:
        legacy = f", {verdict.unprotected} written without a digest (not checkable)" if verdict.unprotected else ""
        print(f"{'EDITED' if verdict.edited else 'ok'}: {verdict.directory} ({verdict.lines} record lines{legacy})")
        for problem in verdict.problems:
            print(f"  {problem}")
        if verdict.missing:
            print(f"partial: {verdict.directory.parent} ({', '.join(verdict.missing)} missing)")
    return 1 if any(v.edited for v in verdicts) else 0
