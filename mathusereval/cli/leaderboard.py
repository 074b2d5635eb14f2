"""``mue-eval leaderboard [DIR]``: tables rebuilt from stored results alone (no model is called)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

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
    p.add_argument(
        "--reference-name",
        metavar="PUBLISHED",
        help="with --reference: the published row the runs should reproduce, when their model name is not that "
        "row's (e.g. a local path to Qwen2.5-Math-7B-Instruct)",
    )
    options.add_parity_option(p)
    return p


def read_runs(root: Path, parity: str, warn: bool = True) -> list[Any]:
    """Every readable run under `root`, each checked by ``verify`` (one that does not verify is marked
    ``edited`` in every table); what cannot be read is a warning (`warn`: also partial and edited runs)."""
    from ..results import collect_runs, verify_run

    if not root.is_dir():
        raise MueError(f"results directory {root} does not exist")
    runs, problems = collect_runs(root, parity)
    for problem in problems:
        print(f"mue-eval: warning: skipped a run: {problem}", file=sys.stderr)
    for note in filter(None, (run.partial_note() for run in runs)) if warn else ():
        print(f"mue-eval: warning: {note}", file=sys.stderr)
    checked = []
    for run_ in runs:
        found = tuple(p for d in run_.record_dirs for p in verify_run(d).problems)
        for problem in found if warn else ():
            print(f"mue-eval: warning: edited after it was written: {problem}", file=sys.stderr)
        checked.append(dataclasses.replace(run_, problems=found) if found else run_)
    if not checked:
        raise MueError(f"no runs found under {root}")
    return checked


def write_board(
    runs: list[Any], out: Path, *, reference: bool = False, scale: float = 1.0, parity: str = "none",
    sweep_x: str | None = None, reference_name: str | None = None,
) -> list[Path]:  # fmt: skip
    """``leaderboard --out``: tables, plots, sweeps and the web page (also what the watcher updates after
    each checkpoint). An unmatched ``--sweep-x`` key is a warning listing the names the runs answer to."""
    from ..plugins import registry
    from ..results.analysis import Analysis, PairedTests, find_sweeps, read_sweep_x, unmatched_sweep_x
    from ..store.guard import check_output

    for name in ("leaderboard.md", "leaderboard.csv", "index.html"):  # refused before anything is written
        check_output(out / name)
    tests = PairedTests(parity=parity)
    values, axis = read_sweep_x(Path(sweep_x)) if sweep_x else (None, "value")
    if values is not None:
        unmatched, known = unmatched_sweep_x(runs, values)
        for key in unmatched:
            print(
                f"mue-eval: warning: --sweep-x {sweep_x}: {key!r} names no run; the runs are "
                f"{', '.join(repr(k) for k in known)}",
                file=sys.stderr,
            )
    analysis = Analysis(tests, find_sweeps(runs, values, axis, tests))
    renderer = registry.lookup("renderers", "leaderboard")
    extra = {"reference_name": reference_name} if reference_name else {}
    written: list[Path] = renderer.write(runs, out, scale=scale, reference=reference, analysis=analysis, **extra)
    return written


def run(args: argparse.Namespace) -> int:
    from ..plugins import registry
    from ..store.guard import check_output, guarded_outputs, write_output

    options.positive("--scale", args.scale)
    runs = read_runs(Path(args.results), args.parity)
    renderer = registry.lookup("renderers", "leaderboard")
    with guarded_outputs():
        if args.markdown:
            check_output(Path(args.markdown))
        renderer.print_table(runs, reference=args.reference, scale=args.scale)
        if args.markdown:
            write_output(Path(args.markdown), renderer.markdown(runs, reference=args.reference).encode())
        if args.out:
            written = write_board(
                runs, Path(args.out), reference=args.reference, scale=args.scale, parity=args.parity,
                sweep_x=args.sweep_x, reference_name=args.reference_name,
            )  # fmt: skip
            print(f"mue-eval: wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0
