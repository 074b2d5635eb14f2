"""The LLM verifier (--graders answer,verifier --verifier MODEL): only answers the rules reject reach the
model; both accuracies, the flipped items and their count are reported; the rule verdict stays."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_cli
from .judge_server import ScriptedServer

TASK = """
import mathusereval as mue

ITEMS = [("q0", "7"), ("q1", "12"), ("q2", "1/2"), ("q3", "3"), ("q4", "10")]


def load(data_dir):
    samples = [mue.Sample("verify-me", i, mue.user_turn(f"Problem {i}: what is it?"), ref) for i, ref in ITEMS]
    return mue.LoadedData(samples, sha256="1" * 64, source="inline")


mue.register("tasks", "verify-me", mue.Task("verify-me", "1", load, ("answer",), mue.accuracy))
"""
ANSWERS = {  # the model's replies: right, right in words (the rules miss it), right, wrong, no answer
    "q0": "The answer is \\boxed{7}.",
    "q1": "The answer is \\boxed{twelve}.",
    "q2": "The answer is \\boxed{0.5}.",
    "q3": "The answer is \\boxed{4}.",
    "q4": "I do not know how to solve this.",
}
VERDICTS = {"q1": "A", "q3": "B", "q4": "C"}
_FINAL = re.compile(r"Student's final answer:\n(.*)\n\nYour judgment", re.DOTALL)


def test_the_verifier_sees_only_rejected_answers_and_reports_flips(tmp_path: Path) -> None:
    (tmp_path / "task.py").write_text(TASK)
    asked: list[str] = []

    def script(body: dict[str, Any], _attempt: int) -> str:
        prompt = body["messages"][-1]["content"]
        if body["model"] == "checker":
            item = re.search(r"Problem (q\d)", prompt)
            assert item is not None and _FINAL.search(prompt) is not None
            asked.append(item.group(1))
            return f"Judgment: {VERDICTS[item.group(1)]}"
        return ANSWERS[re.search(r"Problem (q\d)", prompt).group(1)]  # type: ignore[union-attr]

    with ScriptedServer(script) as server:
        args = ["--include", "task.py", "--tasks", "verify-me", "--base-url", server.url, "--model", "m"]
        args += ["--graders", "answer,verifier", "--verifier", "checker", "--verifier-base-url", server.url, "--quiet"]
        first = run_cli(*args, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert sorted(asked) == ["q1", "q3", "q4"]  # q0 and q2 were settled by the rules
        again = run_cli(*args, cwd=tmp_path)
        assert again.returncode == 0 and len(asked) == 3  # nothing asked twice
    run = tmp_path / "results" / "m" / "verify-me"
    summary = json.loads((run / "summary.json").read_text())
    metrics = {m["name"]: m for m in summary["metrics"]}
    assert metrics["accuracy"]["value"] == pytest.approx(2 / 5)  # the rule verdict, never hidden
    assert metrics["verifier/accuracy"]["value"] == pytest.approx(3 / 5)
    assert metrics["verifier/flipped"]["value"] == 1
    grades = [json.loads(line) for line in (run / "grades.jsonl").read_text().splitlines()]
    verifier = {g["sample_id"]: g for g in grades if g["grader"] == "verifier"}
    assert verifier["q1"]["details"]["dimensions"] == {"flipped": 1.0} and verifier["q1"]["correct"]
    assert verifier["q0"]["details"]["rule"] in ("string match", "numeric") and "key" not in verifier["q0"]["details"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["judges"]["verifier"]["judge_model"] == "checker"


def test_the_verifier_needs_a_model_named(tmp_path: Path) -> None:
    (tmp_path / "task.py").write_text(TASK)
    result = run_cli(
        *("--include", "task.py", "--tasks", "verify-me", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"),
        *("--graders", "answer,verifier"),
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "pass --verifier MODEL" in result.stderr


@pytest.mark.slow
def test_the_embedded_model_as_verifier(tmp_path: Path) -> None:
    """A real model plays the verifier through llama.cpp: every rejected answer gets a verdict or a counted
    parse failure, and the run completes."""
    (tmp_path / "task.py").write_text(TASK)
    with ScriptedServer(
        lambda body, _a: ANSWERS[re.search(r"Problem (q\d)", body["messages"][-1]["content"]).group(1)]
    ) as server:  # type: ignore[union-attr]
        result = run_cli(
            *("--include", "task.py", "--tasks", "verify-me", "--base-url", server.url, "--model", "m"),
            *("--graders", "answer,verifier", "--verifier", "smollm2-135m-instruct", "--verifier-max-tokens", "8"),
            *("--verifier-retries", "0", "--quiet"),
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert "judge verifier: 5 to judge" in result.stderr and "2 settled" in result.stderr
    grades = [json.loads(x) for x in (tmp_path / "results/m/verify-me/grades.jsonl").read_text().splitlines()]
    assert len([g for g in grades if g["grader"] == "verifier"]) == 5


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("B", 0.0),
        ("B\n\n> The student's final answer: A", 0.0),  # the quoted answer's letter is not the verdict
        ("B.\nFinal judgment: A", 0.0),
        ("Grade: B, though A student could argue", 0.0),
        ("**A**", 1.0),
        ("Your judgment (A, B or C): C", 0.0),
        ("The answer is equivalent, so A", None),  # not where the prompt asks: a parse failure, never a flip
        ("a student might say A", None),
        ("", None),
    ],
)
def test_the_verdict_is_read_where_the_prompt_asks_for_it(reply: str, score: float | None) -> None:
    from mathusereval.graders.verifier import VERIFIER

    assert VERIFIER.parse(reply, "A").score == score


def test_a_quoted_letter_never_flips_an_item(tmp_path: Path) -> None:
    """Before, a reply `B` followed by the quoted answer `A` turned the wrong q3 right."""
    (tmp_path / "task.py").write_text(TASK)

    def script(body: dict[str, Any], _attempt: int) -> str:
        prompt = body["messages"][-1]["content"]
        if body["model"] == "checker":
            return "B\n\nThe student answered:\nA"
        return ANSWERS[re.search(r"Problem (q\d)", prompt).group(1)]  # type: ignore[union-attr]

    with ScriptedServer(script) as server:
        args = ["--include", "task.py", "--tasks", "verify-me", "--base-url", server.url, "--model", "m"]
        args += ["--graders", "answer,verifier", "--verifier", "checker", "--verifier-base-url", server.url, "--quiet"]
        assert run_cli(*args, cwd=tmp_path).returncode == 0
    metrics = {m["name"]: m for m in json.loads((tmp_path / "results/m/verify-me/summary.json").read_text())["metrics"]}
    assert metrics["verifier/flipped"]["value"] == 0 and metrics["verifier/accuracy"]["value"] == pytest.approx(2 / 5)
