"""Stored runs as pandas DataFrames, for analysis outside our tables.

```python
from mathusereval import results
frames = results.load("results/")       # a results tree, or one run directory
frames.items.groupby(["model", "task"])["answer.score"].mean()
```

Built on `mathusereval.results.runs` (a sharded run is one run here too); reading never changes a run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MueError
from ..records import GROUP_KEYS, RunResult
from .labels import base_label, label_runs, step_of
from .runs import StoredAnswer, find_runs, iter_answers, load_run

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Results:
    """`items`: one row per (model, task, sample, answer index); `runs`: one row per run with its metrics;
    `skipped`: why each run left out could not be read (a record of the wrong type names its file:line)."""

    items: pd.DataFrame
    runs: pd.DataFrame
    skipped: tuple[str, ...] = ()


def _item_row(answer: StoredAnswer, graders: Sequence[str]) -> dict[str, Any]:
    gen, meta = answer.generation, answer.sample.metadata
    primary = answer.grades.get(graders[0]) if graders else None
    row: dict[str, Any] = {
        "model": answer.manifest.model,
        "task": answer.manifest.task,
        "run_id": answer.manifest.run_id,
        "directory": str(answer.directory),
        "sample_id": answer.sample.id,
        "n_index": answer.n_index,
        **{key: meta.get(key) for key in GROUP_KEYS},
        "question": answer.sample.question,
        "reference": answer.sample.reference,
        "response": gen.text if gen is not None and gen.ok else None,
        "reasoning": gen.reasoning if gen is not None else None,
        "tool_calls": sum(1 for step in gen.steps if step.get("code") is not None) if gen is not None and gen.steps else None,
        "extracted": primary.details.get("extracted") if primary is not None else None,
        "finish_reason": gen.finish_reason if gen is not None else None,
        "error": "not generated" if gen is None else gen.error,
        "prompt_tokens": gen.usage.prompt_tokens if gen is not None else None,
        "completion_tokens": gen.usage.completion_tokens if gen is not None else None,
    }
    for name in graders:
        grade = answer.grades.get(name)
        row[f"{name}.score"] = grade.score if grade is not None else None
        row[f"{name}.correct"] = grade.correct if grade is not None else None
        row[f"{name}.error"] = grade.error if grade is not None else "not graded"
    return row


def load(path: str | Path, parity: str = "none") -> Results:
    """DataFrames over a results tree (or one run directory). Needs pandas (``pip install
    'mathusereval[results]'``). Grader columns are ``<grader>.score``, ``<grader>.correct`` and
    ``<grader>.error``; run metrics are ``<metric>``, ``<metric>.stderr`` and ``<metric>.n``, recomputed
    from the records exactly as the leaderboard does (`parity` as on ``mue-eval leaderboard``). Both frames
    have the row name the leaderboard shows (``row``) and the checkpoint's ``step``; runs have the
    generation settings (``params.max_tokens`` ...) and other settings (``settings.think`` ...), and come
    ordered by model family, step and task, so a sweep reads in training order."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError("mathusereval.results.load needs pandas: pip install 'mathusereval[results]'") from exc

    skipped: list[str] = []
    loaded = []
    for parts in find_runs(Path(path)):
        try:  # a run whose records cannot be read is left out, and said; the rest load
            loaded.append((parts, load_run(parts, parity)))
        except MueError as exc:
            skipped.append(str(exc))
            print(f"mue-eval: warning: skipped a run: {exc}", file=sys.stderr)
    labelled = label_runs([run for _, run in loaded])
    order = sorted(range(len(loaded)), key=lambda k: _order(labelled[k]))
    item_rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    for k in order:
        parts, run = loaded[k][0], labelled[k]
        try:  # a run whose records cannot be read is left out, and said; the rest load
            answers = list(iter_answers(parts))
        except MueError as exc:
            skipped.append(str(exc))
            print(f"mue-eval: warning: skipped a run: {exc}", file=sys.stderr)
            continue
        manifest = run.manifest
        graders = list(manifest.graders) or sorted({name for a in answers for name in a.grades})
        who = {"row": run.row, "step": step_of(run)}
        rows = [{**who, **_item_row(answer, graders)} for answer in answers]
        scored, expected = run.coverage
        item_rows += rows
        run_row: dict[str, Any] = {
            **who,
            "model": manifest.model,
            "task": manifest.task,
            "run_id": manifest.run_id,
            "directory": str(run.directory),
            "backend": manifest.backend,
            "fingerprint": manifest.fingerprint,
            **{f"params.{key}": _cell(value) for key, value in sorted(manifest.params.items())},
            **{f"settings.{key}": _cell(value) for key, value in sorted(manifest.settings.items())},
            "answers": len(rows),
            "expected": expected,  # the whole task's answer slots: fewer scored answers = partial run
            "partial": scored < expected,
            "scored": sum(r.get(f"{graders[0]}.score") is not None for r in rows) if graders else 0,
        }
        for metric in run.metrics:
            run_row[metric.name] = metric.value
            run_row[f"{metric.name}.stderr"] = metric.stderr
            run_row[f"{metric.name}.n"] = metric.n
        run_rows.append(run_row)
    return Results(items=pd.DataFrame(item_rows), runs=pd.DataFrame(run_rows), skipped=tuple(skipped))


def _order(run: RunResult) -> tuple[Any, ...]:
    """Rows by model family, then training step (a sweep in order), then task."""
    step = step_of(run)
    return (base_label(run.row).replace(str(step), "") if step is not None else run.row, step or 0, run.row,
            run.manifest.task)  # fmt: skip


def _cell(value: Any) -> Any:
    """A parameter as one DataFrame cell: lists (stop sequences) as tuples, so the column stays hashable."""
    return tuple(value) if isinstance(value, list) else value
