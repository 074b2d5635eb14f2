"""A real local model as the judge: SmolLM2-135M-Instruct through llama.cpp, on MathUserEval and AlignBench.

Real judge prompts go out, real texts come back and are stored, and whatever the small model writes is
recorded faithfully: a score in 1–10, or a parse failure with its reason; never a silent score. (A 135M
model is not a competent judge; this checks the plumbing with a real engine, not judgment quality.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mathusereval.backends import ModelSpec
from mathusereval.graders.judge import ALIGNBENCH_JUDGE
from mathusereval.records import Generation, Sample
from mathusereval.run.judging import JudgeRole, JudgeSettings

from .conftest import run_cli

pytestmark = pytest.mark.slow
JUDGE = ["--judge", "smollm2-135m-instruct", "--judge-max-tokens", "48", "--quiet"]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_judged_run(run: Path, expected_items: int, attempts: int) -> None:
    calls, grades = _lines(run / "judgments.jsonl"), _lines(run / "grades.jsonl")
    judged = [g for g in grades if g["grader"] == "alignbench-judge"]
    assert len(judged) == expected_items
    for grade in judged:
        if grade["score"] is None:
            assert grade["error"].startswith("unparseable judgment (") and grade["details"]["parse_failure"]
        else:
            assert 1 <= grade["score"] <= 10 and grade["error"] is None
    assert expected_items <= len(calls) <= expected_items * attempts
    for call in calls:
        reply = call["generation"]
        assert reply["error"] is None and reply["text"].strip()
        assert reply["usage"]["prompt_tokens"] > 800  # the whole multi-dimension prompt went in
    # each stored reply answers exactly the prompt the judge renders for that sample and answer
    samples = {s["id"]: Sample.from_json(s) for s in _lines(run / "samples.jsonl")}
    answers = {g["sample_id"]: Generation.from_json(g) for g in _lines(run / "generations.jsonl")}
    role = JudgeRole(JudgeSettings(ModelSpec("llamacpp", "smollm2-135m-instruct"), max_tokens=48), backend=None)  # type: ignore[arg-type]
    for call in calls:
        messages = ALIGNBENCH_JUDGE.messages(samples[call["sample_id"]], answers[call["sample_id"]])
        params = role.settings.params(call["attempt"])
        assert call["key"] == role.key(ALIGNBENCH_JUDGE, messages, params, call["attempt"])
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    usage = summary["judge_usage"]["alignbench-judge"]
    assert usage["calls"] == len(calls) and usage["parse_failures"] == summary["counts"]["parse_failures"]
    assert summary["counts"]["graded"] + summary["counts"]["parse_failures"] == expected_items


def _exit_says_whether_anything_was_scored(result: subprocess.CompletedProcess[str], run: Path) -> None:
    """A 135M judge rarely writes a parseable score: with none, the run says so and exits 1, never 0."""
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    headline = summary["metrics"][0]
    if headline["n"] == 0:
        assert result.returncode == 1 and "no gradeable result" in result.stderr, result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_mathusereval_answers_judged_by_a_real_local_model(tmp_path: Path, shared_data: Path) -> None:
    rows = _lines(shared_data / "mathusereval/model_answer/gpt-4-1106-preview.jsonl")
    shortest = sorted(rows, key=lambda r: len(r["question"]) + len(r["reference"]) + len(r["answer"]))[:2]
    subset = tmp_path / "two_answers.jsonl"
    subset.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in shortest), encoding="utf-8")
    imported = run_cli("import", str(subset), "--task", "mathusereval", "--data-dir", str(shared_data), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    run = tmp_path / "results/gpt-4-1106-preview/mathusereval"
    result = run_cli("grade", str(run), *JUDGE, "--judge-retries", "1", cwd=tmp_path)
    _exit_says_whether_anything_was_scored(result, run)
    assert "judge alignbench-judge: 2 to judge" in result.stderr
    _check_judged_run(run, expected_items=2, attempts=2)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["judges"]["alignbench-judge"]["judge_backend"] == "llamacpp"


def test_alignbench_generated_and_judged_by_real_local_models(tmp_path: Path, shared_data: Path) -> None:
    result = run_cli(
        "--tasks", "alignbench", "--limit", "2", "--max-tokens", "24", "--threads", "1",
        "--data-dir", str(shared_data), *JUDGE, "--judge-retries", "0", cwd=tmp_path,
    )  # fmt: skip
    run = tmp_path / "results/smollm2-135m-instruct/alignbench"
    _exit_says_whether_anything_was_scored(result, run)
    assert len(_lines(run / "generations.jsonl")) == 2
    _check_judged_run(run, expected_items=2, attempts=1)
