"""Hostile model output: bounded time, bounded memory, nothing executed, nothing written."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mathusereval.graders import grade_answer, grade_many
from mathusereval.graders.answer import answer_pool, extract_answer
from mathusereval.graders.sandbox import WorkerPool

TIMEOUT_S = 1.0
BOUND_S = 8.0  # the per-pair timeout plus starting a replacement worker, with room for a slow CI box


def _hostile(marker: Path) -> dict[str, tuple[str, str]]:
    injected = f"__import__('os').system('touch {marker}')"
    return {
        "power tower": ("2", r"\boxed{9^{9^{9^{9^{9}}}}}"),
        "tower with symbol": ("x", r"\boxed{10^{10^{10^{10}}} + x}"),
        "giant factorial": ("1", r"\boxed{100000000!}"),
        "exp tower": ("1", r"\boxed{e^{e^{e^{e^{100}}}}}"),
        "huge sum": ("1", r"\boxed{\sum_{k=1}^{10^{12}} k^{k}}"),
        "deep nesting": ("2", "\\boxed{" + "(" * 10_000 + "1" + ")" * 10_000 + "}"),
        "deep fractions": ("1", "\\boxed{" + "\\frac{1}{" * 3_000 + "2" + "}" * 3_000 + "}"),
        "megabyte": ("1", "x " * 500_000 + "\\boxed{" + "9" * 100_000 + "}"),
        "python injection": ("1", f"\\boxed{{{injected}}}"),
        "injection as expression": ("1", f"The answer is {injected}"),
        "latex injection": ("1", f"\\boxed{{\\text{{{injected}}}}}"),
        "big integer": ("1", "\\boxed{" + "9" * 100_000 + "}"),
    }


def test_hostile_answers_are_bounded_and_inert(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    cases = _hostile(marker)
    before = set(tmp_path.iterdir())
    with answer_pool(2, timeout=TIMEOUT_S) as pool:
        start = time.perf_counter()
        verdicts = grade_many(list(cases.values()), pool=pool)
        elapsed = time.perf_counter() - start
    for name, verdict in zip(cases, verdicts, strict=True):
        assert not verdict.correct, (name, verdict)
        assert verdict.reason, name
    assert {v.reason for v in verdicts} & {"timeout", "memory limit"}, "the towers must be cut off, not solved"
    # Every pair costs at most one timeout; two workers share the list.
    assert elapsed < len(cases) * BOUND_S / 2, elapsed
    assert not marker.exists()
    assert set(tmp_path.iterdir()) == before, "grading wrote files"


def test_single_pair_timeout_is_reported_not_wrong():
    start = time.perf_counter()
    verdict = grade_answer("2", r"\boxed{9^{9^{9^{9^{9}}}}}", timeout=TIMEOUT_S)
    assert time.perf_counter() - start < BOUND_S
    assert verdict.reason in {"timeout", "memory limit"}
    assert not verdict.correct
    # The replaced worker still grades the next pair.
    assert grade_answer("x^2-1", "(x-1)(x+1)", is_response=False, timeout=TIMEOUT_S).correct


def test_sandbox_memory_and_time_bounds(monkeypatch):
    """The pool's own guarantees, with handlers that misbehave on purpose."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    with WorkerPool("sandbox_handlers:hog", 1, timeout=5, memory_mb=128) as pool:
        results = pool.run([{"mb": 1}, {"mb": 4096}, {"mb": 2}])
    assert results[0] == {"allocated": 2**20}
    assert results[1] == {"error": "memory limit"}
    assert results[2] == {"allocated": 2 * 2**20}, "the worker survives a MemoryError"
    with WorkerPool("sandbox_handlers:nap", 2, timeout=0.5) as pool:
        start = time.perf_counter()
        results = pool.run([{"s": 0}, {"s": 60}, {"s": 0}, {"s": 60}, {"s": 0}])
        assert time.perf_counter() - start < 15
        assert pool.replaced == 2
    assert [r.get("error") for r in results] == [None, "timeout", None, "timeout", None]


def test_extraction_is_linear_on_adversarial_text():
    nasty = [
        "\\boxed{" * 50_000,
        "$" * 200_000,
        "answer is " * 50_000,
        "1," * 200_000,
        "{" * 100_000 + "}" * 100_000,
        "\\frac{" * 60_000,
    ]
    for text in nasty:
        start = time.perf_counter()
        extract_answer(text)
        assert time.perf_counter() - start < 2.0, text[:20]


_TOKENS = st.sampled_from(
    [
        "\\frac{",
        "}",
        "{",
        "\\sqrt{",
        "^{",
        "^",
        "_",
        "(",
        ")",
        "[",
        "]",
        "\\{",
        "\\}",
        ",",
        "=",
        "\\pm",
        "\\boxed{",
        "$",
        "\\cup",
        "\\infty",
        "x",
        "y",
        "i",
        "\\pi",
        "9",
        "99",
        "0",
        "1",
        ".",
        "-",
        "+",
        "!",
        "\\begin{pmatrix}",
        "\\end{pmatrix}",
        "&",
        "\\\\",
        "\\text{",
        "%",
        "^\\circ",
        "答案是",
        " ",
        "\n",
        "The answer is ",
        "####",
        "**",
        "__import__",
        "\\sum_{k=1}^{",
        "e^{",
        "\\int",
    ]
)


@pytest.mark.slow  # a regression sweep: the fast tier stays under a minute
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TOKENS, max_size=40).map("".join), st.lists(_TOKENS, max_size=20).map("".join))
def test_fuzzed_pairs_are_bounded(reference, response):
    cwd_before = set(os.listdir())
    start = time.perf_counter()
    verdict = grade_answer(reference, response, timeout=TIMEOUT_S)
    assert time.perf_counter() - start < BOUND_S
    assert isinstance(verdict.correct, bool)
    if verdict.reason in {"timeout", "memory limit"}:
        assert not verdict.correct
    assert set(os.listdir()) == cwd_before
