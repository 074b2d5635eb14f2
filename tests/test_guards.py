"""Run-health guards: a run whose answers are mostly cut off (or state no answer) stops early in one line with
exit 3, keeps what it stored, and the same command with the guard raised continues."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import run_cli
from .judge_server import ScriptedServer

TASK = """
import mathusereval as mue

def load(data_dir):
    samples = [mue.Sample("long", f"q{i}", mue.user_turn(f"problem {i}"), "7") for i in range(40)]
    return mue.LoadedData(samples, sha256="3" * 64, source="inline")

mue.register("tasks", "long", mue.Task("long", "1", load, ("answer",), mue.accuracy))
"""


def _stored(root: Path) -> int:
    path = root / "results" / "m" / "long" / "generations.jsonl"
    return sum(1 for line in path.read_text().splitlines() if json.loads(line).get("kind") == "generation")


def test_a_run_of_truncated_answers_stops_at_its_guard_and_continues_when_raised(tmp_path: Path) -> None:
    (tmp_path / "task.py").write_text(TASK)

    def cut(body: dict[str, Any], _attempt: int) -> tuple[str, str]:
        return "Let me think step by step. First, we", "length"  # every answer runs out of tokens

    with ScriptedServer(cut) as server:
        args = ["--include", "task.py", "--tasks", "long", "--base-url", server.url, "--model", "m", "--quiet"]
        args += ["--concurrency", "2", "--guard-min-answers", "10"]
        stopped = run_cli(*args, "--max-truncated", "0.5", cwd=tmp_path)
        assert stopped.returncode == 3, stopped.stderr
        line = stopped.stderr.strip().splitlines()[-1]
        assert line.startswith("mue-eval: stopped: m/long: --max-truncated 0.5 tripped: 10 of the last 10 answers")
        assert "(items q" in line and "--max-truncated raised" in line
        kept = _stored(tmp_path)
        assert 10 <= kept < 40  # stopped early; what was stored stays
        sent = len(server.bodies)
        again = run_cli(*args, "--max-truncated", "1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"40 answers ({kept} reused)" in again.stderr and len(server.bodies) - sent == 40 - kept


def test_answers_without_a_final_answer_trip_the_no_answer_guard(tmp_path: Path) -> None:
    (tmp_path / "task.py").write_text(TASK)
    with ScriptedServer(lambda body, _: "I am not sure how to solve this.") as server:
        args = ["--include", "task.py", "--tasks", "long", "--base-url", server.url, "--model", "m", "--quiet"]
        stopped = run_cli(*args, "--max-no-answer", "0.2", "--guard-min-answers", "5", cwd=tmp_path)
    assert stopped.returncode == 3 and "--max-no-answer 0.2 tripped" in stopped.stderr, stopped.stderr


def test_a_guard_out_of_range_is_one_line(tmp_path: Path) -> None:
    result = run_cli("--max-errors", "1.5", cwd=tmp_path)
    assert result.returncode == 2 and "--max-errors is a share of answers between 0 and 1" in result.stderr
