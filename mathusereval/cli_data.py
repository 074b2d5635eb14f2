"""``mue-eval export`` and ``mue-eval agreement``: stored runs into training data and judge-agreement reports.

Like the rest of the CLI, only argparse is imported up front; the work is imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MueError


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval export",
        description="Turn judged runs into training data: RFT (answers that pass), DPO pairs (high- against "
        "low-scored answers of one problem) or KTO rows, with a manifest of what was kept and dropped.",
    )
    p.add_argument("runs", nargs="+", help="run directories (or results trees); several runs are pooled per problem")
    p.add_argument("--format", required=True, choices=("rft", "dpo", "kto"), dest="fmt")
    p.add_argument("--out", required=True, help="FILE.jsonl (manifest beside it as FILE.manifest.json), or a directory")
    p.add_argument(
        "--decide",
        choices=("auto", "judge", "rule", "both"),
        default="auto",
        help="what decides a pass: the judge's score, the rule grader's verdict, or both agreeing "
        "(auto: the judge when the runs have one)",
    )
    p.add_argument("--judge-grader", help="the judge grader whose scores decide (default: the runs' first judge)")
    p.add_argument("--rule-grader", default="answer", help="the rule grader (default: answer)")
    p.add_argument("--min-score", type=float, default=7.0, help="judge score that passes (default: 7)")
    p.add_argument("--per-problem", type=int, default=4, help="RFT/KTO: answers kept per problem (default: 4)")
    p.add_argument("--margin", type=float, default=3.0, help="DPO: least judge-score gap of a pair (default: 3)")
    p.add_argument("--pairs-per-problem", type=int, default=4, help="DPO: pairs per problem (default: 4)")
    p.add_argument("--max-reuse", type=int, default=2, help="DPO: pairs one answer may appear in (default: 2)")
    p.add_argument(
        "--layout",
        choices=("chat", "text"),
        default="chat",
        help="chat: message lists (TRL's conversational format, default); text: plain strings",
    )
    p.add_argument("--schema", choices=("trl", "openrlhf"), default="trl", help="openrlhf: DPO rows carry 'margin'")
    p.add_argument("--no-provenance", action="store_true", help="leave out each row's 'meta' field")
    return p


def cmd_export(args: argparse.Namespace) -> int:
    from .training_data import Selection, export

    for flag in ("per_problem", "pairs_per_problem", "max_reuse"):
        if getattr(args, flag) <= 0:
            raise MueError(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    if args.margin < 0:
        raise MueError(f"--margin must be 0 or more, got {args.margin}")
    sel = Selection(
        judge=args.judge_grader,
        rule=args.rule_grader,
        decide=args.decide,
        min_score=args.min_score,
        per_problem=args.per_problem,
        margin=args.margin,
        pairs_per_problem=args.pairs_per_problem,
        max_reuse=args.max_reuse,
        chat=args.layout == "chat",
        schema=args.schema,
        provenance=not args.no_provenance,
    )
    data, manifest_path, manifest = export([Path(r) for r in args.runs], args.fmt, Path(args.out), sel)
    counts = manifest["counts"]
    dropped = ", ".join(f"{n} {why}" for why, n in counts["dropped"].items()) or "none"
    print(
        f"{args.fmt}: {counts['rows']} rows from {counts['answers_used']} of {counts['answers']} answers "
        f"({counts['problems']} problems); decided by {manifest['decided_by']}; dropped: {dropped} -> {data} "
        f"(manifest {manifest_path})",
        file=sys.stderr,
    )
    if not counts["rows"]:
        print("mue-eval: warning: nothing passed the selection; the files are empty", file=sys.stderr)
        return 1
    return 0


def agreement_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval agreement",
        description="Agreement of two graders on the same answers: two judges (RUN_A RUN_B, the same answers "
        "judged by different models) or two graders of one run (RUN:math-critique RUN:answer).",
    )
    p.add_argument("a", help="RUN_DIR or RUN_DIR:GRADER (default grader: the run's primary)")
    p.add_argument("b", help="RUN_DIR or RUN_DIR:GRADER")
    p.add_argument("--out", default="agreement", help="where agreement.json and agreement.md go (default: agreement)")
    p.add_argument("--top", type=int, default=20, help="largest disagreements listed (default: 20)")
    return p


def cmd_agreement(args: argparse.Namespace) -> int:
    from .agreement import compare, parse_side, to_markdown, write_report

    if args.top < 0:
        raise MueError(f"--top must be 0 or more, got {args.top}")
    report = compare(parse_side(args.a), parse_side(args.b), args.top)
    print(to_markdown(report))
    paths = write_report(report, Path(args.out))
    print(f"mue-eval: wrote {', '.join(map(str, paths))}", file=sys.stderr)
    return 0 if report["overall"]["n"] else 1


def verify_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval verify",
        description="Say whether stored runs were edited after they were written: every record line's digest "
        "chain, and summary.json against the metrics recomputed from the records.",
    )
    p.add_argument("runs", nargs="+", help="run directories or results trees")
    return p


def cmd_verify(args: argparse.Namespace) -> int:
    from .integrity import verify_run
    from .results import run_directories

    edited = 0
    for directory in [d for r in args.runs for d in run_directories(Path(r))]:
        verdict = verify_run(directory)
        edited += verdict.edited
        legacy = f", {verdict.unprotected} written without a digest (not checkable)" if verdict.unprotected else ""
        state = "EDITED" if verdict.edited else "ok"
        print(f"{state}: {directory} ({verdict.lines} record lines{legacy})")
        for problem in verdict.problems:
            print(f"  {problem}")
    return 1 if edited else 0
