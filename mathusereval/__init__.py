"""mathusereval: an evaluation harness for MathUserEval, GSM8K, MATH and AlignBench.

Stages pass typed records: a `Task` loads `Sample`s, a backend answers with `Generation`s, graders
return `Grade`s, and the task aggregates them into `MetricValue`s. Importing this package is cheap:
engines (llama_cpp, vllm, torch, lm_eval) are imported only when a run needs them.
"""

from .__about__ import __version__
from .errors import BackendUnavailable, ConfigError, DataError, MueError
from .records import Generation, GenerationParams, Grade, MetricValue, Request, RunManifest, Sample, Usage
from .registry import lookup, names, register
from .task import LoadedData, Task


def lm_eval_task_dir() -> str:
    """Our lm-eval task YAMLs, for ``lm_eval run --include_path <this> --tasks mathusereval_gsm8k``."""
    from .lmeval import task_dir

    return str(task_dir())


__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "DataError",
    "Generation",
    "GenerationParams",
    "Grade",
    "LoadedData",
    "MetricValue",
    "MueError",
    "Request",
    "RunManifest",
    "Sample",
    "Task",
    "Usage",
    "__version__",
    "lm_eval_task_dir",
    "lookup",
    "names",
    "register",
]
