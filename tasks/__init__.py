"""Built-in tasks; importing this package registers them. One module per benchmark."""

from . import demo, gsm8k, hendrycks_math

__all__ = ["demo", "gsm8k", "hendrycks_math"]
