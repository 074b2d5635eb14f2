"""The pure parts of tool-integrated reasoning, as Qwen2.5-Math evaluates it (no I/O here).

Upstream: QwenLM/Qwen2.5-Math @a45202bd (the commit our task data is pinned to):
- ``README.md`` (the TIR example): the system turn `SYSTEM_PROMPT`;
- ``evaluation/math_eval.py`` (``main``, the ``for epoch in range(max_func_call)`` loop): generation stops
  at ``"```output"``; each generated segment is ``rstrip()``-ed and appended; a segment without
  ``"boxed"`` that ends with ``"```"`` gets its program run (``extract_program`` of the text so far), and
  ``f"\\n```output\\n{exec_result}\\n```\\n"`` appended, where ``exec_result`` is the program's result or,
  when that is empty, its report; ``max_func_call = 4``, and after the last call
  ``"\\nReach max function call limit."`` is appended and the chain ends;
- ``evaluation/trajectory.py`` (``text_to_trajectory``, ``is_execution_success``, ``extract_program``):
  the program run is every earlier program whose output looks successful, their ``print(`` lines dropped,
  then the last one; failed programs contribute only their import lines;
- ``evaluation/python_executor.py`` (``batch_apply``, ``truncate``): result and report are ``strip()``-ed
  and cut to 400 characters (first 200, ``"..."``, last 200); a program past its time reports
  ``"Timeout Error"``; success reports ``"Done"``.

Only the stop sequence upstream lists for its tool-integrated prompts is kept: ``"\\n\\n---"`` separates
its few-shot demonstrations, and the Qwen2.5-Math chat prompt has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mathusereval.errors import DataError
from mathusereval.tir.sandbox import ExecResult

SYSTEM_PROMPT = (
    "Please integrate natural language reasoning with programs to solve the problem above, "
    "and put your final answer within \\boxed{}."
)
STOP = ("```output",)
MAX_FUNC_CALLS = 4
MAX_CALLS_NOTE = "\nReach max function call limit."
SUCCESS_REPORT = "Done"
_ERROR_WORDS = ("error", "exception", "no algorithms", "cannot", "nan", "...")  # trajectory.is_execution_success
_INVALID_TRAJECTORY = "raise ValueError('Invalid trajectory')"


class _Invalid(Exception):
    pass


def _trajectory(text: str) -> list[tuple[str, str]]:
    """``text_to_trajectory``: (role, content) pairs, role one of rationale, program, output."""
    steps: list[tuple[str, str]] = []
    role, content = "rationale", ""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line == "```python":
            if role != "rationale":
                raise _Invalid
            if content:
                steps.append((role, content))
                content = ""
            role = "program"
        elif role == "program" and line == "```":
            if not content:
                raise _Invalid
            steps.append((role, content))
            content, role = "", "output"
        elif role == "output" and line.startswith("```output"):
            if content:
                raise _Invalid
        elif role == "output" and line == "```":
            steps.append((role, content))
            content, role = "", "rationale"
        else:
            content += line + ("\n" if i < len(lines) - 1 else "")
    if content:
        steps.append((role, content))
    return steps


def _succeeded(output: str) -> bool:
    return not any(word in output.lower() for word in _ERROR_WORDS)


def extract_program(text: str) -> str:
    """The program upstream runs for a reply that ends in a code block (``trajectory.extract_program``)."""
    try:
        steps = _trajectory(text)
    except _Invalid:
        return _INVALID_TRAJECTORY
    programs: list[str] = []
    imports: list[str] = []
    for i, (role, content) in enumerate(steps):
        if role != "program":
            continue
        if i < len(steps) - 1:
            if steps[i + 1][0] != "output":
                return _INVALID_TRAJECTORY  # upstream asserts it: a closed program is always followed by its output
            if _succeeded(steps[i + 1][1].strip()):
                programs.append(content)
            else:
                imports += [ln for ln in content.split("\n") if ln.startswith(("import", "from"))]
        else:
            programs.append(content)
    if not programs:
        programs.append("")
    if imports:
        programs[0] = "\n".join(imports) + "\n" + programs[0]
    for i, program in enumerate(programs[:-1]):
        programs[i] = "\n".join(ln for ln in program.split("\n") if not ln.strip().startswith("print("))
    return "\n".join(programs)


def next_action(reply_so_far: str, segment: str | None = None) -> str | None:
    """The program to run next, or None when the answer is final.

    `reply_so_far` is the assistant text so far (each segment ``rstrip()``-ed, each output appended);
    `segment` is what the model wrote in this step (by default the whole reply: the first step). As
    upstream, only the segment is checked: a program runs when it has no ``boxed`` and ends with ``````.
    """
    last = (reply_so_far if segment is None else segment).rstrip()
    if "boxed" in last or not last.endswith("```"):
        return None
    return extract_program(reply_so_far)


def truncate(text: str, max_length: int = 400) -> str:
    """``PythonExecutor.truncate``: long text keeps its first and last 200 characters."""
    half = max_length // 2
    return text[:half] + "..." + text[-half:] if len(text) > max_length else text


def output_text(result: ExecResult) -> str:
    """What the model is shown: the program's result, or, when that is empty, its report."""
    # Upstream's result is empty when the program raised or timed out (python_executor.execute's except).
    stdout = "" if result.error else result.stdout
    return truncate(stdout.strip()) or truncate((result.error or SUCCESS_REPORT).strip())


