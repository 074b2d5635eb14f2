"""``mue-eval leaderboard --out``: overview and per-task breakdowns as Markdown and CSV, deterministic,
incomparable runs in separate columns."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from mathusereval.records import MetricValue

from . import board_results
from .conftest import run_cli
from .judge_server import ScriptedServer


def _reply(prompt: str, references: dict[str, str], model_right: bool) -> str:
    return f"\\boxed{{{references[prompt]}}}" if model_right and len(prompt) % 2 else "\\boxed{0}"


def _results(tmp_path: Path, shared_data: Path) -> Path:
    """Two models on gsm8k and math500 (12 items each), answered by a scripted server."""
    references = board_results.references(shared_data, {"gsm8k": 12, "math500": 12})
    for model, right in (("model-a", True), ("model-b", False)):
        script = lambda body, _, right=right: _reply(body["messages"][-1]["content"], references, right)  # noqa: E731
        with ScriptedServer(script) as server:
            result = run_cli(
                *("--base-url", server.url, "--model", model, "--tasks", "gsm8k,math500", "--limit", "12"),
                *("--data-dir", str(shared_data), "--quiet"),
                cwd=tmp_path,
            )
            assert result.returncode == 0, result.stderr
    return tmp_path / "results"


def test_out_writes_overview_and_breakdowns_deterministically(tmp_path: Path, shared_data: Path) -> None:
    results = _results(tmp_path, shared_data)
    first = run_cli("leaderboard", "results", "--out", "board", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    board = tmp_path / "board"
    names = sorted(str(p.relative_to(board)) for p in board.rglob("*") if p.is_file() and p.name != ".mue-outputs.json")
    tables = ["leaderboard.csv", "leaderboard.md", "tasks/gsm8k.csv", "tasks/gsm8k.md", "tasks/math500.csv"]
    assert set(tables) | {"tasks/math500.md", "index.html", "plots/math500-levels.png"} <= set(names)
    assert len([n for n in names if n.startswith("runs/")]) == 4  # a sample page per run
    snapshot = {name: (board / name).read_bytes() for name in names}
    assert run_cli("leaderboard", "results", "--out", "board", cwd=tmp_path).returncode == 0
    assert {name: (board / name).read_bytes() for name in names} == snapshot  # byte-identical

    overview = list(csv.reader(io.StringIO(snapshot["leaderboard.csv"].decode())))
    assert overview[0] == [
        "model",
        *("gsm8k", "gsm8k stderr", "gsm8k n", "gsm8k coverage"),
        *("math500", "math500 stderr", "math500 n", "math500 coverage"),
    ]
    assert all(row[4] == row[8] == "" for row in overview[1:])  # complete runs carry no partial mark
    assert [row[0] for row in overview[1:]] == ["model-a", "model-b"]  # best first
    summary = json.loads((results / "model-a" / "gsm8k" / "summary.json").read_text())
    assert float(overview[1][1]) == round(summary["metrics"][0]["value"] * 100, 4)
    math500 = snapshot["tasks/math500.md"].decode()
    assert "| Algebra |" in math500 and "| Level 5 |" in math500  # the breakdown columns, readable headers
    assert "| model-b |" in math500 and "Accuracies in percent" in math500


def test_incomparable_runs_get_their_own_column(tmp_path: Path, shared_data: Path) -> None:
    results = _results(tmp_path, shared_data)
    other = results / "model-c" / "gsm8k"
    shutil.copytree(results / "model-a" / "gsm8k", other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest.update(model="model-c", run_id="model-c/gsm8k", data_sha256="f" * 64)  # another dataset version
    (other / "manifest.json").write_text(json.dumps(manifest))
    regraded = results / "model-d" / "gsm8k"
    shutil.copytree(results / "model-a" / "gsm8k", regraded)
    manifest = json.loads((regraded / "manifest.json").read_text())
    manifest.update(model="model-d", run_id="model-d/gsm8k", graders=["answer", "math-critique"])  # other graders
    (regraded / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli("leaderboard", "results", "--out", "board", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "| model | gsm8k | gsm8k [2] | gsm8k [3] | math500 |" in text
    assert "graders answer,math-critique" in text
    assert "- gsm8k [2]: version" in text and "data ffffffffffff" in text
    assert (tmp_path / "board" / "tasks" / "gsm8k-2.md").is_file()


def test_judge_scores_scale_and_shares_in_percent() -> None:
    from mathusereval.leaderboard.layout import scaled

    assert scaled(MetricValue("overall", 7.25, 10, 0.5), 10.0) == MetricValue("overall", 72.5, 10, 5.0)
    assert scaled(MetricValue("hard_split", 0.25, 10), 10.0) == MetricValue("hard_split", 25.0, 10)
    assert scaled(MetricValue("accuracy/level=3", 0.5, 4), 10.0) == MetricValue("accuracy/level=3", 50.0, 4)


def test_neighbour_ties_use_a_two_sided_z_test() -> None:
    from mathusereval.leaderboard.layout import indistinguishable, ties

    a, b = MetricValue("accuracy", 0.50, 100, 0.05), MetricValue("accuracy", 0.45, 100, 0.05)
    assert indistinguishable(a, b)  # 0.05 apart, 1.96 x 0.0707 = 0.139 needed
    assert not indistinguishable(MetricValue("accuracy", 0.50, 100, 0.01), MetricValue("accuracy", 0.45, 100, 0.01))
    assert not indistinguishable(a, MetricValue("accuracy", 0.45, 100))  # no error known: no claim either way
    far = MetricValue("accuracy", 0.10, 100, 0.03)
    # ranked b-then-a by value whatever the input order; each model is compared with the one just above it
    assert ties([("far", far), ("b", b), ("a", a), ("none", None)]) == {"b": "a"}
