"""Hostile inputs, round 4 (issue 35), the read side: stored records of the wrong type, runs that ``verify`` or
``compare`` must not take at face value, copied shard folders, names that are markup, formulas or too long
for a file system, and judge replies with percentages. Each test failed on the version before this one."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mathusereval import results
from mathusereval.cli.main import main
from mathusereval.graders.judge import parse_judgment
from mathusereval.records import MetricValue
from mathusereval.results.runs import find_runs, load_run
from mathusereval.results.stats import mcnemar_exact
from mathusereval.store import RunStore
from mathusereval.store.jsonl import record_digest, sealed

from .conftest import run_cli
from .fault_server import FaultServer
from .judge_server import ScriptedServer


def mue(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``mue-eval ARGS`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _set_field(path: Path, lineno: int, name: str, value: Any) -> None:
    """Line `lineno` of a record file with one field replaced, written as an editor would (digest kept)."""
    rows = _lines(path)
    rows[lineno - 1][name] = value
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished runs, ``a`` and ``b``, of the demo task (4 items each), made by the real CLI."""
    root = tmp_path_factory.mktemp("demo-runs")
    with FaultServer() as server:
        for name in ("a", "b"):
            done = run_cli(
                "--base-url", server.url, "--model", "m", "--limit", "4", "--quiet", "--name", name, cwd=root
            )
            assert done.returncode == 0, done.stderr
    return root / "results"


@pytest.fixture
def runs(demo_runs: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demo_runs, tmp_path / "results"))


# item 1: a record of the wrong type is a file:line warning; that run is left out, the others render

WRONG_TYPES = [
    ("grades.jsonl", "score", "abc"),
    ("grades.jsonl", "score", [1]),
    ("grades.jsonl", "score", 1e308),
    ("grades.jsonl", "score", 10**400),  # a bare 400-digit JSON integer: no float holds it
    ("grades.jsonl", "n_index", "0"),
    ("grades.jsonl", "details", "x"),
    ("generations.jsonl", "text", 5),
    ("generations.jsonl", "reasoning", ["x"]),
    ("samples.jsonl", "messages", "x"),
    ("samples.jsonl", "reference", 3),
    ("samples.jsonl", "metadata", "x"),
]


@pytest.mark.parametrize(("file", "name", "value"), WRONG_TYPES)
def test_a_record_of_the_wrong_type_leaves_out_its_run_only(
    runs: Path, capsys: pytest.CaptureFixture[str], file: str, name: str, value: Any
) -> None:
    _set_field(runs / "a" / "demo" / file, 2, name, value)
    where = f"{runs / 'a' / 'demo' / file}:2"
    code, out, err = mue(capsys, "leaderboard", runs)
    assert code == 0, err
    assert f"{where}: corrupt record (field '{name}'" in err and "Traceback" not in err
    assert "│ b " in out and "│ a " not in out  # the rest render
    frames = results.load(runs)
    assert list(frames.runs["run_id"]) == ["b/demo"] and len(frames.skipped) == 1 and where in frames.skipped[0]
    code, out, _ = mue(capsys, "verify", runs)
    assert code == 1 and f"EDITED: {runs / 'a' / 'demo'}" in out and f"ok: {runs / 'b' / 'demo'}" in out


