"""What a run is: every setting that changes answers or what is graded is part of its identity, so a resume
with another one is refused naming it, and nothing is mixed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mathusereval.backends import ModelSpec
from mathusereval.errors import ConfigError
from mathusereval.records import Sample
from mathusereval.run.pipeline import RunOptions
from mathusereval.store import RunStore

from .conftest import inline_task, run_cli, run_openai
from .fault_server import FaultServer


def _samples() -> list[Sample]:
    prompts = ["ANSWER:7 FAULT:think", "ANSWER:3"]
    return [Sample("identity", f"q{i}", ({"role": "user", "content": p},), "7") for i, p in enumerate(prompts)]


def _records(directory: Path) -> bytes:
    return b"".join((directory / name).read_bytes() for name in ("manifest.json", "generations.jsonl"))


@pytest.mark.parametrize(
    ("first", "second", "named"),
    [
        ({"think": "strip"}, {"think": "keep"}, "think: 'strip' -> 'keep'"),
        ({"endpoint": "chat"}, {"endpoint": "completions"}, "backend.endpoint: 'chat' -> 'completions'"),
    ],
)
def test_a_resume_with_another_think_or_endpoint_is_refused_naming_it(
    tmp_path: Path, first: dict[str, str], second: dict[str, str], named: str
) -> None:
    """Before the redesign both resumed and mixed answers graded two ways in one run."""
    task = inline_task("identity", _samples())
    with FaultServer() as server:

        def run(setting: dict[str, str]) -> object:
            think = setting.get("think", "strip")
            spec = ModelSpec.of("openai", "m", base_url=server.url, endpoint=setting.get("endpoint", "chat"))
            return run_openai(task, spec, RunOptions(out=tmp_path, progress=False, think=think))

        run(first)
        directory = tmp_path / "m" / "identity"
        before = _records(directory)
        sent = sum(server.requests.values())
        with pytest.raises(ConfigError, match="different settings") as refused:
            run(second)
        assert named in str(refused.value)
        assert _records(directory) == before and sum(server.requests.values()) == sent  # nothing sent or written
        manifest = json.loads((directory / "manifest.json").read_text())
        assert manifest["settings"][named.split(":")[0]] == next(iter(first.values()))


def test_the_lm_eval_judge_cache_is_written_through_the_locked_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second lm-eval process on the same judge cache is refused before it builds or calls a judge."""
    from mathusereval.lmeval import hooks
    from mathusereval.plugins import registry

    monkeypatch.setenv("MUE_JUDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MUE_JUDGE", "judge-model")
    monkeypatch.setenv("MUE_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens: a call would fail
    holder = RunStore(tmp_path / "cache" / "mathusereval")
    holder.lock()
    try:
        task = registry.lookup("tasks", "mathusereval")
        with pytest.raises(ConfigError, match="is being written by another mue-eval"):
            asyncio.run(hooks._judge_all(task, []))
    finally:
        holder.unlock()
    assert not (tmp_path / "cache" / "mathusereval" / "judgments.jsonl").exists()


def _embedded_copies(root: Path, *names: str) -> list[Path]:
    """Links to the embedded GGUF under other paths: checkpoints that share a file name."""
    from mathusereval.backends.base import embedded_gguf_path

    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(embedded_gguf_path())
        paths.append(path)
    return paths


SMALL = ("--tasks", "demo", "--limit", "2", "--max-tokens", "12", "--quiet")


@pytest.mark.slow
def test_checkpoints_with_one_file_name_are_two_runs_and_two_rows(tmp_path: Path) -> None:
    """ck1/model.gguf and ck2/model.gguf: before, the second was refused as 'model changed'."""
    first, second = _embedded_copies(tmp_path, "ck1/model.gguf", "ck2/model.gguf")
    for path in (first, second):
        result = run_cli("--model", str(path), *SMALL, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    manifests = sorted((tmp_path / "results").glob("*/demo/manifest.json"))
    assert [p.parent.parent.name for p in manifests] == ["ck1-model", "ck2-model"]  # by folder, not run order
    assert {json.loads(p.read_text())["model"] for p in manifests} == {str(first), str(second)}
    board = run_cli("leaderboard", "results", "--markdown", "board.md", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    rows = [line.split(" | ")[0] for line in (tmp_path / "board.md").read_text().splitlines()[2:]]
    assert sorted(rows) == ["| ck1/model", "| ck2/model"]


def test_runs_in_separate_trees_with_other_settings_are_rows_of_their_own(tmp_path: Path) -> None:
    """One served model run with two --max-tokens in two --out trees: before, one row vanished."""
    with FaultServer() as server:
        for out, tokens in (("one", "77"), ("two", "1024")):
            args = ["--base-url", server.url, "--model", "m", "--limit", "2", "--max-tokens", tokens, "--quiet"]
            assert run_cli(*args, "--out", f"trees/{out}", cwd=tmp_path).returncode == 0
        named = run_cli("--base-url", server.url, "--model", "m", "--limit", "2", "--name", "m-named", "--quiet",
                        "--out", "trees/three", cwd=tmp_path)  # fmt: skip
        assert named.returncode == 0, named.stderr
    board = run_cli("leaderboard", "trees", "--markdown", "board.md", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    rows = sorted(line.split(" | ")[0] for line in (tmp_path / "board.md").read_text().splitlines()[2:])
    assert rows == ["| m [max_tokens=1024]", "| m [max_tokens=77]", "| m-named"]
    manifest = json.loads((tmp_path / "trees/three/m-named/demo/manifest.json").read_text())
    assert manifest["name"] == "m-named" and manifest["run_id"] == "m-named/demo"
