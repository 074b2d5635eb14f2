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

from .conftest import inline_task, run_openai
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
