"""Issue 35 (hostile inputs, round 4): the Batch API, ``--extra-body``, the in-process llama.cpp backend and
``--sample-ids``, against a fault-injecting loopback Batch API server (tests/batch_server.py) and the
embedded model. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mathusereval.backends import ModelSpec
from mathusereval.backends.openai_compat import HARNESS_KEYS, OpenAIBackend
from mathusereval.backends.options import ServedOptions
from mathusereval.errors import ConfigError
from mathusereval.store.jsonl import DIGEST, record_digest

from .batch_server import USAGE, BatchServer
from .conftest import MUE_EVAL, cli_env, run_cli, start_cli, wait_for_lines
from .hostile_server import _bomb

RUN = Path("results/api/gsm8k")
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(f'peak-rss-kib {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')\n"
    "sys.exit(code)\n"
)
"""Runs a command and prints the peak RSS of it (and its children): each test's run measured on its own."""


def _boxed(body: dict[str, object]) -> str:
    return "So the answer is \\boxed{3}."


def _batch_args(url: str, data: Path, *extra: str, model: str = "api") -> list[str]:
    return [
        *("--model", model, "--base-url", url, "--tasks", "gsm8k", "--limit", "2", "--batch"),
        *("--batch-poll", "0.05", "--data-dir", str(data), "--quiet", *extra),
    ]


