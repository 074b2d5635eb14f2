"""mathusereval: an evaluation harness for MathUserEval, GSM8K, MATH and AlignBench.

Stages pass typed records: a `Task` loads `Sample`s, a backend answers with `Generation`s, graders
return `Grade`s, and the task aggregates them into `MetricValue`s. Importing this package is cheap:
engines (llama_cpp, vllm, torch, lm_eval) are imported only when a run needs them.

Everything a plugin needs is exported here (the list is pinned by tests/test_plugin_api.py):

```python
from mathusereval import BOXED_COT, GenerationParams, Sample, Task, accuracy, jsonl_loader, pinned_source
from mathusereval import register, user_turn
```

The contracts a task, grader, backend or renderer must meet are in `mathusereval.plugins.contracts`.
The package's tree (one line per subpackage):

- `records`: the typed records every stage passes on (`Sample`, `Generation`, `Grade`, `RunResult` ...)
- `plugins`: the plugin API (contracts, registry, ``--include``, `Task`, aggregation helpers)
- `data`: benchmark files, pinned official downloads, shards
- `backends`: the engines (OpenAI-compatible servers, llama.cpp, vLLM, Ray replicas, ``--serve``)
- `run`: the write side (one run, its grading and judging, the whole invocation)
- `store`: run directories on disk (append-only records, the locked writer, integrity)
- `results`: the read side (runs read back, metrics recomputed, DataFrames, agreement, training data)
- `cli`: ``mue-eval``, one module per command; `lmeval`: the lm-evaluation-harness plugin
"""

from .__about__ import __version__
from .data.sources import pinned_source
from .errors import BackendUnavailable, ConfigError, DataError, MueError
from .plugins.contracts import Backend, BackendFactory, JudgeGrader, Renderer, RuleGrader
from .plugins.metrics import accuracy, grouped_means, mean_with_stderr, per_sample_scores
from .plugins.registry import judge_grader, lookup, names, register, rule_grader
from .plugins.task import (
    BOXED_COT,
    LoadedData,
    Loader,
    Task,
    TaskGroup,
    boxed_answer,
    jsonl_loader,
    pinned_rows,
    prompt_fingerprint,
    user_turn,
)
from .records import (
    Generation,
    GenerationParams,
    Grade,
    Message,
    MetricValue,
    Request,
    RunManifest,
    RunResult,
    Sample,
    Settled,
    Usage,
)


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
    "Loader",
    "Message",
    "MetricValue",
    "MueError",
    "Renderer",
    "Request",
    "RuleGrader",
    "RunManifest",
    "RunResult",
    "Sample",
    "Settled",
    "Task",
    "TaskGroup",
    "Usage",
    "__version__",
    "accuracy",
    "boxed_answer",
    "grouped_means",
    "jsonl_loader",
    "judge_grader",
    "lm_eval_task_dir",
    "lookup",
    "mean_with_stderr",
    "names",
    "per_sample_scores",
    "pinned_rows",
    "pinned_source",
    "prompt_fingerprint",
    "register",
    "rule_grader",
    "user_turn",
]
