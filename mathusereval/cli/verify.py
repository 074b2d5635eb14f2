"""``mue-eval verify RUN...``: say whether stored runs were edited after they were written."""

from __future__ import annotations

import argparse
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval verify",
        description="Say whether stored runs were edited after they were written: every record line's digest "
        "chain, and summary.json against the metrics recomputed from the records. Exit 1: a run was edited; "
        "exit 2: none was, but a run could not be checked.",
    )
    p.add_argument("runs", nargs="+", help="run directories or results trees")
    return p


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every run verifies, 1 when one was edited, 2 when none was edited but one could not be
    checked (a file that cannot be opened, records that cannot be read back)."""
    from ..results.runs import verify_paths

    verdicts = verify_paths([Path(r) for r in args.runs])
    for verdict in verdicts:
        legacy = f", {verdict.unprotected} written without a digest (not checkable)" if verdict.unprotected else ""
        state = "EDITED" if verdict.edited else "ok" if verdict.checked else "NOT CHECKED"
        print(f"{state}: {verdict.directory} ({verdict.lines} record lines{legacy})")
        for problem in [*verdict.problems, *verdict.unchecked]:
            print(f"  {problem}")
        if verdict.missing:
            print(f"partial: {verdict.directory.parent} ({', '.join(verdict.missing)} missing)")
    if any(v.edited for v in verdicts):
        return 1
    return 2 if any(not v.checked for v in verdicts) else 0
