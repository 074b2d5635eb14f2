"""``mue-eval leaderboard [DIR]``: tables rebuilt from stored results alone (no model is called)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..errors import MueError
from . import options


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mue-eval leaderboard", description="Rebuild tables from stored results.")
    p.add_argument("results", nargs="?", default="results", help="results directory (default: results)")
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    p.add_argument(
        "--out",
        help="write leaderboard.md/.csv, per-task breakdowns (tasks/<task>.md/.csv), plots/*.png and the web "
        "page index.html with runs/<run>.html (sample-level records) into this directory",
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="add the published MathUserEval/AlignBench rows (labelled [published], with source and judge)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply judge scores in --out files, e.g. 10 for OpenCompass's 10-100 convention (labelled)",
    )
    p.add_argument(
        "--sweep-x",
        metavar="FILE.csv",
        help="checkpoint sweeps against a value per model (model,value[,label]; e.g. pre-training loss or tokens "
        "seen) instead of the step number in the model's name",
    )
    options.add_parity_option(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..plugins import registry
    from ..results import collect_runs, verify_run
    from ..results.analysis import Analysis, PairedTests, find_sweeps, read_sweep_x
    from ..store.guard import check_output, guarded_outputs, write_output

    root = Path(args.results)
    if not root.is_dir():
        raise MueError(f"results directory {root} does not exist")
    options.positive("--scale", args.scale)
    runs, problems = collect_runs(root, args.parity)
    for problem in problems:
        print(f"mue-eval: warning: skipped a run: {problem}", file=sys.stderr)
    for note in filter(None, (run.partial_note() for run in runs)):
        print(f"mue-eval: warning: {note}", file=sys.stderr)
    checked = []
    for run_ in runs:  # a run that does not verify is marked "edited" in every table
        found = tuple(p for d in run_.record_dirs for p in verify_run(d).problems)
        for problem in found:
            print(f"mue-eval: warning: edited after it was written: {problem}", file=sys.stderr)
        checked.append(dataclasses.replace(run_, problems=found) if found else run_)
    runs = checked
    if not runs:
        raise MueError(f"no runs found under {root}")
    renderer = registry.lookup("renderers", "leaderboard")
    with guarded_outputs():
        planned = [Path(args.markdown)] if args.markdown else []
        planned += (
            [Path(args.out) / name for name in ("leaderboard.md", "leaderboard.csv", "index.html")] if args.out else []
        )
        for path in planned:  # refused before anything is written
            check_output(path)
        renderer.print_table(runs, reference=args.reference, scale=args.scale)
        if args.markdown:
            write_output(Path(args.markdown), renderer.markdown(runs, reference=args.reference).encode())
        if args.out:
            tests = PairedTests(parity=args.parity)
            sweep_x, axis = read_sweep_x(Path(args.sweep_x)) if args.sweep_x else (None, "value")
            analysis = Analysis(tests, find_sweeps(runs, sweep_x, axis, tests))
            written = renderer.write(
                runs, Path(args.out), scale=args.scale, reference=args.reference, analysis=analysis
            )
            print(f"mue-eval: wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0
