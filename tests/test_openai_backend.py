"""The OpenAI-compatible backend against a real llama.cpp server and a fault-injecting server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from mathusereval.backends import ModelSpec
from mathusereval.backends.openai_compat import OpenAIBackend
from mathusereval.plugins.task import Task, user_turn
from mathusereval.records import GenerationParams, Request, Sample
from mathusereval.run.pipeline import RunOptions

from .conftest import inline_task, run_cli, run_openai
from .fault_server import FaultServer


@pytest.mark.slow
def test_real_llama_cpp_server_on_gsm8k(tmp_path: Path, shared_data: Path, llama_server: str) -> None:
    result = run_cli(
        "--base-url",
        llama_server,
        "--model",
        "smollm2-135m-instruct",
        "--tasks",
        "gsm8k",
        "--limit",
        "3",
        "--max-tokens",
        "32",
        "--concurrency",
        "2",
        "--quiet",
        "--data-dir",
        str(shared_data),
        cwd=tmp_path,
        env={"OPENAI_API_KEY": "sk-secret-test"},
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "results" / "smollm2-135m-instruct" / "gsm8k"
    gens = [json.loads(line) for line in (run / "generations.jsonl").read_text().splitlines()]
    assert len(gens) == 3 and all(g["error"] is None and g["text"] for g in gens)
    assert all(g["usage"]["completion_tokens"] > 0 and g["finish_reason"] in ("stop", "length") for g in gens)
    assert "sk-secret-test" not in "".join(p.read_text() for p in run.iterdir())


def _task(prompts: list[str]) -> Task:
    return inline_task("faults", [Sample("faults", f"q{i}", user_turn(p), "7") for i, p in enumerate(prompts)])


PLANS = {
    "q0": "ANSWER:7 FAULT:429,429,ok",  # Retry-After: 0, then success
    "q1": "ANSWER:7 FAULT:429slow,ok",  # no Retry-After: our own backoff
    "q2": "ANSWER:7 FAULT:500,503,ok",
    "q3": "ANSWER:7 FAULT:reset,ok",
    "q4": "ANSWER:7 FAULT:badjson,ok",
    "q5": "ANSWER:7 FAULT:empty,ok",
    "q6": "ANSWER:7 FAULT:hang,ok",  # client timeout, then success
    "q7": "ANSWER:7 FAULT:400",  # not retryable: recorded as an error at once
    "q8": "ANSWER:7 FAULT:503",  # retries exhausted: recorded as an error
    "q9": "ANSWER:3",  # plainly wrong answer: graded 0, not an error
}


def test_faults_become_data_and_a_rerun_redoes_only_errors(tmp_path: Path) -> None:
    with FaultServer() as server:
        spec = ModelSpec.of(
            "openai",
            "fault-model",
            **{"base_url": server.url, "timeout": 1.0, "max_retries": 3, "backoff": 0.01, "concurrency": 4},
        )
        task = _task(list(PLANS.values()))
        options = RunOptions(out=tmp_path, progress=False)

        first = run_openai(task, spec, options)
        counts = first.counts
        assert counts.generations == 8 and counts.errors == 2 and counts.graded == 8
        assert first.metrics[0].value == pytest.approx(7 / 8)
        assert server.requests[PLANS["q7"]] == 1  # 400 is never retried
        assert server.requests[PLANS["q8"]] == 4  # 1 + max_retries
        assert server.requests[PLANS["q0"]] == 3
        sent_before = dict(server.requests)

        second = run_openai(task, spec, options)  # only q7 and q8 go out again; both still fail
        resent = {p for p, n in server.requests.items() if n != sent_before.get(p)}
        assert resent == {PLANS["q7"], PLANS["q8"]}
        assert second.counts.reused == 8 and second.counts.errors == 2
        errors = [
            json.loads(line)
            for line in (tmp_path / "fault-model" / "faults" / "generations.jsonl").read_text().splitlines()
            if json.loads(line)["error"]
        ]
        assert {e["sample_id"] for e in errors} == {"q7", "q8"} and "HTTP 400" in errors[0]["error"]


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    """Twelve requests that each take 0.2 s finish in about three waves with four slots."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    active, peak, lock = [0], [0], threading.Lock()

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.2)
            with lock:
                active[0] -= 1
            body = json.dumps({"choices": [{"message": {"content": "\\boxed{7}"}, "finish_reason": "stop"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        spec = ModelSpec.of(
            "openai", "m", **{"base_url": f"http://127.0.0.1:{httpd.server_address[1]}/v1", "concurrency": 4}
        )
        task = _task([f"question {i}" for i in range(12)])

        async def go() -> float:
            backend = OpenAIBackend(spec)
            start = time.monotonic()
            async for _ in backend.generate([Request(s) for s in task.load(None).samples], GenerationParams()):
                pass
            await backend.aclose()
            return time.monotonic() - start

        elapsed = asyncio.run(go())
        assert peak[0] == 4
        assert 0.55 < elapsed < 3.0
    finally:
        httpd.shutdown()
        httpd.server_close()
