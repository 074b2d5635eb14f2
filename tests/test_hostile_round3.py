"""Hostile inputs, round 3: readers that would overwrite runs, forged runs, secrets echoed back, URLs with
query strings, budgets, plugin output, shards and locks. Each test failed on the version before this one."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_cli
from .echo_server import EchoServer
from .fault_server import FaultServer

SECRETS = ("sk-live-key-4242", "hdr-secret-7777", "pw-s3cret-99", "q-secret-5151")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_secrets_a_server_echoes_are_never_stored_or_printed(tmp_path: Path) -> None:
    with EchoServer(status=400) as server:
        url = server.url.replace("http://", "http://user:pw-s3cret-99@") + "?api-version=1&api-key=q-secret-5151"
        result = run_cli("--base-url", url, "--model", "m", "--limit", "2", "--max-retries", "0", "--quiet",
                         "--api-key", "sk-live-key-4242", "--header", "X-Team-Token: hdr-secret-7777",
                         cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1, result.stderr
        # the query string stays in place: /v1/chat/completions?..., not /v1?.../chat/completions
        assert server.posts() and all(
            p.startswith("/v1/chat/completions?api-version=1&api-key=") for p in server.posts()
        )
    stored = b"".join(_files(tmp_path / "results").values()).decode()
    assert "REDACTED" in stored and "HTTP 400" in stored
    for secret in SECRETS:
        assert secret not in stored and secret not in result.stderr + result.stdout, secret
    with EchoServer(status=401) as server:
        url = server.url.replace("http://", "http://user:pw-s3cret-99@")
        refused = run_cli("--base-url", url, "--model", "m", "--limit", "1", "--quiet", cwd=tmp_path)
    assert refused.returncode == 2 and "HTTP 401" in refused.stderr and "pw-s3cret-99" not in refused.stderr


def test_a_judge_url_with_a_query_string_keeps_it_in_place(tmp_path: Path) -> None:
    with FaultServer() as model, EchoServer(status=400) as judge:
        result = run_cli("--base-url", model.url, "--model", "m", "--limit", "1", "--quiet", "--graders",
                         "math-critique", "--judge", "j", "--judge-base-url", f"{judge.url}?api-key=q-secret-5151",
                         "--judge-retries", "0", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert judge.posts() == ["/v1/chat/completions?api-key=q-secret-5151"]
    assert "q-secret-5151" not in b"".join(_files(tmp_path / "results").values()).decode()


def test_a_reader_never_overwrites_a_run_or_a_foreign_file(tmp_path: Path) -> None:
    with FaultServer() as server:
        assert (
            run_cli("--base-url", server.url, "--model", "m", "--limit", "3", "--quiet", cwd=tmp_path).returncode == 0
        )
    run = tmp_path / "results" / "m" / "demo"
    before = _files(run)
    attempts = [
        ("export", str(run), "--format", "rft", "--decide", "rule", "--out", str(run / "generations.jsonl")),
        ("leaderboard", "results", "--markdown", str(run / "grades.jsonl")),
        ("leaderboard", "results", "--out", str(run / "board")),
        ("agreement", f"{run}:answer", f"{run}:answer", "--out", str(run)),
        ("compare", str(run), str(run), "--out", str(run / "cmp")),
    ]
    for args in attempts:
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2 and "is inside the run directory" in result.stderr, (args, result.stderr)
    assert _files(run) == before
    assert run_cli("verify", str(run), cwd=tmp_path).returncode == 0
    (tmp_path / "notes.md").write_text("my own notes\n")
    foreign = run_cli("leaderboard", "results", "--markdown", "notes.md", cwd=tmp_path)
    assert foreign.returncode == 2 and "is not an earlier output of mue-eval" in foreign.stderr
    assert (tmp_path / "notes.md").read_text() == "my own notes\n"
    first = run_cli("leaderboard", "results", "--markdown", "board.md", "--out", "board", cwd=tmp_path)
    again = run_cli("leaderboard", "results", "--markdown", "board.md", "--out", "board", cwd=tmp_path)
    assert first.returncode == 0 and again.returncode == 0, again.stderr  # its own earlier output: rewritten
    (tmp_path / "board" / "leaderboard.md").write_text("edited by hand\n")
    edited = run_cli("leaderboard", "results", "--out", "board", cwd=tmp_path)
    assert edited.returncode == 2 and "board/leaderboard.md exists" in edited.stderr


def test_verify_catches_a_forger_with_a_text_editor(tmp_path: Path) -> None:
    with FaultServer() as server:
        for name in ("strip", "cut", "counts", "manifest"):
            args = ["--base-url", server.url, "--model", "m", "--limit", "4", "--quiet", "--name", name]
            assert run_cli(*args, "--stop", "answer", cwd=tmp_path).returncode == 0
    root = tmp_path / "results"
    # every digest stripped and every grade set right
    grades = root / "strip/demo/grades.jsonl"
    rows = [json.loads(line) for line in grades.read_text().splitlines()]
    grades.write_text("".join(json.dumps({**{k: v for k, v in r.items() if k != "digest"}, "score": 1.0,
                                          "correct": True}) + "\n" for r in rows))  # fmt: skip
    # the last line of a record file deleted
    cut = root / "cut/demo/generations.jsonl"
    cut.write_text("".join(cut.read_text().splitlines(keepends=True)[:-1]))
    # summary counts and n edited (its metrics left as they were)
    summary_path = root / "counts/demo/summary.json"
    summary = json.loads(summary_path.read_text())
    summary["counts"]["graded"], summary["metrics"][0]["n"] = 40, 40
    summary_path.write_text(json.dumps(summary))
    # the manifest edited
    manifest_path = root / "manifest/demo/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["params"]["temperature"] = 0.7
    manifest_path.write_text(json.dumps(manifest))
    result = run_cli("verify", "results", cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "strip/demo/grades.jsonl:1: a record without its digest" in out
    assert "cut/demo/generations.jsonl: holds 3 records, the writer left 4: lines were deleted" in out
    assert "counts/demo/summary.json: changed after it was written" in out and "counts.graded = 40" in out
    assert "accuracy n = 40 but the records give 4" in out
    assert "manifest/demo/manifest.json: changed after it was written (its seal does not match)" in out
    board = run_cli("leaderboard", "results", "--markdown", "board.md", cwd=tmp_path)
    table = (tmp_path / "board.md").read_text()
    for name in ("strip", "cut", "counts", "manifest"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert "edited]" in row, row  # the leaderboard marks every run that does not verify
    assert board.returncode == 0


def test_task_names_from_plugins_stay_inside_out_and_print_as_text(tmp_path: Path) -> None:
    (tmp_path / "names.py").write_text(
        "import mathusereval as mue\n"
        "def load(_):\n"
        "    return mue.LoadedData([mue.Sample('x', 'q0', mue.user_turn('ANSWER:7'), '7')], '0' * 64, 'inline')\n"
        "for name in ('../../evil', 'red\\x1b[31mtask'):\n"
        "    mue.register('tasks', name, mue.Task(name, '1', load, ('answer',), mue.accuracy))\n"
    )
    with FaultServer() as server:
        result = run_cli("--include", "names.py", "--base-url", server.url, "--model", "m", "--quiet",
                         "--tasks", "../../evil,red\x1b[31mtask", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.parent.name for p in (tmp_path / "results").rglob("manifest.json")) == ["evil", "red_31mtask"]
    assert not (tmp_path.parent / "evil").exists() and not list(tmp_path.glob("evil*"))
    board = run_cli("--include", "names.py", "leaderboard", "results", "--out", "board", "--markdown", "b.md",
                    cwd=tmp_path)  # fmt: skip
    assert board.returncode == 0, board.stderr
    written = {p: p.read_bytes() for p in (tmp_path / "board").rglob("*") if p.is_file()}
    assert all(p.resolve().is_relative_to((tmp_path / "board").resolve()) for p in written)
    for text in (result.stdout, result.stderr, board.stdout, board.stderr, (tmp_path / "b.md").read_text()):
        assert "\x1b" not in text
    assert not any(b"\x1b" in data for p, data in written.items() if p.suffix in (".md", ".csv"))


def test_budgets_report_what_the_replies_cost_and_overshoot_by_one_request_at_most(tmp_path: Path) -> None:
    """Each reply costs 15 tokens; 64 requests in flight: before, --max-tokens-total 30 spent 375 and said
    "spent 30 of 30"."""
    with FaultServer() as server:
        result = run_cli("--base-url", server.url, "--model", "m", "--quiet", "--concurrency", "64",
                         "--max-tokens-total", "30", cwd=tmp_path)  # fmt: skip
        sent = sum(server.requests.values())
    assert result.returncode == 1
    gens = [json.loads(x) for x in (tmp_path / "results/m/demo/generations.jsonl").read_text().splitlines()]
    spent = sum(g["usage"]["prompt_tokens"] + g["usage"]["completion_tokens"] for g in gens)
    assert len(gens) == sent and spent == 15 * sent and spent <= 30 + 15
    assert f"spent {spent} of 30 tokens" in result.stderr
    summary = json.loads((tmp_path / "results/m/demo/summary.json").read_text())
    assert summary["stopped"] == f"generation budget exhausted: spent {spent} of 30 tokens"
    with FaultServer() as server:  # USD: 15 tokens at 1000/2000 per million = $0.02 a reply
        cost = run_cli("--base-url", server.url, "--model", "m", "--quiet", "--concurrency", "64", "--out", "usd",
                       "--price", "1000,2000", "--max-cost", "0.05", cwd=tmp_path)  # fmt: skip
        sent = sum(server.requests.values())
    assert cost.returncode == 1 and 0.05 <= 0.02 * sent <= 0.05 + 0.02 + 1e-9
    assert f"spent ${0.02 * sent:.4f} of $0.05" in cost.stderr


PLUGINS = """
import math
import mathusereval as mue

