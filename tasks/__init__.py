"""Built-in tasks; importing this package registers them. One module per benchmark."""

from . import aime24, alignbench, amc23, demo, gsm8k, hendrycks_math, math_user_eval

__all__ = ["aime24", "alignbench", "amc23", "demo", "gsm8k", "hendrycks_math", "math_user_eval"]
