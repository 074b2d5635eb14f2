"""Hostile inputs, round 4, on the run side (issue 35 items 3, 13, 14, 16): a huge system prompt costs one
copy, every config value is checked as its flag's, non-finite floats are refused, and a smaller --limit on a
stored run reads from it without rewriting its summary into a mismatch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MUE_EVAL, cli_env, run_cli
from .judge_server import ScriptedServer

PEAK = (
    "import resource, subprocess, sys; subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def _peak_mb(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(MUE_EVAL), *args],
        cwd=cwd,
        env=cli_env(cwd, None),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024, done


def test_a_large_system_prompt_costs_one_copy_whatever_the_task_holds(tmp_path: Path, shared_data: Path) -> None:
    """Before, the system turn went on all 1319 GSM8K items before --limit: 1 MB used 1.5 GB."""
    (tmp_path / "system.txt").write_text("Be careful. " * 80_000)  # 960 KB
    with ScriptedServer(lambda body, _: "The answer is \\boxed{1}.") as server:
        args = ["--tasks", "gsm8k", "--limit", "2", "--base-url", server.url, "--model", "m", "--quiet"]
        args += ["--data-dir", str(shared_data), "--system-prompt", "@system.txt"]
        peak, done = _peak_mb(args, tmp_path)
        assert done.returncode == 0, done.stderr
        assert len(server.bodies) == 2 and server.bodies[0]["messages"][0]["content"].startswith("Be careful.")
    assert peak < 400, f"peak RSS {peak:.0f} MB"


def test_a_system_prompt_file_over_the_cap_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * (2 << 20))
    result = run_cli("--system-prompt", "@big.txt", cwd=tmp_path)
    assert result.returncode == 2 and "over 1 MiB" in result.stderr and "Traceback" not in result.stderr


CONFIG_HOLES = [
    ("models = [1, 2]\n", "models"),
    ("tasks = [1]\n", "tasks"),
    ("[tasks.demo]\nstop = [1, 2]\n", "stop"),
    ('log_to = ["bogus"]\n', "log_to"),
    ('parity = "bogus"\n', "parity"),
    ('batch_fallback = "bogus"\n', "batch_fallback"),
    ("[tasks.demo]\nmax_tokens = -5\n", "max_tokens"),
    ("[tasks.demo]\nsamples = 0\n", "samples"),
    ("[tasks.gsm8kk]\n", "gsm8kk"),
    ("temperature = nan\n", "temperature"),
    ('[judge]\nmodel = "j"\nbase_url = "http://127.0.0.1:9/v1"\nconcurrency = 0\n', "concurrency"),
]


@pytest.mark.parametrize(("toml", "named"), CONFIG_HOLES)
def test_every_config_value_is_checked_as_its_flags(tmp_path: Path, toml: str, named: str) -> None:
    (tmp_path / "run.toml").write_text(toml)
    result = run_cli("--config", "run.toml", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert named in lines[0], lines


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_float_option_is_refused(tmp_path: Path, value: str) -> None:
    result = run_cli(f"--temperature={value}", cwd=tmp_path)
    assert result.returncode == 2 and "finite" in result.stderr and "Traceback" not in result.stderr


def test_a_smaller_limit_reads_from_a_run_and_leaves_it_verifiable(tmp_path: Path, shared_data: Path) -> None:
    """Before, --limit 3 on a stored run of 6 rewrote its summary for 3 items: `verify` then said EDITED."""
    with ScriptedServer(lambda body, _: "The answer is \\boxed{1}.") as server:
        args = ["--tasks", "gsm8k", "--base-url", server.url, "--model", "m", "--quiet", "--data-dir", str(shared_data)]
        assert run_cli(*args, "--limit", "6", cwd=tmp_path).returncode == 0
        summary = tmp_path / "results" / "m" / "gsm8k" / "summary.json"
        before = json.loads(summary.read_text())
        small = run_cli(*args, "--limit", "3", cwd=tmp_path)
        assert small.returncode == 0, small.stderr
        assert len(server.bodies) == 6  # nothing generated again
    after = json.loads(summary.read_text())
    assert after["metrics"] == before["metrics"] and after["counts"]["expected"] == before["counts"]["expected"]
    check = run_cli("verify", "results/m/gsm8k", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
