"""A checkpoint sweep from one TOML config with per-task settings, as a new user runs it: one row per
checkpoint, the sweep found and drawn, ``--sweep-x`` keyed by the row names shown, the checkpoint visible in
progress lines and directories, ``compare`` naming the checkpoints, ``results.load`` in training order, and
a checkpoint whose weights changed under the same path refused on resume."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mathusereval import results
from mathusereval.backends.base import embedded_gguf_path

from .conftest import run_cli

CONFIG = """\
# relative paths are relative to this file's folder, wherever mue-eval is started
models = ["../ckpts/checkpoint-100", {path = "../ckpts/checkpoint-200", step = 200}, "../ckpts/checkpoint-300"]
out = "../results"
data_dir = "DATA"
limit = 2
[tasks.demo]
max_tokens = 12
[tasks.gsm8k]
max_tokens = 16
"""


@pytest.mark.slow
def test_a_three_checkpoint_sweep_from_one_config_with_per_task_settings(tmp_path: Path, shared_data: Path) -> None:
    for step in (300, 100, 200):  # folders holding one .gguf each: each folder is that model
        (tmp_path / "ckpts" / f"checkpoint-{step}").mkdir(parents=True)
        shutil.copyfile(embedded_gguf_path(), tmp_path / "ckpts" / f"checkpoint-{step}" / "model.gguf")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "sweep.toml").write_text(CONFIG.replace("DATA", str(shared_data)))
    (tmp_path / "elsewhere").mkdir()
    result = run_cli("--config", "../exp/sweep.toml", cwd=tmp_path / "elsewhere")
    assert result.returncode == 0, result.stderr
    # before: 'checkpoint-100/model [max_tokens=12]' with demo only and '... [max_tokens=16]' with gsm8k only
    board_rows = [line.split("│")[1].strip() for line in result.stdout.splitlines() if "checkpoint-" in line]
    assert board_rows == ["checkpoint-100/model", "checkpoint-200/model", "checkpoint-300/model"], result.stdout
    progress = [line for line in result.stderr.splitlines() if line.startswith("mue-eval: progress:")]
    assert any("checkpoint-200-model/gsm8k" in line for line in progress), result.stderr  # not "model/gsm8k"
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "checkpoint-100-model", "checkpoint-200-model", "checkpoint-300-model",
    ]  # fmt: skip
    manifest = json.loads((tmp_path / "results/checkpoint-200-model/gsm8k/manifest.json").read_text())
    assert manifest["params"]["max_tokens"] == 16 and manifest["config"]["steps"] == {
        os.path.abspath(tmp_path / "ckpts" / "checkpoint-200"): 200
    }
    assert manifest["settings"]["backend.weights"].startswith("sha256:")

    (tmp_path / "loss.csv").write_text(
        "model,pretraining loss\ncheckpoint-100/model,2.9\ncheckpoint-200/model,2.4\ncheckpoint-300/model,2.1\n"
    )
    board = run_cli("leaderboard", "results", "--out", "board", "--sweep-x", "loss.csv", cwd=tmp_path)
    assert board.returncode == 0 and "names no run" not in board.stderr, board.stderr
    for task in ("demo", "gsm8k"):
        table = (tmp_path / "board" / "sweeps" / f"{task}.md").read_text(encoding="utf-8")
        rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| checkpoint-")]
        assert [(r[0], r[1], r[2]) for r in rows] == [
            ("| checkpoint-100/model", "100", "2.9"), ("| checkpoint-200/model", "200", "2.4"),
            ("| checkpoint-300/model", "300", "2.1"),
        ], table  # fmt: skip
        assert (tmp_path / "board" / "plots" / f"sweep-{task}.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "board" / "index.html").read_text(encoding="utf-8")
    assert "<th>checkpoint</th>" in page and "<li>| checkpoint" not in page  # a table, not raw Markdown
    (tmp_path / "typo.csv").write_text("checkpoint-100/modle,2.9\ncheckpoint-200/model,2.4\n")
    typo = run_cli("leaderboard", "results", "--out", "board-typo", "--sweep-x", "typo.csv", cwd=tmp_path)
    assert "'checkpoint-100/modle' names no run; the runs are 'checkpoint-100/model'" in typo.stderr, typo.stderr

    compared = run_cli("compare", "results/checkpoint-100-model", "results/checkpoint-300-model", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert compared.stdout.startswith("# checkpoint-300/model vs checkpoint-100/model")  # not "model vs model"
    assert "A and B were run with the same settings." in compared.stdout

    frames = results.load(tmp_path / "results")
    assert list(frames.runs["row"]) == [f"checkpoint-{s}/model" for s in (100, 100, 200, 200, 300, 300)]
    assert list(frames.runs["step"]) == [100, 100, 200, 200, 300, 300]
    assert list(frames.runs["params.max_tokens"]) == [12, 16] * 3 and "row" in frames.items.columns

    # checkpoint-100's weights replaced under the same path: before, "2 answers (2 reused)" and exit 0
    weights = tmp_path / "ckpts" / "checkpoint-100" / "model.gguf"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    again = run_cli("--config", "../exp/sweep.toml", cwd=tmp_path / "elsewhere")
    assert again.returncode == 2 and "backend.weights: 'sha256:" in again.stderr, again.stderr
    assert "reused" not in again.stderr


def test_compare_help_says_95_percent_once() -> None:
    from mathusereval.cli import compare

    assert "95% CI" in compare.parser().format_help() and "95%%" not in compare.parser().format_help()


def test_a_stored_run_is_told_whether_it_reproduces_the_published_row(tmp_path: Path) -> None:
    """Qwen2.5-Math-7B-Instruct on CMATH is published at 91.8% (Qwen2.5-Math report, Table 4)."""
    from .test_compare import write_run

    close = {f"q{k}": float(k < 46) for k in range(50)}  # 92.0%: 91.8 is inside its 95% interval
    write_run(tmp_path / "results" / "Qwen2.5-Math-7B-Instruct" / "cmath", close, model="Qwen/Qwen2.5-Math-7B-Instruct",
              task="cmath")  # fmt: skip
    far = {f"q{k}": float(k < 30) for k in range(50)}  # 60.0%
    write_run(tmp_path / "results" / "my-run" / "cmath", far, model="/ckpts/my-run", task="cmath")
    board = run_cli("leaderboard", "results", "--out", "board", "--reference", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    table = (tmp_path / "board" / "tasks" / "cmath.md").read_text(encoding="utf-8")
    verdict = next(line for line in table.splitlines() if line.startswith("- Qwen/Qwen2.5-Math-7B-Instruct vs"))
    assert "accuracy 92.0 (95% CI 81.2–96.8), published 91.8: reproduces it" in verdict, table
    assert "max tokens 1024 (published 2048)" in verdict  # the protocol's settings this run did not use
    assert "my-run vs" not in table  # another model's run is not held against a published row
    named = run_cli("leaderboard", "results", "--out", "board2", "--reference", "--reference-name",
                    "Qwen2.5-Math-7B-Instruct", cwd=tmp_path)  # fmt: skip
    assert named.returncode == 0, named.stderr
    table = (tmp_path / "board2" / "tasks" / "cmath.md").read_text(encoding="utf-8")
    miss = next(line for line in table.splitlines() if line.startswith("- /ckpts/my-run vs"))
    assert "accuracy 60.0 (95% CI 46.2–72.4), published 91.8: does not reproduce it" in miss, table
    assert "19.4 points above the run's 95% CI" in miss
    page = (tmp_path / "board2" / "index.html").read_text(encoding="utf-8")
    assert "does not reproduce it" in page