def format_output(result: ExecResult) -> str:
    return f"\n```output\n{output_text(result)}\n```\n"


def continue_reply(reply_so_far: str, result: ExecResult, calls_made: int) -> str:
    """The reply with the program's output appended; after the last allowed call, upstream's note."""
    reply = reply_so_far + format_output(result)
    return reply + MAX_CALLS_NOTE if calls_made >= MAX_FUNC_CALLS else reply


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One step of a chain, as the generation record stores it: what the model wrote and, when it ended
    in a program, the program run, the output shown back, the exit status and the seconds it took."""

    text: str
    code: str | None = None
    output: str | None = None
    exit_status: int | None = None
    seconds: float = 0.0

    @classmethod
    def of(cls, text: str, code: str, result: ExecResult) -> ToolStep:
        return cls(text, code, output_text(result), result.exit_status, result.seconds)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "code": self.code,
            "output": self.output,
            "exit_status": self.exit_status,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: object) -> ToolStep:
        """From a stored record (hostile: every field is checked; the error names the field)."""
        if not isinstance(data, dict):
            raise DataError(f"tool step: expected an object, got {type(data).__name__}")

        def get(name: str, kinds: tuple[type, ...], optional: bool) -> Any:
            value = data.get(name)
            if value is None and optional:
                return None
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise DataError(f"tool step: field {name!r} is {type(value).__name__}, not {kinds[0].__name__}")
            return value

        seconds = float(get("seconds", (int, float), False))
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_STEP_SECONDS:
            raise DataError(f"tool step: field 'seconds' is {seconds!r}")
        return cls(
            text=get("text", (str,), False),
            code=get("code", (str,), True),
            output=get("output", (str,), True),
            exit_status=get("exit_status", (int,), True),
            seconds=seconds,
        )


MAX_STEP_SECONDS = 86400.0
"""A stored step's seconds beyond a day are a corrupt record (the wall limit is seconds)."""


def replay(steps: list[ToolStep]) -> str:
    """The assistant text a chain of stored steps stands for (a resumed chain continues from here)."""
    return _replayed(steps)[0]


def model_spans(steps: list[ToolStep]) -> list[tuple[int, int]]:
    """Where each step's own text lies in ``replay(steps)``: the rest is what the harness appended (program
    outputs, upstream's note), which the model did not write."""
    return _replayed(steps)[1]


def harness_spans(steps: list[ToolStep]) -> list[tuple[int, int]]:
    """Where ``replay(steps)`` holds text the harness wrote (program outputs, upstream's note): the spans a
    trainer masks out of the loss, since the model did not write them."""
    reply, spans = _replayed(steps)
    ends = [end for _, end in spans]
    starts = [start for start, _ in spans[1:]] + [len(reply)]
    return [(end, start) for end, start in zip(ends, starts, strict=True) if start > end]


def _replayed(steps: list[ToolStep]) -> tuple[str, list[tuple[int, int]]]:
    reply, spans = "", []
    for calls, step in enumerate(steps, start=1):
        start = len(reply)
        reply += step.text.rstrip()
        spans.append((start, len(reply)))
        if step.code is not None:
            reply += f"\n```output\n{step.output or ''}\n```\n" + (MAX_CALLS_NOTE if calls >= MAX_FUNC_CALLS else "")
    return reply, spans


__all__ = [
    "MAX_CALLS_NOTE",
    "MAX_FUNC_CALLS",
    "STOP",
    "SYSTEM_PROMPT",
    "ToolStep",
    "continue_reply",
    "extract_program",
    "format_output",
    "harness_spans",
    "model_spans",
    "next_action",
    "output_text",
    "replay",
]
