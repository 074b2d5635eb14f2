"""The Batch API (``--judge-batch``, ``--batch``) against a loopback Batch API server: judged runs with no
direct judge call, resume of an interrupted batch without a second one, retried failed lines and expired
batches, reruns that send nothing, costs at the discount, and the real ``openai`` SDK on the same server."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
from pathlib import Path

import pytest

from .batch_server import USAGE, BatchServer
from .conftest import MUE_EVAL, cli_env, run_cli, wait_for_lines
from .judge_server import ScriptedServer

RUN = Path("results/served/mathusereval")


def _score(body: dict[str, object]) -> str:
    digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).digest()  # type: ignore[index]
    return f"步骤正确。\n评分：[[{1 + digest[0] % 10}]]"


def _judged(tmp_path: Path, shared_data: Path, model_url: str, judge_url: str, *extra: str) -> list[str]:
    return [
        *("--model", "served", "--base-url", model_url, "--tasks", "mathusereval", "--limit", "6"),
        *("--data-dir", str(shared_data), "--judge", "judge", "--judge-base-url", judge_url, "--judge-batch"),
        *("--batch-poll", "0.05", "--judge-price", "10,30", "--quiet", *extra),
    ]


def _judge_usage(tmp_path: Path) -> dict[str, float]:
    summary = json.loads((tmp_path / RUN / "summary.json").read_text())
    [usage] = summary["judge_usage"].values()
    return dict(usage)


def test_the_openai_sdk_runs_a_batch_against_the_test_server() -> None:
    from openai import OpenAI

    with BatchServer(lambda body: "pong", polls=1) as server:
        client = OpenAI(base_url=server.url, api_key="sk-test")
        line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "m", "messages": [{"role": "user", "content": "ping"}]}}  # fmt: skip
        uploaded = client.files.create(file=("in.jsonl", io.BytesIO(json.dumps(line).encode())), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.retrieve(batch.id).status == "in_progress"
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed" and done.request_counts and done.request_counts.completed == 1
        assert done.output_file_id is not None
        [reply] = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
        assert reply["custom_id"] == "a" and reply["response"]["body"]["choices"][0]["message"]["content"] == "pong"
        other = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.cancel(other.id).status == "cancelled"


def test_a_judged_run_through_one_batch_at_the_discount(tmp_path: Path, shared_data: Path) -> None:
    with ScriptedServer(lambda body, _: "The answer is 42.") as model, BatchServer(_score) as judge:
        result = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert judge.created == 1 and judge.direct_calls == 0  # every judge call went into the one batch
        grades = [json.loads(x) for x in (tmp_path / RUN / "grades.jsonl").read_text().splitlines()]
        assert len(grades) == 6 and all(g["score"] is not None and g["error"] is None for g in grades)
        usage = _judge_usage(tmp_path)
        per_call = (USAGE["prompt_tokens"] * 10 + USAGE["completion_tokens"] * 30) / 1e6
        assert usage["calls"] == 6 and usage["batches"] == 1
        assert usage["cost_usd"] == pytest.approx(6 * per_call * 0.5) and usage["direct_cost_usd"] == pytest.approx(
            6 * per_call
        )
        assert f"in 1 batch; direct calls would cost ${6 * per_call:.4f}" in result.stderr
        assert (tmp_path / RUN / "batches.jsonl").is_file()

        again = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert judge.created == 1 and judge.direct_calls == 0 and len(model.bodies) == 6  # a rerun sends nothing


def test_an_interrupted_batch_is_resumed_not_created_again(tmp_path: Path, shared_data: Path) -> None:
    with ScriptedServer(lambda body, _: "The answer is 42.") as model, BatchServer(_score) as judge:
        judge.hold.set()
        proc = subprocess.Popen(
            [str(MUE_EVAL), *_judged(tmp_path, shared_data, model.url, judge.url)],
            cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_lines(tmp_path / RUN / "batches.jsonl", 1, proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "batch batch_0 keeps running" in stderr and "it is not created twice" in stderr
        judge.hold.clear()
        resumed = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url), cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming the batch an earlier run created" in resumed.stderr
        assert judge.created == 1 and judge.uploads == 1 and judge.direct_calls == 0
        grades = [json.loads(x) for x in (tmp_path / RUN / "grades.jsonl").read_text().splitlines()]
        assert len({g["sample_id"] for g in grades if g["score"] is not None}) == 6


def test_failed_lines_and_an_expired_batch_are_retried_then_counted(tmp_path: Path, shared_data: Path) -> None:
    with ScriptedServer(lambda body, _: "The answer is 42.") as model, BatchServer(_score) as judge:
        judge.expire = {0}  # the first batch expires with nothing done
        failing: set[str] = set()

        def fail(cid: str, index: int) -> bool:
            if index == 1 and len(failing) < 2:
                failing.add(cid)  # two lines fail in the second batch and pass in the third ...
            return cid in failing and (index == 1 or cid == min(failing))  # ... except one, which always fails

        judge.fail_line = fail
        result = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url, "--judge-retries", "2"), cwd=tmp_path)
        assert result.returncode == 1, result.stderr  # one item could not be judged: counted, exit 1
        assert judge.created == 3 and judge.direct_calls == 0  # expired, 2 failed lines, 1 failed line
        usage = _judge_usage(tmp_path)
        assert usage["call_errors"] == 1 and usage["batches"] == 3
        grades = [json.loads(x) for x in (tmp_path / RUN / "grades.jsonl").read_text().splitlines()]
        failed = [g for g in grades if g["error"]]
        assert len(failed) == 1 and "line failed (status 500)" in failed[0]["error"]

        judge.fail_line = lambda cid, index: False  # the next run judges only that item, in a new batch
        healed = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url), cwd=tmp_path)
        assert healed.returncode == 0, healed.stderr
        assert judge.created == 4 and json.loads(judge.files["file-in-4"].decode().splitlines()[0])["custom_id"]
        assert len(judge.files["file-in-4"].decode().splitlines()) == 1


def test_direct_fallback_sends_what_a_batch_failed_as_direct_calls(tmp_path: Path, shared_data: Path) -> None:
    with ScriptedServer(lambda body, _: "The answer is 42.") as model, BatchServer(_score) as judge:
        judge.fail_line = lambda cid, index: cid.endswith("#0") and index == 0 and cid < "8"
        extra = ("--batch-fallback", "direct")
        result = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url, *extra), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        failed = sum(1 for line in judge.files["file-error-batch_0"].splitlines() if line.strip())
        assert judge.created == 1 and judge.direct_calls == failed > 0


def test_the_model_under_test_through_batches(tmp_path: Path, shared_data: Path) -> None:
    """``--batch``: an API model's answers come from one batch, graded as usual, at the discount."""
    with BatchServer(lambda body: "So the answer is \\boxed{3}.") as api:
        args = ["--model", "api", "--base-url", api.url, "--tasks", "gsm8k", "--limit", "5", "--batch"]
        args += ["--batch-poll", "0.05", "--data-dir", str(shared_data), "--price", "10,30", "--quiet"]
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert api.created == 1 and api.direct_calls == 0
        summary = json.loads((tmp_path / "results/api/gsm8k/summary.json").read_text())
        assert summary["counts"]["graded"] == 5
        per_call = (USAGE["prompt_tokens"] * 10 + USAGE["completion_tokens"] * 30) / 1e6
        assert summary["cost_usd"] == pytest.approx(5 * per_call * 0.5)
        again = run_cli(*args, cwd=tmp_path)
        assert again.returncode == 0 and api.created == 1  # nothing left to send


