"""Typed records: the only currency between stages (items in `.items`, whole runs in `.runs`).

``manifest.json`` and ``summary.json`` are described by JSON Schemas shipped beside them (`schema`)."""

import json
from importlib import resources
from typing import Any

from .items import (
    GROUP_KEYS,
    Generation,
    GenerationParams,
    Grade,
    JsonDict,
    JudgeCall,
    Message,
    MetricValue,
    Request,
    Sample,
    Settled,
    Usage,
)
from .runs import (
    LOCAL_BACKENDS,
    JudgeUsage,
    RunCounts,
    RunManifest,
    RunResult,
    RunSummary,
    model_label,
    safe_name,
)

SCHEMAS = ("manifest", "summary")


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of ``<name>.json`` (``manifest`` or ``summary``), as shipped in the package."""
    if name not in SCHEMAS:
        raise ValueError(f"no schema {name!r} (one of {', '.join(SCHEMAS)})")
    text = resources.files(__package__).joinpath("schemas").joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


__all__ = [
    "SCHEMAS",
    "GROUP_KEYS",
    "LOCAL_BACKENDS",
    "Generation",
    "GenerationParams",
    "Grade",
    "JsonDict",
    "JudgeCall",
    "JudgeUsage",
    "Message",
    "MetricValue",
    "Request",
    "RunCounts",
    "RunManifest",
    "RunResult",
    "RunSummary",
    "Sample",
    "Settled",
    "Usage",
    "model_label",
    "safe_name",
    "schema",
]
