"""--ray: llama.cpp replicas of the embedded model as Ray actors (``--ray local``: a Ray instance started
by mue-eval on this machine): both replicas answer and the run stores each answer once; a request the
cluster cannot hold fails within seconds, naming what is missing, and writes nothing."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from .conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


def test_two_replicas_share_the_work(tmp_path: Path) -> None:
    result = run_cli(
        *("--ray", "local", "--data-parallel-size", "2", "--threads", "1", "--limit", "8", "--max-tokens", "16"),
        "--quiet",
        cwd=tmp_path,
        env=ENV,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    report = next(line for line in result.stderr.splitlines() if line.startswith("mue-eval: ray:"))
    answered = [int(n) for n in re.findall(r"answered (\d+)", report)]
    assert len(answered) == 2 and all(n > 0 for n in answered) and sum(answered) == 8, report
    gens = [
        json.loads(x)
        for x in (tmp_path / "results/smollm2-135m-instruct/demo/generations.jsonl").read_text().splitlines()
    ]
    keys = [(g["sample_id"], g["n_index"]) for g in gens]
    assert len(keys) == len(set(keys)) == 8 and all(g["error"] is None for g in gens)
    manifest = json.loads((tmp_path / "results/smollm2-135m-instruct/demo/manifest.json").read_text())
    assert manifest["backend"] == "ray" and manifest["backend_config"]["replicas"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data-parallel-size", "64", "--threads", "1"], "64 replicas of 1 CPU each do not fit"),
        (["--data-parallel-size", "1", "--threads", "512"], "no node can hold one replica (512 CPU)"),
    ],
)
def test_an_impossible_request_fails_fast(tmp_path: Path, extra: list[str], message: str) -> None:
    start = time.monotonic()
    result = run_cli("--ray", "local", *extra, "--limit", "2", "--quiet", cwd=tmp_path, env=ENV, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert time.monotonic() - start < 90
    assert not (tmp_path / "results").exists()
