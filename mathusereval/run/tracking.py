"""``--log-to tensorboard|wandb``: each task's metrics and the run's identity sent to an experiment tracker.

Optional (``pip install 'mathusereval[tensorboard]'`` or ``[wandb]``). TensorBoard event files go to
``<out>/tensorboard/<run label>/``; W&B runs go to the project ``mathusereval`` (``$WANDB_PROJECT``), one per
run label, honouring ``$WANDB_MODE`` (``offline`` writes under ``<out>/wandb``). The step of every scalar is
the checkpoint's step (`mathusereval.results.labels.step_of`: given in a ``--config`` sweep or by the watcher,
else the number in the model's name, ``checkpoint-1200`` -> 1200), else 0, so a sweep draws a curve.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import RunResult, safe_name
from ..results.labels import step_of

Track = Callable[[Sequence[RunResult]], None]


def _scalars(result: RunResult) -> dict[str, float]:
    return {f"{result.manifest.task}/{m.name}": m.value for m in result.metrics if m.value == m.value}


def _identity(result: RunResult) -> dict[str, Any]:
    m = result.manifest
    return {"model": m.model, "backend": m.backend, "name": m.name, "overrides": m.overrides, "settings": m.settings,
            "fingerprint": m.fingerprint, "task": m.task}  # fmt: skip


class _TensorBoard:
    def __init__(self, out: Path) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                "--log-to tensorboard needs tensorboardX: pip install 'mathusereval[tensorboard]'"
            ) from exc
        self.writer_class = SummaryWriter
        self.out = out / "tensorboard"

    def log(self, result: RunResult) -> None:
        writer = self.writer_class(logdir=str(self.out / safe_name(result.row, "run")))
        step = step_of(result) or 0
        for tag, value in _scalars(result).items():
            writer.add_scalar(tag, value, step)
        writer.add_text(f"{result.manifest.task}/identity", repr(_identity(result)), step)
        writer.close()

    def close(self) -> None:
        pass


class _WandB:
    def __init__(self, out: Path) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise ConfigError("--log-to wandb needs wandb: pip install 'mathusereval[wandb]'") from exc
        self.wandb = wandb
        self.out = out

    def log(self, result: RunResult) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        run = self.wandb.init(
            project=os.environ.get("WANDB_PROJECT", "mathusereval"),
            name=result.row,
            group=result.manifest.task,
            config=_identity(result),
            dir=str(self.out),
            reinit="create_new",
        )
        run.log({**_scalars(result), "checkpoint_step": step_of(result) or 0})
        run.finish()

    def close(self) -> None:
        pass


@contextmanager
def trackers(names: Sequence[str], out: Path) -> Iterator[Track]:
    """A function that logs finished runs to every named tracker (none: it does nothing)."""
    kinds: dict[str, type[_TensorBoard] | type[_WandB]] = {"tensorboard": _TensorBoard, "wandb": _WandB}
    made = [kinds[name](out) for name in dict.fromkeys(names)]

    def track(results: Sequence[RunResult]) -> None:
        for tracker in made:
            for result in results:
                tracker.log(result)

    try:
        yield track
    finally:
        for tracker in made:
            tracker.close()
