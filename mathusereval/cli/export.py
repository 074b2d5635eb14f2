"""``mue-eval export RUN... --format rft|dpo|kto --out F``: training data from judged runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import MueError


def parser() -> argparse.ArgumentParser:
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


def run(args: argparse.Namespace) -> int:
    from ..results.candidates import Selection
    from ..results.training_data import export
    from ..store.guard import guarded_outputs

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
    with guarded_outputs():
        data, manifest_path, manifest = export([Path(r) for r in args.runs], args.fmt, Path(args.out), sel)
    counts = manifest["counts"]
    dropped = ", ".join(f"{n} {why}" for why, n in counts["dropped"].items()) or "none"
    print(
        f"{args.fmt}: {counts['rows']} rows from {counts['answers_used']} of {counts['answers']} answers "
        f"({counts['problems']} problems); decided by {manifest['decided_by']}; dropped: {dropped} -> {data} "
        f"(manifest {manifest_path})",
        file=sys.stderr,
    )
    code = 0
    if manifest["skipped_runs"]:
        print(
            f"mue-eval: warning: {len(manifest['skipped_runs'])} run(s) left out (a record could not be read; "
            "named above and in the manifest's skipped_runs)",
            file=sys.stderr,
        )
        code = 1
    if not counts["rows"]:
        print("mue-eval: warning: nothing passed the selection; the files are empty", file=sys.stderr)
        return 1
    if args.fmt == "kto" and 0 in counts["classes"].values():
        print(
            f"mue-eval: warning: the KTO rows hold one class only ({counts['classes']['pass']} passing, "
            f"{counts['classes']['fail']} failing answers); KTO learns from both",
            file=sys.stderr,
        )
    return code
