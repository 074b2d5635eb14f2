"""Every script in benchmarks/ runs at a tiny size, so none of them rots unnoticed (the numbers they print are
measured by hand and recorded in the issue notes; here only that each section runs and prints its rows)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import VLLM_ENV

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

SECTIONS = {
    "backend_bench.py": ["mathusereval pipeline", "lm-eval 0.4.13", "mue-eval (whole process)", "lm_eval (whole"],
    "grader_bench.py": [
        *("## 1. grader_pairs", "## 3. MATH self-consistency", "## 5. Throughput on", "## 6. Answer"),
        *("choice hedges", "truncated replies", "## 7. Self-consistency", "gaokao2023en"),
    ],
    "scale_bench.py": ["backlog (20 KB answers)", "ray 2 x 16, stream", "ray llama.cpp replicas"],
    "schedule_bench.py": ["math-suite --limit", "mathusereval,alignbench", "in process, 1 engine x 16"],
    "batch_memory_bench.py": ["gzip-bomb", "foreign 4 MB"],
    "sandbox_bench.py": ["## 1. Start-up cost", "## 2. Programs per second", "## 3. A sympy"],
}


def test_every_benchmark_script_is_covered() -> None:
    assert sorted(p.name for p in BENCHMARKS.glob("*.py")) == sorted(SECTIONS)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SECTIONS))
def test_benchmark_runs_at_a_tiny_size(script: str, shared_data: Path, tmp_path: Path) -> None:
    env = {**os.environ, **VLLM_ENV, "RAY_USAGE_STATS_ENABLED": "0", "MUE_DATA_DIR": str(shared_data)}
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--tiny", "--data-dir", str(shared_data)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for heading in SECTIONS[script]:
        assert heading in result.stdout, (heading, result.stdout[-3000:])
