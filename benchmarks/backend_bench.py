"""How close the OpenAI-compatible backend gets to the ideal wall time, and how it compares with lm-eval.

A loopback server (its own process) answers every chat request after a fixed latency L. N requests at
concurrency C can at best take N*L/C seconds; we print the harness's wall time against that ideal and
against lm-eval 0.4.13's ``local-chat-completions`` with the same ``num_concurrent`` on the same server, in
the same run, plus the client CPU time per request. Two harness rows: the backend alone, and the whole
pipeline (answers stored as JSONL and graded as they stream in); and a floor row, a bare aiohttp loop,
for what this machine's loopback, server process and HTTP stack allow at all.

With ``--vllm-url`` (a real vLLM server, e.g. the one tests/test_vllm.py starts), also tokens/s through the
harness against a plain ``openai`` client loop at the same concurrency.

    python benchmarks/backend_bench.py                       # N=2048, L=1 s, C=64,256 (about 3 minutes)
    python benchmarks/backend_bench.py --vllm-url http://127.0.0.1:8000/v1 --vllm-model smollm2-135m-instruct

Needs lm-eval for the comparison rows: pip install 'lm-eval[api]==0.4.13'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPLY = json.dumps(
    {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "\\boxed{7}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4},
    }
).encode()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float) -> None:
    """HTTP/1.1 keep-alive: read a request head and body, wait `latency`, answer the fixed reply."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            if head.startswith(b"POST"):
                await asyncio.sleep(latency)
                body = REPLY
            else:
                body = b'{"data": [{"id": "m"}]}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(port: int, latency: float) -> None:
    server = await asyncio.start_server(lambda r, w: _handle(r, w, latency), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _samples(n: int) -> list[Any]:
    from mathusereval.plugins.task import user_turn
    from mathusereval.records import Sample

    return [Sample("bench", f"q{i}", user_turn(f"Question {i}: what is 3 + 4?"), "7") for i in range(n)]


def ours_backend(url: str, n: int, concurrency: int) -> None:
    from mathusereval.backends import ModelSpec
    from mathusereval.backends.openai_compat import OpenAIBackend
    from mathusereval.records import GenerationParams, Request

    async def go() -> None:
        backend = OpenAIBackend(ModelSpec.of("openai", "m", **{"base_url": url, "concurrency": concurrency}))
        done = 0
        async for gen in backend.generate([Request(s) for s in _samples(n)], GenerationParams(max_tokens=16)):
            done += gen.ok
        await backend.aclose()
        assert done == n, f"only {done} of {n} answers"

    asyncio.run(go())


def ours_pipeline(url: str, n: int, concurrency: int) -> None:
    from mathusereval.backends import ModelSpec
    from mathusereval.backends.openai_compat import OpenAIBackend
    from mathusereval.plugins.metrics import accuracy
    from mathusereval.plugins.task import LoadedData, Task
    from mathusereval.run.pipeline import RunOptions
    from mathusereval.run.session import run_task

    samples = _samples(n)
    task = Task("bench", "1", lambda _: LoadedData(samples, "0" * 64, "inline"), ("answer",), accuracy)
    spec = ModelSpec.of("openai", "m", **{"base_url": url, "concurrency": concurrency})

    async def go() -> None:
        backend = OpenAIBackend(spec)
        with tempfile.TemporaryDirectory() as out:
            result = await run_task(task, spec, backend, RunOptions(out=Path(out), progress=False))
        await backend.aclose()
        assert result.counts.graded == n and result.metrics[0].value == 1.0

    asyncio.run(go())


def bare_aiohttp(url: str, n: int, concurrency: int) -> None:
    """The floor of this rig: a bare aiohttp loop, no harness at all (no retries, records or grading)."""
    import aiohttp

    async def go() -> None:
        slots = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int) -> str:
                body = {"model": "m", "messages": [{"role": "user", "content": f"Question {i}: what is 3 + 4?"}]}
                async with slots, session.post(f"{url}/chat/completions", json=body) as response:
                    return str((await response.json())["choices"][0]["message"]["content"])

            answers = await asyncio.gather(*(one(i) for i in range(n)))
        assert all(a == "\\boxed{7}" for a in answers)

    asyncio.run(go())


