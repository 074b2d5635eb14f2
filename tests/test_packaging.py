"""The wheel installs our plugin folders under mathusereval.* and never as generic top-level names."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_wheel_layout(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    (wheel,) = tmp_path.glob("mathusereval-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert all(top == "mathusereval" or top.endswith(".dist-info") for top in tops), tops
    for expected in (
        "mathusereval/tasks/demo.py",
        "mathusereval/tasks/data/demo.jsonl",
        "mathusereval/graders/answer.py",
        "mathusereval/leaderboard/tables.py",
        "mathusereval/backends/llamacpp.py",
        "mathusereval/backends/vllm_engine.py",
        "mathusereval/lmeval/hooks.py",
        "mathusereval/lmeval/tasks/mathusereval.yaml",
        "mathusereval/lmeval/tasks/mathusereval_alignbench.yaml",
        "mathusereval/py.typed",
    ):
        assert expected in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mue-eval = mathusereval.cli:entry" in zipfile.ZipFile(wheel).read(entry_points).decode()
