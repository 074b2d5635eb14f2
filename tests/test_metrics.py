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
    metric = mean_with_stderr("avg_score", [7.0, 3.0, 7.0, 3.0])
    assert metric.value == 5.0 and metric.stderr == pytest.approx(math.sqrt(16 / 3 / 4))
    low, high = metric.ci95  # type: ignore[misc]
    assert low == pytest.approx(5.0 - 1.96 * metric.stderr) and high == pytest.approx(5.0 + 1.96 * metric.stderr)
    assert mean_with_stderr("x", [1.0]).stderr is None and math.isnan(mean_with_stderr("x", []).value)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval written out from its textbook form (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) /
    (1 + z²/n)."""
    p = successes / n
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((p + z * z / (2 * n) - half) / (1 + z * z / n), (p + z * z / (2 * n) + half) / (1 + z * z / n))


def test_a_share_has_wilsons_interval_at_small_n() -> None:
    """Before: 3/25 gave [-0.010, 0.250] and 0/5 gave [0, 0] (mean ± 1.96 stderr)."""
    three = mean_with_stderr("accuracy", [1.0] * 3 + [0.0] * 22)
    low, high = three.ci95  # type: ignore[misc]
    assert (low, high) == pytest.approx(wilson(3, 25)) and low > 0 and round(low, 3) == 0.042
    zero = mean_with_stderr("accuracy/category=algebra", [0.0] * 5)
    assert zero.ci95 == pytest.approx((0.0, wilson(0, 5)[1])) and zero.ci95[1] > 0.4  # type: ignore[index]
    assert mean_with_stderr("answer/pass@8", [1.0] * 5).ci95 == pytest.approx((wilson(5, 5)[0], 1.0))
    assert zero.to_json()["ci95"] == pytest.approx([0.0, wilson(0, 5)[1]])  # what summary.json stores


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
