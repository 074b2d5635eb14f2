"""``mue-eval import FILE --task T``: answers generated elsewhere stored as a run, ready for ``grade``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import ModelSpec
from ..data.files import read_jsonl, sha256_file
from ..errors import ConfigError, DataError
from ..plugins import registry
from ..plugins.task import Task, load_task
from ..records import Generation
from ..store import RunStore, run_directory
from .pipeline import build_manifest


@dataclass
class ImportedAnswers:
    """The "backend" of an imported run: answers someone else generated, read from a JSONL file."""

    model: str
    source: str
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256}


def _read_answers(answers: Path, task: Task, ids: set[str], answer_field: str) -> tuple[dict[str, str], set[str]]:
    """The answer text per sample id, and the model names the rows give; any bad row names file:line."""
    assert task.row_key is not None
    texts: dict[str, str] = {}
    models: set[str] = set()
    for lineno, row in read_jsonl(answers, required=(answer_field,)):
        try:
            key = task.row_key(row)
        except KeyError as exc:
            raise DataError(f"{answers}:{lineno}: missing required field {exc.args[0]!r}") from None
        if key not in ids:
            raise DataError(f"{answers}:{lineno}: no {task.name} sample has the key {key!r}")
        if key in texts:
            raise DataError(f"{answers}:{lineno}: a second answer for {key!r}")
        if not isinstance(row[answer_field], str):
            raise DataError(f"{answers}:{lineno}: field {answer_field!r} is not a string")
        texts[key] = row[answer_field]
        if isinstance(row.get("model_id"), str):
            models.add(row["model_id"])
    return texts, models


def import_answers(
    answers: Path, task_name: str, out: Path, data_dir: Path | None, model: str | None, answer_field: str = "answer"
) -> Path:
    """Store answers generated elsewhere as a run, ready for ``grade``.

    Rows are matched to samples by the task's own key (`Task.row_key`); the upstream answer files copy the
    question fields, so ChatGLM-Math's ``data/model_answer/*.jsonl`` import as they are. A row that matches
    no sample, repeats one, or lacks a field is an error naming file:line; nothing is written then.
    """
    task: Task = registry.lookup("tasks", task_name)
    if task.row_key is None:
        raise ConfigError(f"task {task_name!r} cannot import answers (it defines no row key)")
    loaded = load_task(task, data_dir)
    texts, models = _read_answers(answers, task, {s.id for s in loaded.samples}, answer_field)
    if model is None:
        if len(models) > 1:
            raise DataError(f"{answers}: answers from several models ({', '.join(sorted(models))}): pass --model")
        model = models.pop() if models else answers.stem
    spec = ModelSpec(backend="import", model=model)
    source = ImportedAnswers(model, str(answers), sha256_file(answers))
    manifest = build_manifest(task, spec, source.describe(), task.params, loaded)
    store = RunStore(run_directory(out, spec.slug, task.name))
    with store.writing(manifest):
        stored = store.generations()
        known = set(store.samples())
        for sample in loaded.samples:
            if sample.id not in known:
                store.add_sample(sample)
        for key, text in texts.items():
            if (key, 0) not in stored or stored[(key, 0)].text != text:
                store.add_generation(Generation(sample_id=key, n_index=0, model=model, text=text, finish_reason="stop"))
    print(
        f"imported {len(texts)} answers of {model} for {len(loaded.samples)} {task_name} samples -> {store.dir}",
        file=sys.stderr,
    )
    return store.dir
