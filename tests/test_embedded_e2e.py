"""The real embedded model (SmolLM2-135M-Instruct through llama.cpp) end to end, including kill -9 + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import MUE_EVAL, run_cli

pytestmark = pytest.mark.slow
FAST = ["--threads", "1", "--max-tokens", "48", "--quiet"]  # one thread: pytest shares the two cores


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_demo_run_then_leaderboard_from_results_alone(tmp_path: Path) -> None:
    result = run_cli("--limit", "3", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "results" / "smollm2-135m-instruct" / "demo"
    gens, grades = _lines(run / "generations.jsonl"), _lines(run / "grades.jsonl")
    assert len(gens) == 3 and all(g["text"] and g["error"] is None for g in gens)
    assert all(g["usage"]["completion_tokens"] > 0 for g in gens)  # type: ignore[index]
    assert len(grades) == 3 and {g["grader"] for g in grades} == {"answer"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backend"] == "llamacpp" and manifest["backend_config"]["path"].endswith(".gguf")
    assert len(manifest["data_sha256"]) == 64 and len(manifest["prompt_sha256"]) == 64 and manifest["finished_at"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"]["samples"] == 3 and summary["metrics"][0]["name"] == "accuracy"
    assert "smollm2-135m-instruct" in result.stdout and "(n=3)" in result.stdout

    board = run_cli("leaderboard", "results", "--markdown", "board.md", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert "(n=3)" in board.stdout
    markdown = (tmp_path / "board.md").read_text()
    assert markdown.startswith("| model | demo |") and "smollm2-135m-instruct" in markdown

    again = run_cli("--limit", "3", *FAST, cwd=tmp_path)  # everything done: nothing regenerated
    assert again.returncode == 0 and "(3 reused)" in again.stderr
    assert len(_lines(run / "generations.jsonl")) == 3


def test_killed_run_resumes_without_regenerating(tmp_path: Path) -> None:
    args = [str(MUE_EVAL), "--limit", "6", *FAST]
    run = tmp_path / "results" / "smollm2-135m-instruct" / "demo"
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while len(_lines(run / "generations.jsonl")) < 2:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {g["sample_id"]: g for g in _lines(run / "generations.jsonl")}
    assert 2 <= len(done_before) < 6 and not (run / "summary.json").exists()

    result = run_cli("--limit", "6", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"({len(done_before)} reused)" in result.stderr
    gens = _lines(run / "generations.jsonl")
    assert Counter(g["sample_id"] for g in gens) == Counter(f"demo-{i:02d}" for i in range(1, 7))
    assert all(done_before[g["sample_id"]] == g for g in gens[: len(done_before)])  # old lines untouched
    grades = _lines(run / "grades.jsonl")
    assert Counter(g["sample_id"] for g in grades) == Counter(f"demo-{i:02d}" for i in range(1, 7))
    assert json.loads((run / "summary.json").read_text())["counts"]["generations"] == 6
