"""Prompt templates shared by several tasks, and few-shot exemplars drawn from a benchmark's train split.

Few-shot variants take their exemplars from the benchmark's own train file (never text pasted into the
code), chosen by a fixed rule and pinned by that file's sha256, so the prompt is reproducible and its hash
in the manifest means something. They follow the published formats (GSM8K "Question:/Answer:" with
``####``, Wei et al.'s "Q:/A: … The answer is N.", Minerva's "Problem:/Solution:" ending "Final Answer: The
final answer is X. I hope it is correct."), but not the published exemplars, so scores compare in
protocol (k-shot, format), not exemplar for exemplar, with lm-eval's gsm8k-cot or minerva_math.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mathusereval.data import find_data_file, read_jsonl, sha256_file
from mathusereval.errors import DataError
from mathusereval.task import BOXED_COT

__all__ = ["BOXED_COT", "train_rows"]


def train_rows(data_dir: Path | None, relative: str, sha256: str, task: str, fields: tuple[str, ...]) -> list[Any]:
    """All rows of a pinned train file; a file with another digest is refused (its exemplars would differ)."""
    path = find_data_file(data_dir, relative, task)
    digest = sha256_file(path)
    if digest != sha256:
        raise DataError(
            f"{path}: sha256 {digest} is not the pinned {sha256}; task {task!r} takes its few-shot exemplars "
            "from this file, so another version would change the prompt"
        )
    return [row for _, row in read_jsonl(path, required=fields)]