def lm_eval_chat(url: str, n: int, concurrency: int) -> None:
    from lm_eval.api.instance import Instance
    from lm_eval.models.api_models import JsonChatStr
    from lm_eval.models.openai_completions import LocalChatCompletion

    lm = LocalChatCompletion(
        base_url=f"{url}/chat/completions",
        model="m",
        num_concurrent=concurrency,
        max_retries=1,
        tokenized_requests=False,
        eos_string="</s>",
    )
    requests = [
        Instance(
            "generate_until",
            {},
            (JsonChatStr(json.dumps([{"role": "user", "content": f"Question {i}: what is 3 + 4?"}])), {"until": []}),
            i,
        )
        for i in range(n)
    ]
    answers = lm.generate_until(requests, disable_tqdm=True)
    assert len(answers) == n and all(a == "\\boxed{7}" for a in answers)


def whole_mue_eval(url: str, n: int, concurrency: int, data_dir: Path) -> None:
    """The whole ``mue-eval`` process, Python start-up to exit: GSM8K's first `n` items, stored and graded."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "mathusereval", "--base-url", url, "--model", "m", "--tasks", "gsm8k"]
        command += ["--limit", str(n), "--limit-order", "file", "--data-dir", str(data_dir), "--out", out]
        subprocess.run([*command, "--concurrency", str(concurrency), "--quiet"], check=True, capture_output=True)
        summary = json.loads((Path(out) / "m" / "gsm8k" / "summary.json").read_text())
        assert summary["counts"]["graded"] == n, summary["counts"]


def whole_lm_eval(url: str, n: int, concurrency: int, data_dir: Path) -> None:
    """The whole stock ``lm_eval`` process on the same items (our GSM8K task through ``--include_path``)."""
    from mathusereval import lm_eval_task_dir

    args = (
        f"base_url={url}/chat/completions,model=m,num_concurrent={concurrency},max_retries=1,tokenized_requests=False"
    )
    with tempfile.TemporaryDirectory() as out:
        command = [str(Path(sys.executable).with_name("lm_eval")), "--include_path", lm_eval_task_dir()]
        command += ["--model", "local-chat-completions", "--model_args", args, "--apply_chat_template"]
        command += ["--tasks", "mathusereval_gsm8k", "--limit", str(n), "--output_path", out]
        command += ["--metadata", json.dumps({"data_dir": str(data_dir)})]
        subprocess.run(command, check=True, capture_output=True)


def whole_table(url: str, n: int, latency: float, concurrency: int, data_dir: Path, with_lm_eval: bool) -> None:
    """Start-up, data loading, generation, storing and grading, all in the wall time."""
    ideal = n * latency / concurrency
    print(f"\nthe whole process: GSM8K's first {n} items, L={latency * 1000:.0f} ms, C={concurrency}")
    print(f"{'client':<26} {'ideal s':>8} {'wall s':>7} {'/ideal':>7}")
    runs: list[tuple[str, Callable[..., None]]] = [("mue-eval (whole process)", whole_mue_eval)]
    if with_lm_eval:
        runs.append(("lm_eval (whole process)", whole_lm_eval))
    for name, fn in runs:
        start = time.perf_counter()
        fn(url, n, concurrency, data_dir)
        wall = time.perf_counter() - start
        print(f"{name:<26} {ideal:>8.2f} {wall:>7.2f} {wall / ideal:>7.3f}")


class _Server:
    """The fixed-latency server in its own process, for the length of a ``with`` block."""

    def __init__(self, latency: float) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process = subprocess.Popen([sys.executable, __file__, "--serve-latency", str(self.port), str(latency)])

    def __enter__(self) -> _Server:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait()


def latency_table(url: str, n: int, latency: float, levels: list[int], with_lm_eval: bool) -> None:
    print(f"fixed-latency loopback server: N={n} requests, L={latency * 1000:.0f} ms")
    print(f"{'C':>5} {'ideal s':>8} {'client':<18} {'wall s':>7} {'/ideal':>7} {'CPU ms/req':>11}")
    for c in levels:
        ideal = n * latency / c
        runs = [
            ("bare aiohttp (floor)", bare_aiohttp),
            ("mathusereval backend", ours_backend),
            ("mathusereval pipeline", ours_pipeline),
        ]
        if with_lm_eval:
            runs.append(("lm-eval 0.4.13", lm_eval_chat))
        walls = {}
        for name, fn in runs:
            wall, cpu = _timed(lambda fn=fn, c=c: fn(url, n, c))
            walls[name] = wall
            print(f"{c:>5} {ideal:>8.2f} {name:<22} {wall:>7.2f} {wall / ideal:>7.3f} {cpu / n * 1000:>11.3f}")
        if with_lm_eval:
            ratio = walls["lm-eval 0.4.13"] / walls["mathusereval pipeline"]
            print(f"{'':>5} lm-eval wall / mathusereval pipeline wall = {ratio:.2f}")


def vllm_table(url: str, model: str, n: int, concurrency: int, max_tokens: int) -> None:
    """Completion tokens per second through the harness and through a plain openai client loop."""
    from openai import AsyncOpenAI

    from mathusereval.backends import ModelSpec
    from mathusereval.backends.openai_compat import OpenAIBackend
    from mathusereval.records import GenerationParams, Request

    params = GenerationParams(max_tokens=max_tokens)

    async def ours() -> int:
        backend = OpenAIBackend(ModelSpec.of("openai", model, **{"base_url": url, "concurrency": concurrency}))
        tokens = 0
        async for gen in backend.generate([Request(s) for s in _samples(n)], params):
            tokens += gen.usage.completion_tokens
        await backend.aclose()
        return tokens

    async def plain() -> int:
        client = AsyncOpenAI(base_url=url, api_key="none")
        slots = asyncio.Semaphore(concurrency)

        async def one(sample: Any) -> int:
            async with slots:
                reply = await client.chat.completions.create(
                    model=model, messages=list(sample.messages), max_tokens=max_tokens, temperature=0.0, seed=0
                )
                return reply.usage.completion_tokens if reply.usage else 0

        tokens = sum(await asyncio.gather(*(one(s) for s in _samples(n))))
        await client.close()
        return tokens

    print(f"\nreal vLLM server {url}: {n} chat requests, max_tokens {max_tokens}, concurrency {concurrency}")
    print(f"{'client':<22} {'tokens':>7} {'wall s':>7} {'tok/s':>8}")
    for name, fn in (("plain openai client", plain), ("mathusereval backend", ours)) * 2:
        start = time.perf_counter()
        tokens = asyncio.run(fn())
        wall = time.perf_counter() - start
        print(f"{name:<22} {tokens:>7} {wall:>7.2f} {tokens / wall:>8.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--latency", type=float, default=1.0)
    p.add_argument("--concurrency", default="64,256")
    p.add_argument("--no-lm-eval", action="store_true")
    p.add_argument("--whole-n", type=int, default=1024, help="items of the whole-process rows (0: skip them)")
    p.add_argument("--whole-latency", type=float, default=0.25)
    p.add_argument("--whole-concurrency", type=int, default=64)
    p.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--tiny", action="store_true", help="seconds, to check the script runs (tests/)")
    p.add_argument("--vllm-url")
    p.add_argument("--vllm-model", default="smollm2-135m-instruct")
    p.add_argument("--vllm-n", type=int, default=32)
    p.add_argument("--vllm-concurrency", type=int, default=8)
    p.add_argument("--serve-latency", nargs=2, metavar=("PORT", "L"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_latency:
        asyncio.run(_serve(int(args.serve_latency[0]), float(args.serve_latency[1])))
        return
    if args.tiny:
        args.n, args.latency, args.concurrency, args.whole_n, args.whole_latency = 64, 0.02, "16", 32, 0.02
        args.whole_concurrency = 16
    levels = [int(c) for c in args.concurrency.split(",")]
    with _Server(args.latency) as server:
        latency_table(server.url, args.n, args.latency, levels, not args.no_lm_eval)
    if args.whole_n:
        with _Server(args.whole_latency) as server:
            whole_table(server.url, args.whole_n, args.whole_latency, args.whole_concurrency, args.data_dir,
                        not args.no_lm_eval)  # fmt: skip
    if args.vllm_url:
        vllm_table(args.vllm_url, args.vllm_model, args.vllm_n, args.vllm_concurrency, 64)


if __name__ == "__main__":
    main()
