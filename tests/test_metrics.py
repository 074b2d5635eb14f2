"""Aggregation arithmetic: standard errors, unbiased pass@k, majority vote, and --samples k end to end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mathusereval.backends import ModelSpec
from mathusereval.plugins.metrics import accuracy, mean_with_stderr, pass_at_k
from mathusereval.plugins.task import user_turn
from mathusereval.records import Grade, Sample
from mathusereval.run.pipeline import RunOptions

from .conftest import inline_task, run_openai
from .fault_server import FaultServer


def test_mean_with_stderr_and_ci() -> None:
    metric = mean_with_stderr("accuracy", [1.0, 0.0, 1.0, 0.0])
    assert metric.value == 0.5 and metric.stderr == pytest.approx(math.sqrt(1 / 3 / 4))
    low, high = metric.ci95  # type: ignore[misc]
    assert low == pytest.approx(0.5 - 1.96 * metric.stderr) and high == pytest.approx(0.5 + 1.96 * metric.stderr)
    assert mean_with_stderr("x", [1.0]).stderr is None and math.isnan(mean_with_stderr("x", []).value)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [(4, 1, 1, 0.25), (4, 1, 4, 1.0), (4, 0, 4, 0.0), (10, 3, 2, 1 - (7 * 6) / (10 * 9)), (5, 5, 3, 1.0)],
)
def test_pass_at_k_is_the_unbiased_estimator(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_majority_vote_and_pass_at_k_from_grades() -> None:
    samples = [Sample("t", sid, user_turn("q"), "4") for sid in ("a", "b")]

    def grade(sid: str, n: int, pred: str) -> Grade:
        ok = pred == "4"
        return Grade(sid, n, "answer", float(ok), ok, {"prediction": pred})

    grades = [
        grade("a", 0, "4"),
        grade("a", 1, "5"),
        grade("a", 2, "4"),  # majority right
        grade("b", 0, "4"),
        grade("b", 1, "7"),
        grade("b", 2, "7"),
    ]  # majority wrong, pass@3 right
    metrics = {m.name: m.value for m in accuracy(samples, grades)}
    assert metrics == {"accuracy": pytest.approx(0.5), "pass@3": 1.0, "maj@3": 0.5}


def test_samples_k_end_to_end(tmp_path: Path) -> None:
    """--samples 3 asks for three generations per item, each with its own seed, and reports pass@3."""
    samples = [Sample("k", f"q{i}", user_turn(f"ANSWER:{i} question {i}"), str(i)) for i in range(3)]
    task = inline_task("k", samples)
    with FaultServer() as server:
        spec = ModelSpec.of("openai", "m", **{"base_url": server.url})
        result = run_openai(task, spec, RunOptions(out=tmp_path, overrides={"n": 3}, progress=False))
    metrics = {m.name: m for m in result.metrics}
    assert metrics["accuracy"].value == 1.0 and metrics["pass@3"].value == 1.0 and metrics["maj@3"].n == 3
    assert result.counts.generations == 9