def test_a_run_left_out_does_not_stop_the_page_or_an_export(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_field(runs / "a" / "demo" / "grades.jsonl", 1, "score", "abc")
    code, _, err = mue(capsys, "leaderboard", runs, "--out", tmp_path / "board")
    assert code == 0 and "grades.jsonl:1: corrupt record" in err
    assert (tmp_path / "board" / "index.html").is_file() and (tmp_path / "board" / "leaderboard.csv").is_file()
    assert [p.name.split("__")[0] for p in (tmp_path / "board" / "runs").glob("*.html")] == ["b"]
    code, _, err = mue(capsys, "export", runs, "--format", "kto", "--decide", "rule", "--out", tmp_path / "kto.jsonl")
    assert code == 1 and "grades.jsonl:1: corrupt record" in err and "1 run(s) left out" in err
    manifest = json.loads((tmp_path / "kto.manifest.json").read_text())
    assert [r["directory"] for r in manifest["runs"]] == [str(runs / "b" / "demo")]
    assert len(manifest["skipped_runs"]) == 1 and manifest["counts"]["answers"] == 4


def _forge_chain(run: Path, file: str) -> None:
    """Recompute every digest of `file` and the manifest's checkpoint and seal: an edit the checksums miss."""
    rows = _lines(run / file)
    previous, text = "", ""
    for row in rows:
        row.pop("digest")
        previous = record_digest(previous, row)
        text += json.dumps({**row, "digest": previous}) + "\n"
    (run / file).write_text(text)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["records"][file] = {"lines": len(rows), "last": previous}
    (run / "manifest.json").write_text(json.dumps(sealed({k: v for k, v in manifest.items() if k != "seal"})))


def test_verify_tells_edited_from_could_not_check(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = runs / "a" / "demo"
    _set_field(run / "grades.jsonl", 2, "score", "abc")
    _forge_chain(run, "grades.jsonl")  # every checksum holds: only reading the record shows the problem
    code, out, err = mue(capsys, "verify", runs)
    assert code == 2, out + err
    assert f"NOT CHECKED: {run}" in out and "grades.jsonl:2: corrupt record (field 'score'" in out
    _set_field(runs / "b" / "demo" / "grades.jsonl", 1, "score", 1.0)  # an edit the digests show
    code, out, _ = mue(capsys, "verify", runs)
    assert code == 1 and f"EDITED: {runs / 'b' / 'demo'}" in out


# item 17: a torn line appended to a finished run


def test_verify_says_edited_for_a_torn_line_appended_to_a_finished_run(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished = runs / "a" / "demo"
    with (finished / "generations.jsonl").open("ab") as fh:
        fh.write(b'{"kind": "generation", "sample_id": "demo-01", "te')
    code, out, _ = mue(capsys, "verify", finished)
    assert code == 1 and "generations.jsonl:5: an unfinished line after the run finished" in out
    # a run whose writer is at work may end in a line being written: not an edit
    live = runs / "b" / "demo"
    store = RunStore(live)
    manifest = store.existing_manifest()
    assert manifest is not None and manifest.finished_at
    with store.writing(manifest):
        assert json.loads((live / "manifest.json").read_text())["finished_at"] is None
        with (live / "grades.jsonl").open("ab") as fh:
            fh.write(b'{"kind": "gra')
        code, out, _ = mue(capsys, "verify", live)
        assert code == 0 and out.startswith(f"ok: {live}")


# item 17: a model name over 255 bytes


def test_a_model_name_too_long_for_a_file_name_is_shortened_with_a_digest(tmp_path: Path) -> None:
    long_a, long_b = "x" * 300, "x" * 299 + "y"  # the same first 299 characters
    with FaultServer() as server:
        for model in (long_a, long_b, long_a):
            done = run_cli("--base-url", server.url, "--model", model, "--limit", "2", "--quiet", cwd=tmp_path)
            assert done.returncode == 0, done.stderr
    folders = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(folders) == 2 and all(len(name) <= 120 for name in folders)  # two models, two folders
    assert "(2 reused)" in done.stderr  # the same long name found its own folder again
    board = run_cli("leaderboard", "results", "--out", "board", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert all(len(p.name) <= 255 for p in (tmp_path / "board").rglob("*"))
    assert long_a in (tmp_path / "board" / "leaderboard.md").read_text()


# item 17: an output directory that is a file


def test_an_out_that_is_a_file_is_refused_in_one_line(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken.txt"
    taken.write_text("mine\n")
    for args in (
        ("compare", runs / "a" / "demo", runs / "b" / "demo", "--out", taken),
        ("leaderboard", runs, "--out", taken / "board"),
    ):
        code, out, err = mue(capsys, *args)
        assert code == 2 and err.strip() == f"mue-eval: error: {taken} exists and is not a directory; nothing was " \
            "written: name a directory (or a new path) for the output", err  # fmt: skip
        assert "answers already written" not in err and "| demo |" not in out
    assert taken.read_text() == "mine\n"


# item 17: a percentage is not a rating


def test_a_percentage_in_a_judge_reply_is_not_a_score() -> None:
    assert parse_judgment("无关内容 打分: 2.3% 无关内容").score is None
    assert parse_judgment("Rating: 85 %").score is None
    assert parse_judgment("the answer covers 40% of the steps. Rating: [[7]]").score == 7.0
    assert parse_judgment("评分：8（满分的80%）").score == 8.0


# item 17: a judged run whose headline has no value exits 1


def test_a_judged_run_whose_headline_is_null_exits_1(tmp_path: Path, shared_data: Path) -> None:
    first: list[str] = []
    lock = threading.Lock()

    def script(body: dict[str, Any], _: int) -> str:
        if body["model"] != "judge":
            return "答案是 42。"
        prompt = body["messages"][-1]["content"]
        with lock:
            first[:] = first or [prompt]
        return "{'综合得分': 6}" if prompt == first[0] else "无法评价"  # 1 of 8 parseable

    with ScriptedServer(script) as server:
        done = run_cli("--base-url", server.url, "--model", "m", "--tasks", "alignbench", "--limit", "8",
                       "--data-dir", str(shared_data), "--judge", "judge", "--judge-base-url", server.url,
                       "--judge-retries", "0", "--quiet", cwd=tmp_path)  # fmt: skip
    summary = json.loads(next((tmp_path / "results").rglob("summary.json")).read_text())
    assert summary["metrics"][0]["name"] == "overall" and summary["metrics"][0]["value"] is None
    assert summary["counts"]["unparseable"] == 7
    assert done.returncode == 1, done.stderr


# item 4: compare pairs only on a grader both runs have, and never takes edited or non-finite runs


@pytest.fixture(scope="module")
def graded_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo runs of one model graded three ways: ``answer`` only, ``math-critique,answer``, ``math-critique``."""
    root = tmp_path_factory.mktemp("graded-runs")

    def script(body: dict[str, Any], _: int) -> str:
        return "[[6]]" if body["model"] == "judge" else "The answer is \\boxed{0}."

    with ScriptedServer(script) as server:
        for name, graders in (("rule", "answer"), ("both", "math-critique,answer"), ("judged", "math-critique")):
            judge = ("--judge", "judge", "--judge-base-url", server.url)
            done = run_cli("--base-url", server.url, "--model", "m", "--limit", "6", "--quiet", "--name", name,
                           "--graders", graders, *judge, cwd=root)  # fmt: skip
            assert done.returncode == 0, done.stderr
    return root / "results"


def test_compare_pairs_on_a_grader_both_runs_have_and_names_it(
    graded_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = mue(capsys, "compare", graded_runs / "rule" / "demo", graded_runs / "both" / "demo", "--json")
    assert code == 0, err
    headline = json.loads(out)["comparisons"][0]
    assert headline["grader"] == "answer" and headline["delta"] == 0.0 and headline["a"] == headline["b"]
    code, out, _ = mue(capsys, "compare", graded_runs / "both" / "demo", graded_runs / "judged" / "demo")
    assert code == 0 and "| demo | math-critique | (all) | avg_score |" in out
    code, out, err = mue(capsys, "compare", graded_runs / "rule" / "demo", graded_runs / "judged" / "demo")
    assert code == 2 and out == "" and "share no grader to compare on (graded by answer vs math-critique" in err


def test_compare_refuses_an_edited_run_and_non_finite_scores(
    graded_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = Path(shutil.copytree(graded_runs, tmp_path / "results"))
    _set_field(work / "both" / "demo" / "grades.jsonl", 1, "score", 1.0)  # a well-typed edit
    code, out, err = mue(capsys, "compare", work / "rule" / "demo", work / "both" / "demo")
    assert code == 2 and out == ""
    assert f"{work / 'both' / 'demo'} does not verify ({work / 'both' / 'demo' / 'grades.jsonl'}:1: changed" in err
    grades = work / "rule" / "demo" / "grades.jsonl"
    grades.write_text(grades.read_text().replace('"score": 0.0', '"score": NaN', 1))
    code, out, err = mue(capsys, "compare", work / "rule" / "demo", work / "judged" / "demo")
    assert code == 2 and out == "" and f"{grades}:1" in err and "nan" not in out


def test_an_exact_test_that_underflows_says_p_below_1e300() -> None:
    from mathusereval.leaderboard.comparison import comparison_markdown

    p = mcnemar_exact(0, 1100)  # 2 / 2^1100: below the smallest float
    assert 0 < p <= 1e-300
    row = {"task": "gsm8k", "grader": "answer", "category": None, "metric": "accuracy", "a": 0.0, "b": 1.0,
           "delta": 1.0, "ci95": None, "p_value": p, "test": "exact McNemar", "n": 1100, "wins": 1100, "losses": 0,
           "ties": 0, "changed": []}  # fmt: skip
    text = comparison_markdown(
        {"a": {"path": "A", "label": "A"}, "b": {"path": "B", "label": "B"}, "comparisons": [row]}
    )
    assert "| < 1e-300 * |" in text


# item 5: only folders named exactly shard-I-of-N, of one N, holding their own items are read


@pytest.fixture(scope="module")
def shard_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shard-runs")
    with FaultServer() as server:
        for index in (0, 1):
            done = run_cli("--base-url", server.url, "--model", "m", "--quiet", "--shard", f"{index}/2", cwd=root)
            assert done.returncode == 0, done.stderr
    return root / "results" / "m" / "demo"


@pytest.fixture
def shards(shard_runs: Path, tmp_path: Path) -> Iterator[Path]:
    yield Path(shutil.copytree(shard_runs, tmp_path / "demo"))


def _read(shards: Path) -> tuple[list[Path], int, list[str]]:
    problems: list[str] = []
    (parts,) = find_runs(shards, problems)
    return sorted(parts), load_run(parts).metrics[0].n, problems


def test_a_copied_or_renamed_shard_folder_is_named_and_left_out(shards: Path) -> None:
    whole = _read(shards)
    assert [p.name for p in whole[0]] == ["shard-0-of-2", "shard-1-of-2"] and not whole[2]
    shutil.copytree(shards / "shard-1-of-2", shards / "shard-1-of-2.bak")  # cp -a shard-1-of-2 shard-1-of-2.bak
    shutil.copytree(shards / "shard-1-of-2", shards / "shard-1-of-3")  # a folder renamed
    shutil.copytree(shards / "shard-0-of-2", shards / "shard-00-of-2")
    parts, n, problems = _read(shards)
    assert parts == whole[0] and n == whole[1]  # nothing counted twice
    assert sorted(p.split(":")[0] for p in problems) == [
        str(shards / name) for name in ("shard-00-of-2", "shard-1-of-2.bak", "shard-1-of-3")
    ]
    assert all("a shard folder must be named exactly" in p for p in problems)


def test_a_shard_folder_holding_another_shards_items_is_left_out(
    shards: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n_first = load_run((shards / "shard-0-of-2",)).counts.graded
    for name in ("samples.jsonl", "generations.jsonl", "grades.jsonl"):
        shutil.copy(shards / "shard-0-of-2" / name, shards / "shard-1-of-2" / name)
    parts, n, problems = _read(shards)
    assert [p.name for p in parts] == ["shard-0-of-2"] and n == n_first
    assert len(problems) == 1 and "shard-1-of-2: holds" in problems[0] and "items of other shards" in problems[0]
    code, out, err = mue(capsys, "leaderboard", shards.parent)
    assert code == 0 and "shard-1-of-2: holds" in err and f"(n={n_first}) [partial" in out


# item 7: every plot label is plain text; a plot that cannot be drawn leaves the rest standing


@pytest.fixture(scope="module")
def hostile_names(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """math500 runs (plots by subject and level) of models named as markup and as spreadsheet formulas."""
    root = tmp_path_factory.mktemp("hostile-names")
    with FaultServer() as server:
        for model in ("a$\\foo$b", "=cmd|' /C calc'!A0", "@SUM(1+1)"):
            done = run_cli("--base-url", server.url, "--model", model, "--tasks", "math500", "--limit", "6", "--quiet",
                           "--data-dir", str(shared_data), cwd=root)  # fmt: skip
            assert done.returncode == 0, done.stderr
    return root / "results"


def test_a_dollar_in_a_model_name_is_drawn_as_text(
    hostile_names: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = mue(capsys, "leaderboard", hostile_names, "--out", tmp_path / "board")
    assert code == 0, err
    plots = sorted(p.name for p in (tmp_path / "board" / "plots").glob("*.png"))
    assert plots == ["math500-categories.png", "math500-levels.png"]
    assert "a$\\foo$b" in (tmp_path / "board" / "index.html").read_text()


def test_a_plot_that_cannot_be_drawn_leaves_the_tables_and_the_page(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_x = tmp_path / "x.csv"  # an axis name in markup and values whose span no axis can hold
    sweep_x.write_text("model,$\\sqrt{loss$\na,-1.7e308\nb,1.7e308\n")
    code, _, err = mue(capsys, "leaderboard", runs, "--out", tmp_path / "board", "--sweep-x", sweep_x)
    assert code == 0, err
    assert "mue-eval: warning: plot sweep-demo left out:" in err
    board = tmp_path / "board"
    assert (board / "index.html").is_file() and (board / "leaderboard.csv").is_file()
    assert "sqrt{loss$" in (board / "sweeps" / "demo.md").read_text()


# item 11: spreadsheet formulas in names are neutralised, numbers stay numbers


def test_csv_cells_that_start_a_formula_are_neutralised(
    hostile_names: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = mue(capsys, "leaderboard", hostile_names, "--out", tmp_path / "board")
    assert code == 0, err
    for path in (tmp_path / "board" / "leaderboard.csv", tmp_path / "board" / "tasks" / "math500.csv"):
        rows = list(csv.reader(io.StringIO(path.read_text())))
        names = sorted(row[0] for row in rows[1:])
        assert names == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)", "a$\\foo$b"], path
        assert all(float(row[1]) >= 0 for row in rows[1:])  # numeric cells as written


def test_a_negative_number_stays_a_number_in_csv() -> None:
    from mathusereval.leaderboard.export import to_csv
    from mathusereval.leaderboard.tables import Table

    names = ["-model", "+1", "-.5", "\tx", "-", "=1+1", "plain"]
    table = Table(columns=["overall"], rows=[(name, [MetricValue("overall", -0.5, 4, 0.25)]) for name in names])
    rows = list(csv.reader(io.StringIO(to_csv(table, 1.0))))
    assert [row[0] for row in rows[1:]] == ["'-model", "+1", "-.5", "'\tx", "'-", "'=1+1", "plain"]
    assert all(row[1:] == ["-0.5000", "0.2500", "4", ""] for row in rows[1:])  # numbers stay numbers
