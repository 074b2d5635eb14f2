"""mathusereval inside lm-evaluation-harness: task YAMLs whose hooks call back into this package.

lm-eval 0.4.x finds plugin tasks only through directories (``--include_path``; no entry points,
docs/design-notes.md §6), so the YAMLs ship as package data and `task_dir` says where they are.
Every hook is a ``!function`` reference into `mathusereval.lmeval.hooks`: the data loaders, prompts,
graders and aggregations are ours, not copies. ``mue-eval lm-eval ARGS`` runs lm-eval's CLI with the
directory added.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError

CORE_TASK_NAMES = (
    "mathusereval_gsm8k",
    "mathusereval_math",
    "mathusereval_math500",
    "mathusereval_mathusereval",
    "mathusereval_alignbench",
)
SUITE_TASK_NAMES = tuple(
    f"mathusereval_{name}"
    for name in ("minerva_math", "olympiadbench", "college_math", "gaokao2023en", "mmlu_stem", "sat_math", "aqua",
                 "svamp", "asdiv", "mawps", "carp_en", "cmath", "cn_middle_school", "gaokao2024_I", "gaokao2024_II",
                 "gaokao2024_mix", "gaokao_math_cloze", "gaokao_math_qa")
)  # fmt: skip
"""The Qwen2.5-Math suite (tag ``mathusereval_math_suite``; group ``mathusereval_math_suite_en``)."""
TASK_NAMES = CORE_TASK_NAMES + SUITE_TASK_NAMES


def task_dir() -> Path:
    """The directory to pass to lm-eval as ``--include_path``."""
    return Path(__file__).resolve().parent / "tasks"


def _only_ours() -> None:
    """Index only our YAMLs: lm-eval's CLI has no switch for it (issue #1801), and indexing its ~14,000
    built-in YAMLs takes about 20 s. Its commands build ``lm_eval.tasks.TaskManager`` at call time, so a
    subclass that defaults ``include_defaults`` to False, put in its place, is enough."""
    import lm_eval.tasks

    base = lm_eval.tasks.TaskManager

    class OursOnly(base):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("include_defaults", False)
            super().__init__(*args, **kwargs)

    lm_eval.tasks.TaskManager = OursOnly


def run_lm_eval(args: list[str], only_ours: bool = False) -> int:
    """lm-eval's own CLI with `args`, our task directory added to ``run``/``ls``/``validate``."""
    try:
        from lm_eval.__main__ import cli_evaluate
    except ImportError as exc:
        raise ConfigError("mue-eval lm-eval needs lm-eval: pip install 'mathusereval[lm-eval]'") from exc
    if only_ours:
        _only_ours()
    args = list(args)
    if args and args[0] in ("run", "ls", "validate") and "--include_path" not in args:
        args += ["--include_path", str(task_dir())]
    sys.argv = ["lm-eval", *args]
    try:
        cli_evaluate()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0