def test_a_budget_reserves_each_requests_worst_case_before_the_batch_is_submitted(
    tmp_path: Path, shared_data: Path
) -> None:
    """``--judge-budget``: the batch holds only the requests whose worst case (prompt + ``max_tokens``, at
    the discount) fits the cap; the rest are over budget, left for a run with a larger one."""
    with ScriptedServer(lambda body, _: "The answer is 42.") as model, BatchServer(_score) as judge:
        extra = ("--judge-budget", "0.05", "--judge-max-tokens", "1024")  # worst case ~$0.016 a call at 50 %
        result = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url, *extra), cwd=tmp_path)
        sent = len(judge.files["file-in-1"].decode().splitlines())
        assert judge.created == 1 and 0 < sent < 6, result.stderr
        assert _judge_usage(tmp_path)["budget_skipped"] == 6 - sent and result.returncode == 1


def test_a_refused_upload_is_one_line_and_the_answers_are_kept(tmp_path: Path, shared_data: Path) -> None:
    with ScriptedServer(lambda body, _: "The answer is 42.") as model, BatchServer(_score) as judge:
        judge.refuse_uploads = True
        result = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url), cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "mue-eval: error: batch API POST /files: HTTP 400: scripted refusal: file too large" in result.stderr
        assert len((tmp_path / RUN / "generations.jsonl").read_text().splitlines()) == 6  # nothing lost
        judge.refuse_uploads = False
        healed = run_cli(*_judged(tmp_path, shared_data, model.url, judge.url), cwd=tmp_path)
        assert healed.returncode == 0 and judge.created == 1 and len(model.bodies) == 6, healed.stderr
