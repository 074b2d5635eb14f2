"""Row names of runs shown together: every distinct run its own row, and the row says what makes it differ.

A row is one run identity across tasks: the model, its backend, ``--name``, the generation settings the
user set (``overrides``) and the other settings of the fingerprint (``think``, endpoint ...). Rows whose
labels collide are told apart: by the shortest part of the model path that differs (``ck1/model``,
``ck2/model``), then by the settings that differ (``model [max_tokens=77]``), and two runs of one identity
on one task (copies in two results trees) by the folders they are in. Nothing is merged or dropped.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..records import LOCAL_BACKENDS, RunManifest, RunResult


def per_task_settings(manifest: RunManifest) -> dict[str, Any]:
    """The generation settings a ``--config`` file set for this run's task alone (``[tasks.NAME]``): part of
    the task's identity (its column), not a reason to split the model's row."""
    tables = manifest.config.get("task_overrides")
    own = tables.get(manifest.task) if isinstance(tables, dict) else None
    return {k: manifest.overrides[k] for k in own if k in manifest.overrides} if isinstance(own, dict) else {}


def _row_overrides(manifest: RunManifest) -> dict[str, Any]:
    """The settings that tell this model's row apart: those the user set, less any that a ``[tasks.NAME]``
    table of the same configuration sets for some task (a setting that varies by task is the tasks' business:
    ``max_tokens = 64`` with ``[tasks.gsm8k] max_tokens = 48`` is one row, not two)."""
    tables = manifest.config.get("task_overrides")
    per_task = {k for table in tables.values() if isinstance(table, dict) for k in table} if isinstance(
        tables, dict
    ) else set()
    return {k: v for k, v in manifest.overrides.items() if k not in per_task}


def _identity(run: RunResult) -> str:
    m = run.manifest
    return json.dumps([m.backend, m.model, m.name, _row_overrides(m), m.settings], sort_keys=True, default=str)


def step_of(run: RunResult) -> int | None:
    """The training step of a run's checkpoint: given explicitly (a ``--config`` sweep's ``step``, the
    watcher's trainer state) or the last number of the model's label (``checkpoint-1200/model`` -> 1200);
    None when neither says."""
    steps, model = run.manifest.config.get("steps"), run.manifest.model
    keys = (model, str(Path(model).parent)) if model.endswith(".gguf") else (model,)  # a folder with one .gguf
    given = next((steps[k] for k in keys if k in steps), None) if isinstance(steps, dict) else None
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    numbers = re.findall(r"\d+", base_label(run.row))
    return int(numbers[-1]) if numbers else None


def base_label(row: str) -> str:
    """A row name without the settings in brackets that tell rows apart (``model [max_tokens=77]`` -> ``model``)."""
    return re.sub(r"( \[[^\]]*\])+$", "", row)


def distinguishing_suffixes(paths: Sequence[str]) -> dict[str, str]:
    """Each path's shortest trailing part (``ck1/model``) that no other path of `paths` ends with."""
    parts = {p: [x for x in Path(p).with_suffix("").parts if x not in ("/", "")] if p.endswith(".gguf") else
             [x for x in Path(p).parts if x not in ("/", "")] for p in paths}  # fmt: skip
    out = {}
    for path, own in parts.items():
        for k in range(1, len(own) + 1):
            tail = own[-k:]
            if all(other[-k:] != tail for q, other in parts.items() if q != path):
                out[path] = "/".join(tail)
                break
        else:
            out[path] = path
    return out


def _settings(run: RunResult) -> dict[str, Any]:
    return {**_row_overrides(run.manifest), **run.manifest.settings}


def _bracket(values: dict[str, Any], keys: Sequence[str]) -> str:
    return "[" + ", ".join(f"{k}={values.get(k, 'default')}" for k in keys) + "]"


def label_runs(runs: Sequence[RunResult]) -> list[RunResult]:
    """`runs` with `RunResult.label` set (see the module docstring), in the same order."""
    identities = {_identity(r): r for r in runs}
    by_label: dict[str, list[str]] = {}
    for key, run in identities.items():
        by_label.setdefault(run.manifest.label, []).append(key)
    names: dict[str, str] = {}
    for label, keys in by_label.items():
        models = sorted({identities[k].manifest.model for k in keys})
        local = all(identities[k].manifest.backend in LOCAL_BACKENDS for k in keys)
        suffix = distinguishing_suffixes(models) if len(models) > 1 and local else {}
        bases = {k: suffix.get(identities[k].manifest.model, label) for k in keys}
        if len(models) > 1 and not local:  # one served name on several backends
            bases = {k: f"{label} [{identities[k].manifest.backend}]" for k in keys}
        for base in set(bases.values()):
            same = [k for k in keys if bases[k] == base]
            if len(same) == 1:
                names[same[0]] = base
                continue
            settings = {k: _settings(identities[k]) for k in same}
            differ = sorted({f for k in same for f in settings[k] if len({str(settings[j].get(f)) for j in same}) > 1})
            for k in same:
                names[k] = f"{base} {_bracket(settings[k], differ)}" if differ else base
    labelled = [dataclasses.replace(r, label=names[_identity(r)]) for r in runs]
    return _split_copies(labelled)


def _split_copies(runs: list[RunResult]) -> list[RunResult]:
    """Two runs with one row name on one task (the same run copied into two trees) get their folders'
    names added, so both show."""
    by_cell: dict[tuple[str, str], list[int]] = {}
    for i, run in enumerate(runs):
        by_cell.setdefault((run.row, run.manifest.task), []).append(i)
    out = list(runs)
    for indices in by_cell.values():
        if len(indices) < 2:
            continue
        homes = distinguishing_suffixes([str(runs[i].directory.parent.parent.resolve()) for i in indices])
        for i in indices:
            home = homes[str(runs[i].directory.parent.parent.resolve())]
            out[i] = dataclasses.replace(runs[i], label=f"{runs[i].row} [{home}]")
    return out
