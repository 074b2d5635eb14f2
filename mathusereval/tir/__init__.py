"""Tool-integrated reasoning (issue 33): model-written programs run in a sandbox, and the pure parts of
the protocol that feeds their output back (Qwen2.5-Math's ``evaluation/math_eval.py``)."""
