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
    from mathusereval.run.pipeline import RunOptions, run_task

    samples = _samples(n)
    task = Task("bench", "1", lambda _: LoadedData(samples, "0" * 64, "inline"), "{q}", ("answer",), accuracy)
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


def latency_table(n: int, latency: float, levels: list[int], with_lm_eval: bool) -> None:
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve-latency", str(port), str(latency)])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
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
    finally:
        server.terminate()
        server.wait()


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
    p.add_argument("--vllm-url")
    p.add_argument("--vllm-model", default="smollm2-135m-instruct")
    p.add_argument("--vllm-n", type=int, default=32)
    p.add_argument("--vllm-concurrency", type=int, default=8)
    p.add_argument("--serve-latency", nargs=2, metavar=("PORT", "L"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_latency:
        asyncio.run(_serve(int(args.serve_latency[0]), float(args.serve_latency[1])))
        return
    latency_table(args.n, args.latency, [int(c) for c in args.concurrency.split(",")], not args.no_lm_eval)
    if args.vllm_url:
        vllm_table(args.vllm_url, args.vllm_model, args.vllm_n, args.vllm_concurrency, 64)


if __name__ == "__main__":
    main()
