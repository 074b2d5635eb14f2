"""Built-in tasks; importing this package registers them. One module per benchmark."""

from . import alignbench, demo, gsm8k, hendrycks_math, math_user_eval

__all__ = ["alignbench", "demo", "gsm8k", "hendrycks_math", "math_user_eval"]
