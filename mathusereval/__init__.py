"""mathusereval: an evaluation harness for MathUserEval, GSM8K, MATH and AlignBench.

Stages pass typed records: a `Task` loads `Sample`s, a backend answers with `Generation`s, graders
return `Grade`s, and the task aggregates them into `MetricValue`s. Importing this package is cheap:
engines (llama_cpp, vllm, torch, lm_eval) are imported only when a run needs them.

Everything a plugin needs is exported here (the list is pinned by tests/test_plugin_api.py):

```python
from mathusereval import BOXED_COT, GenerationParams, Sample, Task, accuracy, jsonl_loader, pinned_source
from mathusereval import register, user_turn
```

The contracts a task, grader or backend must meet are in `mathusereval.contracts`.
"""

from .__about__ import __version__
from .contracts import Backend, BackendFactory, JudgeGrader, RuleGrader
from .errors import BackendUnavailable, ConfigError, DataError, MueError
from .metrics import accuracy, grouped_means, mean_with_stderr, per_sample_scores
from .records import (
    Generation,
    GenerationParams,
    Grade,
    Message,
    MetricValue,
    Request,
    RunManifest,
    Sample,
    Usage,
)
from .registry import judge_grader, lookup, names, register, rule_grader
from .sources import pinned_source
from .task import BOXED_COT, LoadedData, Task, jsonl_loader, prompt_fingerprint, user_turn


def lm_eval_task_dir() -> str:
    """Our lm-eval task YAMLs, for ``lm_eval run --include_path <this> --tasks mathusereval_gsm8k``."""
    from .lmeval import task_dir

    return str(task_dir())


__all__ = [
    "BOXED_COT",
    "Backend",
    "BackendFactory",
    "BackendUnavailable",
    "ConfigError",
    "DataError",
    "Generation",
    "GenerationParams",
    "Grade",
    "JudgeGrader",
    "LoadedData",
    "Message",
    "MetricValue",
    "MueError",
    "Request",
    "RuleGrader",
    "RunManifest",
    "Sample",
    "Task",
    "Usage",
    "__version__",
    "accuracy",
    "grouped_means",
    "jsonl_loader",
    "judge_grader",
    "lm_eval_task_dir",
    "lookup",
    "mean_with_stderr",
    "names",
    "per_sample_scores",
    "pinned_source",
    "prompt_fingerprint",
    "register",
    "rule_grader",
    "user_turn",
]
