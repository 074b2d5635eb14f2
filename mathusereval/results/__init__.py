"""The read side: stored runs read back (`runs`), their numbers recomputed from the records (`scoring`),
DataFrames (`frames`, ``results.load``), judge agreement (`agreement`) and training data (`training_data`).

```python
from mathusereval import results
frames = results.load("results/")   # .items: one row per answer; .runs: one row per run
```
"""

from .frames import Results, load
from .runs import StoredAnswer, collect_runs, find_runs, iter_answers, load_run, read_manifest, verify_run

__all__ = [
    "Results",
    "StoredAnswer",
    "collect_runs",
    "find_runs",
    "iter_answers",
    "load",
    "load_run",
    "read_manifest",
    "verify_run",
]
