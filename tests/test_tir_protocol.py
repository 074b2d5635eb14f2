"""The pure parts of the TIR protocol against Qwen2.5-Math @a45202bd (evaluation/math_eval.py,
trajectory.py, python_executor.py): when a program runs, which program, what the model is shown, and the
stored step records; one chain through the real sandbox."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from mathusereval.errors import DataError
from mathusereval.tir.protocol import (
    MAX_CALLS_NOTE,
    MAX_FUNC_CALLS,
    STOP,
    SYSTEM_PROMPT,
    ToolStep,
    continue_reply,
    extract_program,
    format_output,
    next_action,
    output_text,
    replay,
)
from mathusereval.tir.sandbox import ExecResult, Limits, Sandbox


def ok(stdout: str) -> ExecResult:
    return ExecResult(stdout=stdout, error="", exit_status=0, seconds=0.05)


def failed(error: str, stdout: str = "") -> ExecResult:
    return ExecResult(stdout=stdout, error=error, exit_status=1, seconds=0.05)


def test_the_prompt_and_the_stop_sequence_are_upstreams() -> None:
    assert SYSTEM_PROMPT == (
        "Please integrate natural language reasoning with programs to solve the problem above, "
        "and put your final answer within \\boxed{}."
    )
    assert STOP == ("```output",) and MAX_FUNC_CALLS == 4


def test_a_program_runs_only_when_the_segment_ends_in_code_without_a_box() -> None:
    reply = "Let me compute.\n```python\nprint(2 + 3)\n```"
    assert next_action(reply) == "print(2 + 3)\n"
    assert next_action(reply + "\n\n") == "print(2 + 3)\n"  # upstream rstrip()s each segment
    assert next_action("The answer is \\boxed{5}.\n```python\nprint(5)\n```") is None
    assert next_action("So it is 5.") is None
    assert next_action("```python\nprint(1)\n```\nand then some prose") is None
    # only this step's segment is checked for a box: an earlier output that printed one does not end the chain
    earlier = "```python\nprint('\\\\boxed{1}')\n```\n```output\n\\boxed{1}\n```\n"
    segment = "Now the square.\n```python\nprint(4)\n```"
    assert next_action(earlier + segment, segment) == "\nprint(4)\n"  # the earlier program, its print dropped


def test_the_program_accumulates_earlier_successful_programs() -> None:
    """trajectory.extract_program: successful earlier programs rerun without their print lines, failed ones
    keep only their imports, the last program runs whole."""
    reply = (
        "First.\n```python\nimport math\nx = math.factorial(5)\nprint(x)\n```\n```output\n120\n```\n"
        "Oops.\n```python\nfrom sympy import symbols\ny = 1 / 0\n```\n"
        "```output\nZeroDivisionError: division by zero\n```\n"
        "Again.\n```python\nprint(x + 1)\n```"
    )
    assert next_action(reply, "Again.\n```python\nprint(x + 1)\n```") == (
        "from sympy import symbols\nimport math\nx = math.factorial(5)\n\nprint(x + 1)\n"
    )
    assert extract_program("```python\nx = 1\n```python\n```") == "raise ValueError('Invalid trajectory')"
    assert extract_program("no code at all") == ""


def test_what_the_model_is_shown() -> None:
    assert format_output(ok("42\n")) == "\n```output\n42\n```\n"
    assert output_text(ok("")) == "Done"  # upstream: the report when the result is empty
    assert output_text(failed("NameError: name 'x' is not defined", stdout="partial")) == (
        "NameError: name 'x' is not defined"  # a failed program's result is empty upstream
    )
    timeout = ExecResult(stdout="", error="Timeout Error", exit_status=-9, timed_out=True, seconds=5.0)
    assert output_text(timeout) == "Timeout Error"
    long = output_text(ok("a" * 300 + "b" * 300))
    assert long == "a" * 200 + "..." + "b" * 200  # python_executor.truncate


def test_the_chain_ends_after_four_calls() -> None:
    reply = ""
    for calls in range(1, MAX_FUNC_CALLS + 1):
        reply = continue_reply(reply + "```python\nprint(1)\n```", ok("1\n"), calls)
        assert reply.endswith(MAX_CALLS_NOTE) == (calls == MAX_FUNC_CALLS)
    assert reply.count("```output\n1\n```") == 4
    assert MAX_CALLS_NOTE == "\nReach max function call limit."


def test_steps_round_trip_and_replay_the_reply() -> None:
    steps = [
        ToolStep.of("Compute.\n```python\nprint(6 * 7)\n```", "print(6 * 7)\n", ok("42\n")),
        ToolStep("So the answer is \\boxed{42}."),
    ]
    stored = [json.loads(json.dumps(step.to_json())) for step in steps]
    assert [ToolStep.from_json(s) for s in stored] == steps
    assert steps[0].output == "42" and steps[0].exit_status == 0
    expected = continue_reply("Compute.\n```python\nprint(6 * 7)\n```", ok("42\n"), 1) + steps[1].text
    assert replay(steps) == expected


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ([], "object"),
        ({"code": None, "seconds": 0}, "'text'"),
        ({"text": "t", "code": 3, "seconds": 0}, "'code'"),
        ({"text": "t", "exit_status": True, "seconds": 0}, "'exit_status'"),
        ({"text": "t", "exit_status": "0", "seconds": 0}, "'exit_status'"),
        ({"text": "t", "seconds": "1"}, "'seconds'"),
        ({"text": "t", "seconds": math.inf}, "'seconds'"),
        ({"text": "t", "seconds": -1}, "'seconds'"),
    ],
)
def test_stored_steps_are_checked(record: object, field: str) -> None:
    with pytest.raises(DataError, match=field):
        ToolStep.from_json(record)


@pytest.mark.cli
def test_a_chain_through_the_sandbox() -> None:
    """A scripted model: state carries over as upstream carries it (earlier successful programs rerun, a
    failed one's lines dropped), an error is fed back as its last line, and a boxed segment ends the chain."""
    segments = [
        "Factor it.\n```python\nfrom sympy import factorint\nf = factorint(360)\nprint(f)\n```",
        "Count divisors.\n```python\nd = 1\nfor e in f.values():\n    d *= e + 1\nprint(d / zero)\n```",
        "Fix the typo.\n```python\nd = 1\nfor e in f.values():\n    d *= e + 1\nprint(d)\n```",
        "So 360 has \\boxed{24} divisors.",
    ]

    async def chain() -> tuple[str, list[ToolStep]]:
        sandbox = Sandbox(Limits(wall_seconds=20.0))
        reply, steps = "", []
        for calls, segment in enumerate(segments, start=1):
            reply += segment.rstrip()
            program = next_action(reply, segment)
            if program is None:
                steps.append(ToolStep(segment))
                break
            result = await sandbox.run(program)
            steps.append(ToolStep.of(segment, program, result))
            reply = continue_reply(reply, result, calls)
        return reply, steps

    reply, steps = asyncio.run(chain())
    assert [s.output for s in steps] == ["{2: 3, 3: 2, 5: 1}", "NameError: name 'zero' is not defined", "24", None]
    assert [s.exit_status for s in steps] == [0, 1, 0, None]
    assert replay(steps) == reply and reply.endswith("\\boxed{24} divisors.")
