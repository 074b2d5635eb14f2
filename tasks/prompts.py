"""Prompt templates shared by several tasks (each task module names the one it uses)."""

BOXED_COT = "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
"""Zero-shot chain of thought with a boxed final answer: the de-facto chat prompt for GSM8K/MATH
(Qwen2.5-Math and DeepSeek-Math evaluations use this wording)."""
