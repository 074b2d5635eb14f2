"""One invocation, one schedule: the tasks of a run share the engine (no task waits for another's tail), judge
calls start while answers are still coming, and each task's results, resume, interrupt and exit code are
what they were when tasks ran one after another."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .conftest import run_cli, start_cli, wait_for_lines
from .judge_server import ScriptedServer

TASKS = """
import mathusereval as mue

def make(name, count):
    def load(data_dir):
        samples = [mue.Sample(name, f"{i}", mue.user_turn(f"[{name}] problem {i}"), "7") for i in range(count)]
        return mue.LoadedData(samples, sha256="2" * 64, source="inline")
    mue.register("tasks", name, mue.Task(name, "1", load, ("answer",), mue.accuracy))

for name in ("alpha", "beta", "gamma"):
    make(name, 12)
"""
_TASK = re.compile(r"\[(\w+)\] problem (\d+)")


class Recorder:
    """What a scripted server saw: each request's task, start and end; the most in flight at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight: list[str] = []
        self.spans: list[tuple[str, float, float]] = []
        self.mixed = False
        self.most = 0

    def __call__(self, body: dict[str, Any], _attempt: int) -> str:
        found = _TASK.search(body["messages"][-1]["content"])
        task = found.group(1) if found else "judge"
        start = time.monotonic()
        with self.lock:
            self.in_flight.append(task)
            self.most = max(self.most, len(self.in_flight))
            self.mixed |= len(set(self.in_flight)) > 1
        # one item in four is slow, as long answers are: a task that waited for its own would leave slots idle
        slow = found is not None and int(found.group(2)) % 4 == 3
        time.sleep(self.delay * (4 if slow else 1))
        with self.lock:
            self.in_flight.remove(task)
            self.spans.append((task, start, time.monotonic()))
        return "The answer is \\boxed{7}."


def test_the_tasks_of_one_invocation_share_the_engine(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    recorder = Recorder(0.15)
    with ScriptedServer(recorder) as server:
        args = ["--include", "tasks.py", "--tasks", "alpha,beta,gamma", "--base-url", server.url, "--model", "m"]
        result = run_cli(*args, "--concurrency", "6", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(recorder.spans) == 36 and recorder.most == 6
    assert recorder.mixed, "requests of several tasks were never in flight at once"
    # the limit was reached while more than 6 requests were still to be sent: tasks did not run one by one
    starts = sorted(start for _, start, _ in recorder.spans)
    full_at = _first_time_full(recorder.spans, 6)
    assert full_at is not None and sum(1 for s in starts if s > full_at) > 6
    for task in ("alpha", "beta", "gamma"):
        summary = json.loads((tmp_path / "results" / "m" / task / "summary.json").read_text())
        assert summary["counts"]["graded"] == 12 and summary["metrics"][0]["value"] == 1.0


def _first_time_full(spans: list[tuple[str, float, float]], limit: int) -> float | None:
    events = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
    level = 0
    for when, step in events:
        level += step
        if level >= limit:
            return when
    return None


def test_a_judged_run_judges_while_answers_still_come(tmp_path: Path, shared_data: Path) -> None:
    """The judge on the model's own server: the first judge call starts before the last answer is in, and
    the two share the server's capacity (never more than --concurrency in flight)."""
    seen: list[tuple[str, float, float]] = []
    lock = threading.Lock()
    in_flight, most = [0], [0]

    def script(body: dict[str, Any], _attempt: int) -> str:
        start = time.monotonic()
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        judge = body["model"] == "judge"
        time.sleep(0.05 if judge else 0.2)
        with lock:
            in_flight[0] -= 1
            seen.append(("judge" if judge else "model", start, time.monotonic()))
        return "步骤正确。\n评分：[[7]]" if judge else "The answer is 42."

    with ScriptedServer(script) as server:
        args = ["--tasks", "mathusereval", "--limit", "11", "--base-url", server.url, "--model", "m"]
        args += ["--judge", "judge", "--judge-base-url", server.url, "--concurrency", "3", "--judge-concurrency", "3"]
        result = run_cli(*args, "--data-dir", str(shared_data), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first_judge = min(start for who, start, _ in seen if who == "judge")
    last_answer = max(end for who, _, end in seen if who == "model")
    assert first_judge < last_answer
    assert most[0] <= 3  # one server, one capacity
    summary = json.loads((tmp_path / "results" / "m" / "mathusereval" / "summary.json").read_text())
    assert [usage["calls"] for usage in summary["judge_usage"].values()] == [11]


def test_an_interrupt_keeps_what_every_task_finished_and_the_rerun_sends_only_the_rest(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    recorder = Recorder(0.2)
    with ScriptedServer(recorder) as server:
        args = ["--include", "tasks.py", "--tasks", "alpha,beta,gamma", "--base-url", server.url, "--model", "m"]
        args += ["--concurrency", "3", "--quiet"]
        proc = start_cli(*args, cwd=tmp_path)
        wait_for_lines(tmp_path / "results" / "m" / "beta" / "generations.jsonl", 2, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1].startswith("mue-eval: interrupted")
        stored = {t: _answers(tmp_path, t) for t in ("alpha", "beta", "gamma")}
        assert sum(stored.values()) >= 2 and sum(stored.values()) < 36
        asked_before = len(recorder.spans)
        again = run_cli(*args, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert len(recorder.spans) - asked_before <= 36 - sum(stored.values()) + 3  # at most what was in flight
    for task in ("alpha", "beta", "gamma"):
        assert _answers(tmp_path, task) == 12
        assert f"m/{task}: 12 answers ({stored[task]} reused)" in again.stderr


def _answers(root: Path, task: str) -> int:
    path = root / "results" / "m" / task / "generations.jsonl"
    if not path.exists():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return len({(r["sample_id"], r["n_index"]) for r in rows if r.get("kind") == "generation" and not r.get("error")})


def test_a_task_that_fails_its_checks_fails_before_anything_is_sent(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    recorder = Recorder(0.01)
    with ScriptedServer(recorder) as server:
        args = ["--include", "tasks.py", "--base-url", server.url, "--model", "m", "--quiet"]
        first = run_cli(*args, "--tasks", "beta", "--max-tokens", "100", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        sent = len(recorder.spans)
        # beta's stored run has other settings: refused, and alpha (first in the list) sends nothing either
        refused = run_cli(*args, "--tasks", "alpha,beta", "--max-tokens", "50", cwd=tmp_path)
    assert refused.returncode == 2 and "max_tokens" in refused.stderr
    assert len(recorder.spans) == sent
