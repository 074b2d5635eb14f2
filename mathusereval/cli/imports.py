"""``mue-eval import FILE --task T``: store answers generated elsewhere as a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MueError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mue-eval import",
        description="Store answers generated elsewhere (JSONL rows with the question's key fields and an "
        "answer) as a run, e.g. ChatGLM-Math's data/model_answer/*.jsonl.",
    )
    p.add_argument("answers", help="JSONL file of answers")
    p.add_argument("--task", required=True, help="the task the answers belong to, e.g. mathusereval")
    p.add_argument("--model", help="model name (default: the rows' model_id, else the file name)")
    p.add_argument("--answer-field", default="answer", help="the field holding the answer text (default: answer)")
    p.add_argument("--out", default="results", help="results directory (default: results)")
    p.add_argument("--data-dir", help="local benchmark data (default: $MUE_DATA_DIR)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..data.files import resolve_data_dir
    from ..run.importing import import_answers

    path = Path(args.answers)
    if not path.is_file():
        raise MueError(f"answer file {path} does not exist")
    import_answers(path, args.task, Path(args.out), resolve_data_dir(args.data_dir), args.model, args.answer_field)
    return 0
