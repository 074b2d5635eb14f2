"""``mue-eval``: one module per command (`main` dispatches), shared option groups in `options`."""

from .main import main

__all__ = ["main"]
