"""``mue-eval``: one module per command (`main` dispatches), shared option groups in `options`."""

from .main import entry, main

__all__ = ["entry", "main"]