def _measured(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """The run and its peak RSS in MiB."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(MUE_EVAL), *args],
        cwd=cwd, env=cli_env(cwd), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    kib = int(result.stdout.rsplit("peak-rss-kib ", 1)[1].split()[0])
    return result, kib // 1024


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- item 2: output and error files bounded by what the batch can return, streamed, foreign lines dropped ------
def test_a_gzip_bomb_output_file_is_cut_at_what_the_batch_can_return(tmp_path: Path, shared_data: Path) -> None:
    """2 requests, an output file of 256 KiB that inflates to 256 MiB: read up to ~3 MB, never held whole."""
    with BatchServer(_boxed) as api:
        api.serve_file = lambda file_id, data: (_bomb(), {"Content-Encoding": "gzip"}) if "output" in file_id else (
            data, {})  # fmt: skip
        result, peak_mib = _measured(_batch_args(api.url, shared_data, "--judge-retries", "0"), tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "hold more than its 2 requests can return" in result.stderr and "the rest was not read" in result.stderr
    errors = [g["error"] for g in _lines(tmp_path / RUN / "generations.jsonl")]
    assert len(errors) == 2 and all("the files were cut at" in str(e) for e in errors), errors
    assert peak_mib < 300, f"peak RSS {peak_mib} MiB for a 256 MiB bomb"  # before: 1 GiB+ (whole copies)


def test_lines_for_requests_the_batch_does_not_hold_are_dropped_and_counted(tmp_path: Path, shared_data: Path) -> None:
    """The real lines, then 40 MB of lines for other requests: the replies are taken, the rest is dropped,
    counted and cut at the bound."""
    foreign = b"".join(
        json.dumps({"custom_id": f"other-{i}#0", "response": {"status_code": 200, "body": {"pad": "x" * 900}}}).encode()
        + b"\n"
        for i in range(40_000)
    )
    with BatchServer(_boxed) as api:
        api.serve_file = lambda file_id, data: (data + foreign, {}) if "output" in file_id else (data, {})
        result, peak_mib = _measured(_batch_args(api.url, shared_data), tmp_path)
    assert result.returncode == 0, result.stderr
    dropped = [line for line in result.stderr.splitlines() if "for requests the batch does not hold" in line]
    assert len(dropped) == 1 and "the rest was not read" in result.stderr, result.stderr
    assert int(dropped[0].split("dropped ")[1].split()[0]) > 0
    assert all(g["error"] is None for g in _lines(tmp_path / RUN / "generations.jsonl"))
    assert peak_mib < 300, f"peak RSS {peak_mib} MiB"


def test_two_different_lines_for_one_request_are_its_error(tmp_path: Path, shared_data: Path) -> None:
    """A second, different line for a request is not "the later wins": that request fails (and is retried);
    the same line twice is harmless."""

    def doubled(file_id: str, data: bytes) -> tuple[bytes, dict[str, str]]:
        if "output" not in file_id:
            return data, {}
        first, second = data.splitlines(keepends=True)
        other = json.loads(first)
        other["response"]["body"]["choices"][0]["message"]["content"] = "The answer is \\boxed{99}."
        return first + second + second + json.dumps(other).encode() + b"\n", {}

    with BatchServer(_boxed) as api:
        api.serve_file = doubled
        result = run_cli(*_batch_args(api.url, shared_data, "--judge-retries", "0"), cwd=tmp_path)
    assert "1 requests have conflicting replies" in result.stderr, result.stderr
    gens = _lines(tmp_path / RUN / "generations.jsonl")
    failed = [g for g in gens if g["error"]]
    assert len(gens) == 2 and len(failed) == 1 and "different replies for this request" in str(failed[0]["error"])
    assert result.returncode == 1


# -- item 6: batches.jsonl sealed; a batch is collected only when its input file is this run's ---------------------
def _gold(shared_data: Path) -> dict[str, str]:
    """Question text -> its reference answer: a model that always answers right."""
    rows = [json.loads(line) for line in (shared_data / "gsm8k/test.jsonl").read_text().splitlines()]
    return {row["question"]: row["answer"].rsplit("####", 1)[1].strip().replace(",", "") for row in rows}


def test_verify_flags_an_edited_batches_file(tmp_path: Path, shared_data: Path) -> None:
    with BatchServer(_boxed) as api:
        assert run_cli(*_batch_args(api.url, shared_data), cwd=tmp_path).returncode == 0
    path = tmp_path / RUN / "batches.jsonl"
    assert all(DIGEST in line for line in _lines(path))  # sealed as it is written
    assert run_cli("verify", str(tmp_path / RUN), cwd=tmp_path).returncode == 0
    path.write_text(path.read_text().replace('"batch_0"', '"batch_7"'))
    verdict = run_cli("verify", str(tmp_path / RUN), cwd=tmp_path)
    assert verdict.returncode == 1 and "EDITED" in verdict.stdout and "batches.jsonl:1" in verdict.stdout


@pytest.mark.parametrize("forgery", ["swapped", "resealed", "resealed_with_its_input_file"])
def test_another_runs_batch_swapped_into_batches_jsonl_is_not_collected(
    tmp_path: Path, shared_data: Path, forgery: str
) -> None:
    """An always-right model's batch id put into an always-wrong model's batches.jsonl (as is; with the digests
    recomputed; with its input file's id and sha256 copied as well): the rerun never scores the right answers."""
    gold = _gold(shared_data)

    def answer(body: dict[str, object]) -> str:
        question = str(body["messages"][-1]["content"]).split("\n\n")[0]  # type: ignore[index]
        return f"\\boxed{{{gold[question] if body['model'] == 'good' else -1}}}"

    with BatchServer(answer) as api:
        good = run_cli(*_batch_args(api.url, shared_data, model="good"), cwd=tmp_path)
        assert good.returncode == 0 and api.created == 1, good.stderr
        api.hold.set()  # the wrong model's batch stays in progress: Ctrl-C leaves it to a rerun
        proc = start_cli(*_batch_args(api.url, shared_data, model="bad"), cwd=tmp_path)
        state = tmp_path / "results/bad/gsm8k/batches.jsonl"
        wait_for_lines(state, 1, proc)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode == 130
        api.hold.clear()
        [theirs] = _lines(tmp_path / "results/good/gsm8k/batches.jsonl")
        [ours] = _lines(state)
        forged = {**ours, "batch_id": theirs["batch_id"]}
        if forgery == "resealed_with_its_input_file":
            forged.update({k: theirs.get(k) for k in ("input_file_id", "input_sha256", "input_bytes")})
        if forgery == "swapped":
            state.write_text(json.dumps(forged) + "\n")
        else:
            forged.pop(DIGEST, None)
            state.write_text(json.dumps({**forged, DIGEST: record_digest("", forged)}) + "\n")
        rerun = run_cli(*_batch_args(api.url, shared_data, model="bad"), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((tmp_path / "results/bad/gsm8k/summary.json").read_text())
    assert summary["metrics"][0]["value"] == 0.0  # the wrong model's own answers, from a new batch
    assert api.created == 3
    said = {
        "swapped": "changed after it was written",
        "resealed": "is not the one this run uploaded",
        "resealed_with_its_input_file": "does not hold this run's requests",
    }[forgery]
    assert said in rerun.stderr, rerun.stderr


def test_a_reply_from_another_model_is_that_requests_error(tmp_path: Path, shared_data: Path) -> None:
    with BatchServer(_boxed) as api:
        api.reply_model = "someone-else"
        result = run_cli(*_batch_args(api.url, shared_data, "--judge-retries", "0"), cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        errors = [str(g["error"]) for g in _lines(tmp_path / RUN / "generations.jsonl")]
        assert len(errors) == 2 and all("a reply from model 'someone-else', not 'api'" in e for e in errors)
        api.reply_model = "api-2024-08-06"  # a dated snapshot of the model asked for is that model
        healed = run_cli(*_batch_args(api.url, shared_data), cwd=tmp_path)
        assert healed.returncode == 0, healed.stderr


# -- item 8: polls and downloads retry transient failures, honouring Retry-After ---------------------------------
def test_polls_and_downloads_retry_transient_errors_honouring_retry_after(tmp_path: Path, shared_data: Path) -> None:
    with BatchServer(_boxed) as api:
        api.faults["poll"] = [(500, {}), (502, {"Retry-After": "0"}), (429, {"Retry-After": "1"})]
        api.faults["content"] = [(503, {"Retry-After": "0"}), (500, {"Retry-After": "0"})]
        result = run_cli(*_batch_args(api.url, shared_data), cwd=tmp_path)
        polls = [t for t, method, path in api.requests if method == "GET" and "/batches/" in path]
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "HTTP 429" in result.stderr and "trying again in 1.0 s" in result.stderr
    assert polls[3] - polls[2] >= 0.95  # the 429's Retry-After: 1 was waited out
    assert len(_lines(tmp_path / RUN / "generations.jsonl")) == 2


@pytest.mark.parametrize("status", [404, 401])
def test_a_batch_that_is_gone_or_refused_stops_at_once_in_one_line(
    tmp_path: Path, shared_data: Path, status: int
) -> None:
    with BatchServer(_boxed) as api:
        api.faults["poll"] = [(status, {})] * 10
        result = run_cli(*_batch_args(api.url, shared_data), cwd=tmp_path)
        polls = [path for _, method, path in api.requests if method == "GET" and "/batches/" in path]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("mue-eval: error:")]
    assert f"batch API GET /batches/batch_0: HTTP {status}" in error and len(polls) == 1


# -- item 9: --extra-body may not set what the harness sets or depends on ---------------------------------------
@pytest.mark.parametrize("key", ["n", "max_completion_tokens", "stream", "stop", "logprobs", "tools", "model"])
def test_extra_body_keys_the_harness_sets_or_relies_on_are_refused(key: str) -> None:
    options = ServedOptions(base_url=("http://127.0.0.1:9/v1",), extra_body={"reasoning_effort": "low", key: 1})
    with pytest.raises(ConfigError, match=f"--extra-body may not set '{key}'"):
        OpenAIBackend(ModelSpec("openai", "m", options))
    assert key in HARNESS_KEYS
    OpenAIBackend(ModelSpec("openai", "m", ServedOptions(base_url=("http://127.0.0.1:9/v1",),
                                                          extra_body={"reasoning_effort": "low"})))  # fmt: skip


def test_extra_body_n_is_refused_before_anything_is_sent(tmp_path: Path, shared_data: Path) -> None:
    with BatchServer(_boxed) as api:
        args = ["--model", "api", "--base-url", api.url, "--tasks", "gsm8k", "--limit", "2"]
        result = run_cli(*args, "--data-dir", str(shared_data), "--extra-body", '{"n": 4}', cwd=tmp_path)
        assert api.direct_calls == 0 and not api.requests
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--extra-body may not set 'n'" in result.stderr and not (tmp_path / "results").exists()


# -- item 10: server-chosen ids never reach a URL unless they are ids -------------------------------------------
@pytest.mark.parametrize(
    ("name", "value"), [("output", "../../../models?x=1#frag"), ("batch", "batch_0/../../files/file-in-1/content")]
)
def test_server_ids_that_are_not_ids_are_refused_before_any_url(
    tmp_path: Path, shared_data: Path, name: str, value: str
) -> None:
    with BatchServer(_boxed) as api:
        api.ids[name] = value
        result = run_cli(*_batch_args(api.url, shared_data), cwd=tmp_path)
        paths = [path for _, _, path in api.requests]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "is not an id (letters, digits, _ . -)" in result.stderr
    assert not any("x=1" in p or "/files/file-in-1/content" in p for p in paths), paths
    assert sum(p.endswith("/models") for p in paths) == 1  # the reachability check, nothing else


# -- item 12: what a server says is printed as one plain line ----------------------------------------------------
def test_a_batch_status_with_terminal_escapes_is_printed_plain(tmp_path: Path, shared_data: Path) -> None:
    with BatchServer(_boxed) as api:
        api.status_text = "\x1b]0;pwned\x07\x1b[2J\x9b31min_progress\u202e"
        result = run_cli(*_batch_args(api.url, shared_data), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "]0;pwned" in result.stderr  # the status is shown ...
    assert not any(c in result.stderr for c in "\x1b\x07\x9b\u202e")  # ... with no control character left


# -- item 17: --batch runs of the model record what direct calls would cost --------------------------------------
def test_a_batch_run_of_the_model_records_its_direct_cost(tmp_path: Path, shared_data: Path) -> None:
    with BatchServer(_boxed) as api:
        result = run_cli(*_batch_args(api.url, shared_data, "--price", "10,30"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / RUN / "summary.json").read_text())
    per_call = (USAGE["prompt_tokens"] * 10 + USAGE["completion_tokens"] * 30) / 1e6
    assert summary["cost_usd"] == pytest.approx(2 * per_call * 0.5)
    assert summary["direct_cost_usd"] == pytest.approx(2 * per_call)
    assert f"(direct calls would cost ${2 * per_call:.4f})" in result.stderr


# -- item 17: --sample-ids never shows the content of a file that is not an id file -------------------------------
def test_a_sample_ids_file_that_is_not_one_is_never_quoted(tmp_path: Path, shared_data: Path) -> None:
    secret = "root:$6$Vh3k1Qz$Zm9vYmFyYmF6cXV4:19700:0:99999:7:::"
    (tmp_path / "shadow").write_text(f"{secret}\ndaemon:*:19700:0:99999:7:::\n")
    (tmp_path / "long").write_text("x" * 5000 + "\n")
    with BatchServer(_boxed) as api:
        base = ["--model", "api", "--base-url", api.url, "--tasks", "gsm8k", "--data-dir", str(shared_data)]
        shadow = run_cli(*base, "--sample-ids", "shadow", cwd=tmp_path)
        long = run_cli(*base, "--sample-ids", "long", cwd=tmp_path)
    assert shadow.returncode == 2 and "none of its 2 lines is an item id of 'gsm8k'" in shadow.stderr
    assert "root" not in shadow.stderr and "daemon" not in shadow.stderr and "19700" not in shadow.stderr
    assert long.returncode == 2 and "long:1: not a sample id (5000 characters, not shown)" in long.stderr
    assert "xxxx" not in long.stderr


# -- items 15 and 17: the in-process llama.cpp backend ---------------------------------------------------------
EMBEDDED = ["--tasks", "demo", "--threads", "1", "--max-tokens", "48", "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_on_an_embedded_run_is_one_line_and_exit_130(tmp_path: Path, sig: signal.Signals) -> None:
    """A terminal's Ctrl-C reaches the whole process group while llama.cpp generates on its thread: the
    generation stops at its next token and is joined before the model is freed (it was a segfault, 139)."""
    proc = subprocess.Popen(
        [str(MUE_EVAL), *EMBEDDED, "--limit", "12"], cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    generations = tmp_path / "results/smollm2-135m-instruct/demo/generations.jsonl"
    wait_for_lines(generations, 1, proc, timeout=300)
    time.sleep(0.2)  # into the next item's generation
    os.killpg(proc.pid, sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert stderr.splitlines() == [
        "mue-eval: interrupted; finished work is saved, run the same command again to resume"
    ], stderr
    assert all(g["error"] is None for g in _lines(generations))  # nothing half-generated was stored


@pytest.mark.slow
def test_a_chat_template_the_jinja_sandbox_blocks_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "t.jinja").write_text("{% for m in messages %}{{ m.content }}{{ messages.append(m) }}{% endfor %}")
    result = run_cli(*EMBEDDED, "--limit", "2", "--chat-template", "t.jinja", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith("mue-eval: error: --chat-template: blocked by the Jinja sandbox")
