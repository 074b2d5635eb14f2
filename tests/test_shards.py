"""--shard I/N: N independent processes cover a task exactly once; the leaderboard reads the shards as
one run that equals an unsharded run item for item; a missing shard is partial; a killed shard resumes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mathusereval.data.shards import parse_shard, shard_of
from mathusereval.plugins import registry

from .conftest import run_cli, start_cli, wait_for_lines
from .hostile_server import HostileServer
from .judge_server import ScriptedServer

GOLD = {s.messages[-1]["content"]: s.reference for s in registry.lookup("tasks", "demo").load(None).samples}


def _script(body: dict[str, Any], _attempt: int) -> str:
    prompt = body["messages"][-1]["content"]
    right = int(hashlib.sha256(prompt.encode()).hexdigest()[:4], 16) % 3 != 0
    return f"The answer is \\boxed{{{GOLD[prompt] if right else 'nope'}}}."


def _grades(directory: Path) -> dict[tuple[str, int], float | None]:
    out = {}
    for path in sorted(directory.rglob("grades.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out[(row["sample_id"], row["n_index"])] = row["score"]
    return out


def _row(markdown: Path, model: str) -> str:
    return next(line for line in markdown.read_text().splitlines() if line.startswith(f"| {model} |"))


def test_shards_cover_the_task_once_and_read_back_as_the_whole_run(tmp_path: Path) -> None:
    with ScriptedServer(_script) as server:
        args = ["--base-url", server.url, "--model", "m", "--tasks", "demo", "--quiet"]
        whole = run_cli(*args, "--out", "whole", cwd=tmp_path)
        assert whole.returncode == 0, whole.stderr
        jobs = [start_cli(*args, "--out", "sharded", "--shard", f"{i}/3", cwd=tmp_path) for i in range(3)]
        for job in jobs:
            _, err = job.communicate(timeout=300)
            assert job.returncode == 0, err
    shard_dirs = sorted((tmp_path / "sharded" / "m" / "demo").glob("shard-*-of-3"))
    assert [d.name for d in shard_dirs] == ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]
    ids = [{json.loads(x)["id"] for x in (d / "samples.jsonl").read_text().splitlines()} for d in shard_dirs]
    assert sum(map(len, ids)) == 25 and len(set().union(*ids)) == 25  # every item exactly once
    assert all(shard_of("demo", sid, 3) == k for k, shard in enumerate(ids) for sid in shard)
    assert _grades(tmp_path / "sharded") == _grades(tmp_path / "whole")  # item for item

    for out in ("whole", "sharded"):
        board = run_cli("leaderboard", out, "--markdown", f"{out}.md", cwd=tmp_path)
        assert board.returncode == 0 and "partial" not in board.stderr, board.stderr
    assert _row(tmp_path / "sharded.md", "m") == _row(tmp_path / "whole.md", "m")  # the same metrics exactly

    # a missing shard: partial with the n it has, never a silently smaller n
    missing = shard_dirs[2]
    missing.rename(tmp_path / "aside")
    board = run_cli("leaderboard", "sharded", "--markdown", "partial.md", cwd=tmp_path)
    have = len(ids[0]) + len(ids[1])
    assert f"partial run, {have} of 25 answers scored" in board.stderr
    assert f"[partial {have}/25]" in _row(tmp_path / "partial.md", "m")
    # a shard started with other settings than its siblings is refused at once, naming the sibling
    with ScriptedServer(_script) as server:
        other = run_cli("--base-url", server.url, "--model", "m", "--tasks", "demo", "--quiet", "--out", "sharded",
                        "--shard", "2/3", "--max-tokens", "99", cwd=tmp_path)  # fmt: skip
        assert other.returncode == 2 and "its sibling shard" in other.stderr and "params" in other.stderr
        assert not (tmp_path / "sharded/m/demo/shard-2-of-3").exists()
        # one made elsewhere and moved in: the leaderboard shows the others as partial and names it
        odd = run_cli("--base-url", server.url, "--model", "m", "--tasks", "demo", "--quiet", "--out", "odd",
                      "--shard", "2/3", "--max-tokens", "99", cwd=tmp_path)  # fmt: skip
        assert odd.returncode == 0, odd.stderr
    (tmp_path / "odd/m/demo/shard-2-of-3").rename(tmp_path / "sharded/m/demo/shard-2-of-3")
    board = run_cli("leaderboard", "sharded", "--markdown", "odd.md", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert "shard-2-of-3: this shard was run with other settings than its siblings" in board.stderr
    assert f"[partial {have}/25]" in _row(tmp_path / "odd.md", "m")


def test_a_killed_shard_resumes_without_duplicates(tmp_path: Path) -> None:
    with HostileServer(["slow"]) as server:
        cmd = ["--base-url", server.url, "--model", "s", "--tasks", "demo", "--shard", "1/2"]
        job = start_cli(*cmd, "--concurrency", "1", "--quiet", cwd=tmp_path)
        gens = tmp_path / "results" / "s" / "demo" / "shard-1-of-2" / "generations.jsonl"
        wait_for_lines(gens, 2, job)
        job.kill()
        job.communicate(timeout=30)
        again = run_cli(*cmd, "--quiet", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
    lines = [json.loads(x) for x in gens.read_text().splitlines()]
    keys = [(r["sample_id"], r["n_index"]) for r in lines]
    assert len(keys) == len(set(keys)) == sum(shard_of("demo", s, 2) == 1 for s in {x.id for x in
        registry.lookup("tasks", "demo").load(None).samples})  # fmt: skip


def test_shard_syntax() -> None:
    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/2", "a/b", "1"):
        try:
            parse_shard(bad)
        except Exception as exc:  # noqa: BLE001
            assert "--shard" in str(exc)
        else:
            raise AssertionError(bad)


def test_every_reader_reads_shards_as_one_run(tmp_path: Path) -> None:
    """results.load, export, agreement, compare and verify see a sharded run as the one run it is: the same
    items as the unsharded run, and partial when a shard is missing."""
    from mathusereval import results

    with ScriptedServer(_script) as server:
        args = ["--base-url", server.url, "--model", "m", "--tasks", "demo", "--quiet"]
        assert run_cli(*args, "--out", "whole", cwd=tmp_path).returncode == 0
        for i in range(2):
            shard = run_cli(*args, "--out", "sharded", "--shard", f"{i}/2", cwd=tmp_path)
            assert shard.returncode == 0, shard.stderr
    sharded, whole = tmp_path / "sharded" / "m" / "demo", tmp_path / "whole" / "m" / "demo"

    frames = results.load(tmp_path / "sharded")
    assert len(frames.runs) == 1 and len(frames.items) == 25
    assert frames.runs.iloc[0]["answers"] == 25 and not frames.runs.iloc[0]["partial"]
    exported = run_cli("export", "--format", "rft", "--decide", "rule", "--out", "rft.jsonl", str(sharded),
                       cwd=tmp_path)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    reference = run_cli("export", "--format", "rft", "--decide", "rule", "--out", "ref.jsonl", str(whole), cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr

    def prompts(name: str) -> list[str]:
        return sorted(json.loads(x)["messages"][0]["content"] for x in (tmp_path / name).read_text().splitlines())

    assert prompts("rft.jsonl") == prompts("ref.jsonl") and prompts("rft.jsonl")
    agreement = run_cli("agreement", f"{sharded}:answer", f"{whole}:answer", "--out", "agree", cwd=tmp_path)
    assert agreement.returncode == 0, agreement.stderr
    agreed = json.loads((tmp_path / "agree" / "agreement.json").read_text())
    assert agreed["counts"], agreed
    paired = sum(c for row in agreed["confusion"].values() for c in row.values())
    assert agreed["counts"]["answers"] == 25 and paired == 25
    compared = run_cli("compare", str(whole), str(sharded), "--json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    comparison = json.loads(compared.stdout)["comparisons"][0]
    assert comparison["n"] == 25 and comparison["delta"] == 0
    verified = run_cli("verify", str(tmp_path / "sharded"), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    (sharded / "shard-1-of-2").rename(tmp_path / "aside")
    frames = results.load(tmp_path / "sharded")
    assert len(frames.runs) == 1 and 0 < len(frames.items) < 25
    assert frames.runs.iloc[0]["expected"] == 25 and frames.runs.iloc[0]["partial"]
    verified = run_cli("verify", str(tmp_path / "sharded"), cwd=tmp_path)
    assert "shard-1-of-2" in verified.stdout + verified.stderr and "missing" in verified.stdout + verified.stderr
    compared = run_cli("compare", str(whole), str(sharded), "--json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["comparisons"][0]["n"] < 25
