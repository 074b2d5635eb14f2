"""``--model A,B`` and ``--model 'runs/ckpt-*'``: the models of a sweep, each evaluated as its own run."""

from __future__ import annotations

import glob
import re

from ..errors import MueError

_GLOB = re.compile(r"[*?]")


def step_key(name: str) -> tuple[object, ...]:
    """Natural order: ``ckpt-200`` before ``ckpt-1200`` (numbers compare as numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def expand_models(text: str) -> list[str]:
    """A comma list of models, each a name, a path or a glob; a glob's matches in natural order. A glob that
    matches nothing is an error (it is a typo, not an empty sweep)."""
    models: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        matches = sorted(glob.glob(item), key=step_key) if _GLOB.search(item) or "[" in item else []
        if _GLOB.search(item) and not matches:
            raise MueError(f"--model {item}: the pattern matches no file or folder")
        if matches and not (len(matches) == 1 and matches[0] == item):
            models += matches
        else:
            models.append(item)  # a name or a path ("[" alone is a character of a served name)
    if not models:
        raise MueError("--model is empty")
    if len(set(models)) != len(models):
        raise MueError(f"--model names a model twice: {', '.join(sorted({m for m in models if models.count(m) > 1}))}")
    return models
