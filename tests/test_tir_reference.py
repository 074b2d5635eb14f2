"""``leaderboard --reference`` puts the Qwen2.5-Math report's TIR rows in the ``<task>-tir`` columns (shown
``math [tir]``), never in the chain-of-thought column of the same set."""

from __future__ import annotations

from pathlib import Path

from .conftest import run_cli
from .test_compare import write_run


def _cells(markdown: str, row: str) -> dict[str, str]:
    """Header -> cell of `row` in the first Markdown table of `markdown`."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    found = next(line for line in lines if line.startswith(f"| {row} |"))
    return dict(zip(header, (c.strip() for c in found.strip("|").split("|")), strict=True))


def test_published_tir_rows_render_in_the_tir_column(tmp_path: Path) -> None:
    """Qwen2.5-Math-1.5B/7B/72B-Instruct on MATH with TIR, greedy: 79.7, 85.3, 87.8 (arXiv:2409.12122 Table 3;
    the Qwen2.5-Math blog)."""
    close = {f"q{k}": float(k < 43) for k in range(50)}  # 86.0%: 85.3 is inside its 95% interval
    write_run(tmp_path / "results" / "Qwen2.5-Math-7B-Instruct" / "math-tir", close,
              model="Qwen/Qwen2.5-Math-7B-Instruct", task="math-tir")  # fmt: skip
    cot = {f"q{k}": float(k < 30) for k in range(50)}
    write_run(tmp_path / "results" / "my-run" / "math", cot, model="/ckpts/my-run", task="math")
    board = run_cli("leaderboard", "results", "--out", "board", "--reference", cwd=tmp_path)
    assert board.returncode == 0, board.stderr

    overview = (tmp_path / "board" / "leaderboard.md").read_text(encoding="utf-8")
    for model, value in (("1.5B", "79.7"), ("7B", "85.3"), ("72B", "87.8")):
        cells = _cells(overview, f"Qwen2.5-Math-{model}-Instruct [published]")
        assert cells["math [tir]"] == value, overview
        # a TIR number is not the CoT column's; that column has the one CoT cell the abstract states
        assert cells["math"] == ("83.6" if model == "7B" else "—"), overview
    assert "math-tir [published]: Qwen2.5-Math report Table 3 (TIR, greedy)" in overview

    table = (tmp_path / "board" / "tasks" / "math-tir.md").read_text(encoding="utf-8")
    assert _cells(table, "Qwen2.5-Math-72B-Instruct [published]")["Accuracy"] == "87.8", table
    verdict = next(line for line in table.splitlines() if line.startswith("- Qwen/Qwen2.5-Math-7B-Instruct vs"))
    assert "accuracy 86.0 (95% CI" in verdict and "published 85.3: reproduces it" in verdict, table
    math = (tmp_path / "board" / "tasks" / "math.md").read_text(encoding="utf-8")
    published = [line for line in math.splitlines() if "[published]" in line and line.startswith("| ")]
    assert len(published) == 1 and "Qwen2.5-Math-7B-Instruct [published] | 83.6" in published[0], math
