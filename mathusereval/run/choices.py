"""The values a few options may take, in one place: the CLI offers them as argparse ``choices`` and the
code that acts on them checks against the same constants. Standard library only (the parser imports it)."""

THINK_MODES = ("strip", "keep")
"""``--think``: grade what follows ``</think>`` (strip) or the whole reply (keep); `mathusereval.run.postprocess`."""
LIMIT_ORDERS = ("spread", "file")
"""``--limit-order``: which items ``--limit`` takes; `mathusereval.run.selection`."""
PARITY_MODES = ("none", "upstream")
"""``--parity``: ``upstream`` aggregates judge scores as upstream code does; `mathusereval.results.scoring`."""
LOG_TARGETS = ("tensorboard", "wandb")
"""``--log-to``: `mathusereval.run.tracking`."""
RAY_DISPATCH = ("stream", "batch")
"""``--ray-dispatch``: `mathusereval.backends.options.RayOptions`."""
