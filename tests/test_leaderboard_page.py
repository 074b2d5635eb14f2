"""``mue-eval leaderboard --out``: the published layout and precision, rendering snapshots, byte-identical
reruns of every file (Markdown, CSV, PNG, HTML), plots, a corrupt or partial results directory, and the
static page driven in a real headless Chromium (Debian's, via Playwright; scripts/browser.sh installs it).

The results come from three scripted models on all four benchmarks (tests/board_results.py), made once
per module through the real CLI. Set MUE_UPDATE_SNAPSHOTS=1 to rewrite tests/snapshots/ after an
intended change; the browser screenshot lands in $MUE_ARTIFACTS (default: artifacts/ in the checkout).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path

import pytest

from . import board_results
from .conftest import run_cli

SNAPSHOTS = Path(__file__).parent / "snapshots"
ARTIFACTS = Path(os.environ.get("MUE_ARTIFACTS", Path(__file__).parent.parent / "artifacts"))
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The results of three models on every benchmark, rendered with published reference rows."""
    root = tmp_path_factory.mktemp("board")
    board_results.build(root, shared_data)
    result = run_cli("leaderboard", "results", "--out", "board", "--reference", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_every_output_is_byte_identical_on_rebuild(board: Path) -> None:
    first = _files(board / "board")
    assert {"index.html", "leaderboard.md", "leaderboard.csv", "plots/alignbench-radar.png"} <= set(first)
    assert sum(name.startswith("runs/") and name.endswith(".html") for name in first) == 12  # a page per run
    again = run_cli("leaderboard", "results", "--out", "again", "--reference", cwd=board)
    assert again.returncode == 0, again.stderr
    assert _files(board / "again") == first


@pytest.mark.parametrize("name", ["leaderboard.md", "tasks/mathusereval.md", "tasks/alignbench.md", "tasks/math500.md"])
def test_rendering_matches_snapshot(board: Path, name: str) -> None:
    rendered = (board / "board" / name).read_text(encoding="utf-8")
    snapshot = SNAPSHOTS / name.replace("/", "__")
    if os.environ.get("MUE_UPDATE_SNAPSHOTS"):
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(rendered, encoding="utf-8")
    assert rendered == snapshot.read_text(encoding="utf-8")


def test_breakdowns_follow_the_published_layout_and_precision(board: Path) -> None:
    """Column order and headers as in the MathUserEval and AlignBench README leaderboards; judge scores 2 dp,
    accuracies 1 dp in %."""
    mue = (board / "board/tasks/mathusereval.md").read_text(encoding="utf-8").splitlines()[2]
    assert mue.startswith(
        "| model | Overall | Elem Avg | algebra | calculate | geo. | tri. | Adv Avg | calculus | discrete | linear. "
        "| Prob. | hard-split |"
    )
    align = (board / "board/tasks/alignbench.md").read_text(encoding="utf-8").splitlines()
    assert align[2] == (
        "| model | Overall | Reasoning Avg | Math. | Logi. | Language Avg | Fund. | Chi. | Open. | Writ. | Role. "
        "| Pro. |"
    )
    strong = next(line for line in align if line.startswith("| strong |"))
    assert re.fullmatch(r"(\| [\d.]+ ± [\d.]+ \(n=\d+\) )+\|", strong.removeprefix("| strong ")), strong
    assert all(len(v.split(".")[1]) == 2 for v in re.findall(r"\d+\.\d+", strong))  # 7.66 ± 0.05
    gsm8k = (board / "board/leaderboard.md").read_text(encoding="utf-8")
    cell = re.search(r"\| strong \| [^|]+ \| ([^|]+) \|", gsm8k)
    assert cell and re.fullmatch(r"\d+\.\d ± \d+\.\d \(n=40\)", cell[1].strip())  # 90.0 ± 4.8 (n=40)
    assert "| GPT-4o [published] | 8.38 |" in gsm8k  # the published row beside ours, same precision


def test_plots_are_pngs_of_the_expected_kinds(board: Path) -> None:
    plots = {p.name: p.read_bytes() for p in (board / "board/plots").iterdir() if p.name != ".mue-outputs.json"}
    assert set(plots) == {
        "alignbench-categories.png",
        "alignbench-radar.png",
        "math500-categories.png",
        "math500-levels.png",
        "mathusereval-categories.png",
    }
    for data in plots.values():
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 500 and height >= 400
        assert b"matplotlib" not in data  # no version stamp: the bytes depend on the data only
    html = (board / "board/index.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(plots)  # the same plots, inlined


def test_corrupt_and_partial_runs_are_named_and_the_rest_renders(board: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(board / "results", results)
    (results / "weak/gsm8k/manifest.json").write_text("{not json", encoding="utf-8")
    (results / "stray").mkdir()
    (results / "stray/manifest.json").write_text('{"task": "gsm8k"}', encoding="utf-8")
    grades = results / "middle/math500/grades.jsonl"
    lines = grades.read_text(encoding="utf-8").splitlines(keepends=True)
    grades.write_text("".join(lines[:25]) + lines[25][:40], encoding="utf-8")  # killed mid-write
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file() and p != grades}

    result = run_cli("leaderboard", "results", "--out", "board", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipped a run: results/weak/gsm8k/manifest.json:1: not valid JSON" in result.stderr
    assert "skipped a run: results/stray/manifest.json: not a run manifest (" in result.stderr
    assert "results/middle/math500: partial run, 25 of 60 answers scored (42%): 35 grades missing" in result.stderr
    assert "grades.jsonl: holds 25 records, the writer left 60: lines were deleted" in result.stderr
    overview = (tmp_path / "board/leaderboard.md").read_text(encoding="utf-8")
    weak = next(line for line in overview.splitlines() if line.startswith("| weak |"))
    assert weak.split(" | ")[2] == "—"  # the unreadable gsm8k run is missing, the rest of the row is there
    middle = next(line for line in overview.splitlines() if line.startswith("| middle |"))
    assert "(n=25) [partial 25/60, edited]" in middle  # coverage and the failed check show in every rendering
    assert overview.splitlines().index(middle) > overview.splitlines().index(weak)  # not ranked among complete
    assert "partial 25/60" in (tmp_path / "board/leaderboard.csv").read_text(encoding="utf-8")
    assert "[partial 25/60, edited]" in (tmp_path / "board/tasks/math500.md").read_text(encoding="utf-8")
    page = (tmp_path / "board/index.html").read_text(encoding="utf-8")
    assert "partial run, 25 of 60" in page and '<span class="partial">partial 25/60, edited</span>' in page
    assert "partial 25/60" in result.stdout  # the terminal table
    assert {p: p.read_bytes() for p in before} == before  # nothing the user had was changed


def test_page_in_headless_chromium(board: Path) -> None:
    """Load the page from disk with the network blocked, sort a column, filter, open a model's details,
    follow it to the sample-level records and read a judge critique there; save a screenshot."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is missing: run scripts/browser.sh"
    index = (board / "board/index.html").as_uri()
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[*flags, "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        outside: list[str] = []
        page.route(re.compile(r"^(?!file:).*"), lambda route: (outside.append(route.request.url), route.abort()))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(index)

        def models() -> list[str]:
            return page.eval_on_selector_all(
                "#overview tbody tr:not(.published) td:first-child", "cells => cells.map(c => c.textContent)"
            )

        assert models() == ["strong", "middle", "weak"]
        gsm8k = page.locator("#overview th", has_text="gsm8k")
        gsm8k.click()  # descending first
        assert page.get_attribute("#overview th:nth-child(3)", "aria-sort") == "descending"
        assert models() == ["strong", "middle", "weak"]
        gsm8k.click()
        assert models() == ["weak", "middle", "strong"]
        assert page.locator("#overview td .tie").count() >= 1  # weak vs middle on gsm8k: within noise

        page.fill("#filter", "midd")
        visible = page.eval_on_selector_all("#overview tbody tr", "rows => rows.filter(r => !r.hidden).length")
        assert visible == 1
        page.fill("#filter", "")

        page.click("#overview a:text-is('middle')")
        details = page.locator("details.model[open]")
        assert details.count() == 1 and details.locator("summary").inner_text() == "middle"
        assert details.locator("h3", has_text="alignbench").count() == 1
        page.screenshot(path=str(ARTIFACTS / "leaderboard.png"), full_page=True)

        details.locator("a", has_text="sample-level records").first.click()
        page.wait_for_load_state()
        assert page.url.endswith(".html") and "/runs/" in page.url
        samples = page.locator("details.sample")
        assert samples.count() == 683  # middle's first run by task name: AlignBench, every item
        first = samples.first
        first.locator("summary").click()
        assert "alignbench-judge critique" in first.inner_text()
        assert "综合得分" in first.inner_text()  # the judge's own reply
        page.screenshot(path=str(ARTIFACTS / "leaderboard-samples.png"))
        browser.close()
    assert outside == [] and errors == []
    assert (ARTIFACTS / "leaderboard.png").stat().st_size > 10_000


def test_dataframes_reproduce_the_leaderboard_numbers(board: Path) -> None:
    """mathusereval.results.load: the official MathUserEval aggregation and GSM8K accuracy recomputed from
    the item frame equal the run frame's metrics, which are the leaderboard's."""
    from mathusereval import results

    frames = results.load(board / "results")
    items, runs = frames.items, frames.runs
    assert len(runs) == 12 and set(runs["task"]) == {"gsm8k", "math500", "mathusereval", "alignbench"}
    for model in board_results.MODELS:
        mue = items[(items["model"] == model) & (items["task"] == "mathusereval")]
        row = runs[(runs["model"] == model) & (runs["task"] == "mathusereval")].iloc[0]
        scored = mue.dropna(subset=["alignbench-judge.score"])
        assert row["overall"] == pytest.approx(scored["alignbench-judge.score"].mean())
        assert row["overall.n"] == len(scored)
        elementary = scored[scored["category"] == "初等数学"]
        assert row["elementary"] == pytest.approx(elementary["alignbench-judge.score"].mean())
        assert row["hard_split"] == pytest.approx((scored["alignbench-judge.score"] >= 7).mean())
        gsm = items[(items["model"] == model) & (items["task"] == "gsm8k")]
        gsm_row = runs[(runs["model"] == model) & (runs["task"] == "gsm8k")].iloc[0]
        assert gsm_row["accuracy"] == pytest.approx(gsm["answer.score"].mean())
        assert gsm_row["accuracy.stderr"] == pytest.approx(gsm["answer.score"].std() / len(gsm) ** 0.5)
