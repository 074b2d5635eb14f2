"""Typed records: the only currency between stages (items in `.items`, whole runs in `.runs`)."""

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

__all__ = [
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
]