def load(_):
    return mue.LoadedData([mue.Sample("bad-out", f"q{i}", mue.user_turn(f"ANSWER:{i}"), str(i)) for i in range(6)],
                          "0" * 64, "inline")

SCORES = [float("nan"), float("inf"), 2.0, "high", 1.0, 0.0]

def odd(sample, generation):
    k = int(sample.id[1:])
    right = SCORES[k] == 1.0
    return mue.Grade(sample.id, generation.n_index, "odd", SCORES[k], "yes" if k == 5 else right)

odd.score_range = (0.0, 1.0)

class Weird:
    model = "weird"
    def describe(self): return {}
    async def aclose(self): pass
    async def generate(self, requests, params):
        texts = [None, 7, ["a"], "ok \\ud800 \\\\boxed{3}", "\\\\boxed{4}", "\\\\boxed{5}"]
        for r in requests:
            yield mue.Generation(r.sample.id, r.n_index, "weird", text=texts[int(r.sample.id[1:])])

class Nones(Weird):
    async def generate(self, requests, params):
        yield None

mue.register("graders", "odd", odd)
mue.register("tasks", "bad-out", mue.Task("bad-out", "1", load, ("odd", "answer"), mue.accuracy))
mue.register("backends", "weird", lambda spec: Weird())
mue.register("backends", "nones", lambda spec: Nones())
mue.register("tasks", "gen-loader", mue.Task("gen-loader", "1", lambda _: (x for x in ()), ("answer",), mue.accuracy))
"""


def test_plugin_output_is_checked_not_trusted(tmp_path: Path) -> None:
    (tmp_path / "plugins.py").write_text(PLUGINS)
    base = ["--include", "plugins.py", "--quiet", "--model", "w"]
    with FaultServer() as server:
        graded = run_cli(*base, "--tasks", "bad-out", "--base-url", server.url, cwd=tmp_path)
    assert graded.returncode in (0, 1), graded.stderr
    rows = map(json.loads, (tmp_path / "results/w/bad-out/grades.jsonl").read_text().splitlines())
    grades = {g["sample_id"]: g for g in rows if g["grader"] == "odd"}
    for sid, reason in (("q0", "the score nan"), ("q1", "the score inf"), ("q2", "outside its range 0-1"),
                        ("q3", "a score of type str"), ("q5", "not a bool")):  # fmt: skip
        assert grades[sid]["score"] is None and reason in grades[sid]["error"], (sid, grades[sid])
    summary = json.loads((tmp_path / "results/w/bad-out/summary.json").read_text())
    assert summary["metrics"][0]["value"] == 1.0 and summary["metrics"][0]["n"] == 1  # only q4 scored
    assert summary["counts"]["failed_grades"] == 5
    weird = run_cli(*base, "--tasks", "bad-out", "--backend", "weird", "--out", "weird", cwd=tmp_path)
    assert weird.returncode == 1 and "Traceback" not in weird.stderr, weird.stderr
    lines = (tmp_path / "weird/w/bad-out/generations.jsonl").read_text().splitlines()
    gens = {g["sample_id"]: g for g in map(json.loads, lines)}
    assert [gens[f"q{i}"]["error"] is not None for i in range(6)] == [True, True, True, False, False, False]
    assert "returned text of type NoneType" in gens["q0"]["error"] and "\ufffd" in gens["q3"]["text"]
    export = ("export", "weird", "--format", "rft", "--decide", "rule", "--rule-grader", "answer", "--out", "x.jsonl")
    for args in (("leaderboard", "weird", "--out", "wboard"), export):
        out = run_cli("--include", "plugins.py", *args, cwd=tmp_path)
        assert out.returncode in (0, 1) and "Traceback" not in out.stderr, (args, out.stderr)
    nones = run_cli(*base, "--tasks", "bad-out", "--backend", "nones", "--out", "nones", cwd=tmp_path)
    assert nones.returncode == 2 and "backend 'Nones' yielded a NoneType" in nones.stderr
    loader = run_cli(*base, "--tasks", "gen-loader", "--backend", "weird", "--out", "gen", cwd=tmp_path)
    assert loader.returncode == 2 and "task 'gen-loader': its loader returned generator" in loader.stderr
    assert "Traceback" not in nones.stderr + loader.stderr


def test_a_run_directory_that_is_a_symbolic_link_is_refused_by_every_reader(tmp_path: Path) -> None:
    with FaultServer() as server:
        assert (
            run_cli("--base-url", server.url, "--model", "m", "--limit", "2", "--quiet", cwd=tmp_path).returncode == 0
        )
    (tmp_path / "linked" / "m").mkdir(parents=True)
    (tmp_path / "linked" / "m" / "demo").symlink_to(tmp_path / "results" / "m" / "demo")
    for args in (
        ("leaderboard", "linked"),
        ("verify", "linked"),
        ("export", "linked", "--format", "rft", "--out", "e.jsonl"),
    ):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode != 0 and "is a symbolic link" in result.stderr, (args, result.stderr)
