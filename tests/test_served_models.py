"""The OpenAI-compatible backend's features against deterministic loopback servers: load balancing,
completions, reasoning, Retry-After, secrets, budgets, truncation."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from mathusereval.backends import ModelSpec
from mathusereval.backends.openai_compat import OpenAIBackend
from mathusereval.backends.options import Secret
from mathusereval.plugins.task import user_turn
from mathusereval.records import Generation, GenerationParams, Request, Sample
from mathusereval.run.pipeline import RunOptions
from mathusereval.run.postprocess import split_reasoning

from .conftest import free_port, inline_task, run_cli, run_openai
from .fault_server import FaultServer


def _samples(prompts: list[str]) -> list[Sample]:
    return [Sample("served", f"q{i}", user_turn(p), "7") for i, p in enumerate(prompts)]


def _generate(spec: ModelSpec, prompts: list[str]) -> list[Generation]:
    async def go() -> list[Generation]:
        backend = OpenAIBackend(spec)
        try:
            return [g async for g in backend.generate([Request(s) for s in _samples(prompts)], GenerationParams())]
        finally:
            await backend.aclose()

    return sorted(asyncio.run(go()), key=lambda g: int(g.sample_id[1:]))


def test_load_balancing_spreads_work_and_routes_around_a_dead_endpoint() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with FaultServer() as a, FaultServer() as b:
        spec = ModelSpec.of(
            "openai",
            "m",
            **{"base_url": f"{a.url},{dead},{b.url}", "concurrency": 2, "backoff": 0.01, "max_retries": 3},
        )
        gens = _generate(spec, [f"ANSWER:7 item {i}" for i in range(40)])
        assert all(g.ok for g in gens), [g.error for g in gens if not g.ok]
        served_a, served_b = sum(a.requests.values()), sum(b.requests.values())
        assert served_a + served_b == 40
        assert min(served_a, served_b) >= 10, (served_a, served_b)  # both replicas took a real share


def test_completions_endpoint_and_reasoning_kept_apart_from_the_answer(tmp_path: Path) -> None:
    with FaultServer() as server:
        prompts = ["ANSWER:7 FAULT:think", "ANSWER:7 FAULT:reasoning", "ANSWER:7 FAULT:length"]
        for endpoint in ("completions", "chat"):
            spec = ModelSpec.of("openai", "m", **{"base_url": server.url, "endpoint": endpoint})
            result = run_openai(inline_task(f"think-{endpoint}", _samples(prompts)), spec, RunOptions(out=tmp_path))
            assert result.counts.truncated == 1 and result.counts.generations == 3
            assert result.metrics[0].value == pytest.approx(2 / 3)  # 7, not the 99 in the reasoning
            rows = [
                json.loads(line)
                for line in (tmp_path / "m" / f"think-{endpoint}" / "generations.jsonl").read_text().splitlines()
            ]
            think = next(r for r in rows if r["sample_id"] == "q0")
            assert think["text"] == "The answer is \\boxed{7}" and "99" in think["reasoning"]
        assert server.paths["/v1/completions"] == 3 and server.paths["/v1/chat/completions"] == 3
        keep = _generate(ModelSpec.of("openai", "m", **{"base_url": server.url}), ["ANSWER:7 FAULT:think"])
        assert keep[0].text.startswith("<think>") and keep[0].reasoning is None


def test_split_reasoning_edge_cases() -> None:
    assert split_reasoning("plain \\boxed{3}") == ("plain \\boxed{3}", None)
    assert split_reasoning("<think>a</think>b</think> c") == ("c", "a</think>b")
    assert split_reasoning("<think>cut off while thinking \\boxed{5}") == ("", "cut off while thinking \\boxed{5}")
    assert split_reasoning("text mentions <think> later") == ("text mentions <think> later", None)


def test_retry_after_is_honoured() -> None:
    with FaultServer() as server:
        spec = ModelSpec.of("openai", "m", **{"base_url": server.url, "backoff": 0.01})
        start = time.monotonic()
        [gen] = _generate(spec, ["ANSWER:7 FAULT:ra1,ok"])
        assert gen.ok and time.monotonic() - start >= 1.0  # waited the server's 1 s, not our 10 ms backoff
        assert server.requests["ANSWER:7 FAULT:ra1,ok"] == 2


def test_api_key_and_headers_are_sent_but_never_written(tmp_path: Path) -> None:
    assert "sk-" not in repr(Secret("sk-flag-secret"))
    with FaultServer() as server:
        result = run_cli(
            *("--base-url", server.url, "--model", "m", "--tasks", "demo", "--limit", "2", "--quiet"),
            *("--api-key", "sk-flag-secret", "--header", "X-Org: org-secret"),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert server.headers["Authorization"] == "Bearer sk-flag-secret" and server.headers["X-Org"] == "org-secret"
    run = tmp_path / "results" / "m" / "demo"
    written = "".join(p.read_text() for p in run.iterdir()) + result.stdout + result.stderr
    assert "sk-flag-secret" not in written and "org-secret" not in written
    config = json.loads((run / "manifest.json").read_text())["backend_config"]
    assert config["extra_headers"] == ["X-Org"] and config["api_key_from"] == "--api-key"


def test_token_budget_stops_cleanly_and_the_next_run_finishes(tmp_path: Path) -> None:
    """Every reply costs 15 tokens; a 45-token budget is spent by the third answer. The fourth request is in
    flight by then (one slot, freed as the third finished): it is kept, as it is paid for; nothing more is sent."""
    common = ("--model", "m", "--tasks", "demo", "--limit", "8", "--quiet", "--concurrency", "1")
    with FaultServer() as server:
        first = run_cli(
            "--base-url", server.url, *common, "--max-tokens-total", "45", "--price", "1000,2000", cwd=tmp_path
        )
        assert first.returncode == 1 and "generation budget exhausted: spent 45 of 45 tokens" in first.stderr
        summary = json.loads((tmp_path / "results" / "m" / "demo" / "summary.json").read_text())
        sent = sum(server.requests.values())
        assert sent in (3, 4)  # 4 unless the stop came before the freed slot was taken
        assert summary["counts"]["generations"] == sent and summary["counts"]["missing"] == 8 - sent  # all kept
        assert summary["stopped"].startswith("generation budget exhausted")
        assert summary["cost_usd"] == pytest.approx(sent * (10 * 1000 + 5 * 2000) / 1e6)

        second = run_cli("--base-url", server.url, *common, cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert sum(server.requests.values()) - sent == 8 - sent  # only what the first run did not generate
        assert all(n == 1 for n in server.requests.values())  # nothing paid for twice
    summary = json.loads((tmp_path / "results" / "m" / "demo" / "summary.json").read_text())
    assert summary["counts"]["generations"] == 8 and summary["stopped"] is None


def test_bad_served_options_fail_before_anything_runs(tmp_path: Path) -> None:
    for args, message in (
        (("--header", "no-colon"), "--header wants 'NAME: VALUE'"),
        (("--max-cost", "1"), "--max-cost is in USD: also pass --price IN,OUT"),
        (("--price", "1"), "--price wants IN,OUT"),
        (("--max-retries", "-1"), "--max-retries must be 0 or more"),
    ):
        result = run_cli("--base-url", "http://127.0.0.1:9/v1", "--model", "m", *args, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "results").exists()
