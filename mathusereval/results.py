"""Stored runs as data: every answer with its grades, and pandas DataFrames for analysis outside our tables.

```python
from mathusereval import results
frames = results.load("results/")       # a results tree, or one run directory
frames.items.groupby(["model", "task"])["answer.score"].mean()
```

`iter_answers` is the plain-Python layer under it (no pandas), shared by ``mue-eval export`` and
``mue-eval agreement``: one `StoredAnswer` per (sample, answer index) that a run asked for, in the run's
sample order, so every consumer sees the same items in the same order. Reading never changes a run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .records import Generation, Grade, RunManifest, Sample
from .store import MANIFEST, RunStore

if TYPE_CHECKING:
    import pandas as pd

GROUP_KEYS = ("category", "subcategory", "subject", "level")
"""Task metadata that names an item's group: MathUserEval/AlignBench categories, MATH subject and level."""


@dataclass(frozen=True)
class StoredAnswer:
    """One answer slot of a run: the sample, its `n_index`-th generation (None if never generated), and the
    grades of that generation by grader name."""

    manifest: RunManifest
    directory: Path
    sample: Sample
    n_index: int
    generation: Generation | None
    grades: dict[str, Grade] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """The item's group for per-category counts: its category, else subject, else level, else "-"."""
        for key in GROUP_KEYS:
            value = self.sample.metadata.get(key)
            if value not in (None, ""):
                return str(value)
        return "-"


def run_directories(path: Path) -> list[Path]:
    """`path` itself when it is a run directory, else every run directory below it, sorted."""
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    if (path / MANIFEST).is_file():
        return [path]
    found = sorted(p.parent for p in path.glob(f"**/{MANIFEST}"))
    if not found:
        raise ConfigError(f"no runs under {path} (no {MANIFEST} found)")
    return found


def read_manifest(directory: Path) -> RunManifest:
    manifest = RunStore(directory).existing_manifest()
    if manifest is None:
        raise ConfigError(f"{directory} is not a run directory (no {MANIFEST})")
    return manifest


def iter_answers(directory: Path) -> Iterator[StoredAnswer]:
    """Every answer slot the run asked for (each sample × ``params.n``), in sample order."""
    store = RunStore(directory)
    manifest = read_manifest(directory)
    generations = store.generations()
    grades: dict[tuple[str, int], dict[str, Grade]] = {}
    for (sid, k, grader), grade in store.grades().items():
        grades.setdefault((sid, k), {})[grader] = grade
    n = int(manifest.params.get("n", 1))
    for sample in store.samples().values():
        for k in range(n):
            yield StoredAnswer(
                manifest, directory, sample, k, generations.get((sample.id, k)), grades.get((sample.id, k), {})
            )


@dataclass(frozen=True)
class Results:
    """`items`: one row per (model, task, sample, answer index); `runs`: one row per run with its metrics."""

    items: pd.DataFrame
    runs: pd.DataFrame


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
    from the records exactly as the leaderboard does (`parity` as on ``mue-eval leaderboard``)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError("mathusereval.results.load needs pandas: pip install 'mathusereval[results]'") from exc
    from .leaderboard import load_run

    item_rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    for directory in run_directories(Path(path)):
        run = load_run(directory, parity)
        manifest = run.manifest
        answers = list(iter_answers(directory))
        graders = list(manifest.graders) or sorted({name for a in answers for name in a.grades})
        rows = [_item_row(answer, graders) for answer in answers]
        item_rows += rows
        run_row: dict[str, Any] = {
            "model": manifest.model,
            "task": manifest.task,
            "run_id": manifest.run_id,
            "directory": str(directory),
            "fingerprint": manifest.fingerprint,
            "answers": len(rows),
            "scored": sum(r.get(f"{graders[0]}.score") is not None for r in rows) if graders else 0,
        }
        for metric in run.metrics:
            run_row[metric.name] = metric.value
            run_row[f"{metric.name}.stderr"] = metric.stderr
            run_row[f"{metric.name}.n"] = metric.n
        run_rows.append(run_row)
    return Results(items=pd.DataFrame(item_rows), runs=pd.DataFrame(run_rows))
