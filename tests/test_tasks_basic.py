"""Built-in tasks load the real benchmark files with the published item counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mathusereval.plugins import registry

from .conftest import run_cli


@pytest.mark.parametrize(("name", "count"), [("demo", 25), ("gsm8k", 1319), ("math", 5000), ("math500", 500)])
def test_counts_and_unique_ids(shared_data: Path, name: str, count: int) -> None:
    samples = registry.lookup("tasks", name).load(shared_data).samples
    assert len(samples) == count
    assert len({s.id for s in samples}) == count
    assert all(s.reference and s.messages[-1]["role"] == "user" for s in samples)


def test_gsm8k_gold_is_the_number_after_hashes(shared_data: Path) -> None:
    first = registry.lookup("tasks", "gsm8k").load(shared_data).samples[0]
    assert first.reference == "18" and "Janet" in first.messages[0]["content"]
    assert "\\boxed{}" in first.messages[0]["content"]


def test_math_keeps_subject_and_level(shared_data: Path) -> None:
    samples = registry.lookup("tasks", "math500").load(shared_data).samples
    assert {k: samples[0].metadata[k] for k in ("subject", "level")} == {"subject": "Precalculus", "level": 2}
    assert samples[0].reference == "\\left( 3, \\frac{\\pi}{2} \\right)"


def test_tasks_command_lists_counts(tmp_path: Path, shared_data: Path) -> None:
    result = run_cli("tasks", "--data-dir", str(shared_data), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.stdout.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()
    }
    assert rows["gsm8k"] == "1319" and rows["math"] == "5000" and rows["math500"] == "500" and rows["demo"] == "25"
