"""How close one invocation gets to the ideal span when its tasks share the engine (issue "one schedule").

A long-tail loopback server (its own process): 10 % of prompts, chosen by a hash, take 10x the others (0.2 s
otherwise), as reasoning models' answers do. Every answer is "The answer is \\boxed{1}." and every judgment
(a request for the model ``judge``) "评分：[[5]]", which every task and judge can read. The ideal span of a
run is max(busy server seconds / C, the slowest request) over what the server saw; we print each whole
process's wall time against it, with the most requests the server had in flight, for:

- one task (``--tasks gsm8k --limit 740``), the Qwen2.5-Math suite (``--tasks math-suite --limit 40``: 20
  tasks, ~740 requests) and a judged run (``--tasks mathusereval,alignbench --limit 64``, the judge on the
  same server), for each ``--exe LABEL=PATH`` given (the ``mue-eval`` of another checkout, e.g. the old
  scheme) and for this checkout's;
- lm-eval 0.4.13 on the same suite tasks and items through our lm-eval YAMLs (``num_concurrent`` = C);
- the simulated continuous-batching engine over 20 small tasks, in process and on a local 2-node Ray
  cluster: schedule efficiency over the whole invocation (ideal longest-first span / achieved span).

    python benchmarks/schedule_bench.py --data-dir ../shared/data [--exe old=/path/to/old/.venv/bin/mue-eval]
    python benchmarks/schedule_bench.py --tiny      # seconds: every section at a small size
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIMULATED = HERE / "plugins" / "simulated_engine.py"
REPLY = "The answer is \\boxed{1}."
JUDGMENT = "The answer is checked step by step.\n评分：[[5]]"
"""What the server says when the request names the model ``judge`` (a judge on the model's own server)."""


def _slow(prompt: bytes, share: float) -> bool:
    return int.from_bytes(hashlib.sha256(prompt).digest()[:8], "big") / 2**64 < share


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, args: argparse.Namespace) -> None:
    """HTTP/1.1 keep-alive; a POST waits its service time, logs (start, end) and answers."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            body = await reader.readexactly(length) if length else b""
            if head.startswith(b"POST"):
                start = time.time()
                request = json.loads(body)
                prompt = json.dumps(request.get("messages") or request.get("prompt")).encode()
                text = JUDGMENT if request.get("model") == "judge" else REPLY
                await asyncio.sleep(args.short * (args.factor if _slow(prompt, args.share) else 1.0))
                if "/completions" in head.split(b" ")[1].decode() and b"chat" not in head.split(b" ")[1]:
                    choice = {"index": 0, "text": text, "finish_reason": "stop"}
                else:
                    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                reply = json.dumps({"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 10}})
                args.log.write(f"{start:.6f} {time.time():.6f}\n")
                args.log.flush()
                data = reply.encode()
            else:
                data = b'{"data": [{"id": "m"}, {"id": "judge"}]}'
            head_out = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            writer.write(head_out.encode() + data)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(port: int, log: str, short: float, factor: float, share: float) -> None:
    args = argparse.Namespace(short=short, factor=factor, share=share, log=open(log, "a"))  # noqa: SIM115

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: _handle(r, w, args), "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class LongTailServer:
    def __init__(self, short: float, factor: float, share: float) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name  # noqa: SIM115
        command = [sys.executable, __file__, "--serve", str(self.port), self.log, str(short), str(factor), str(share)]
        self.process = subprocess.Popen(command)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)

    def reset(self) -> None:
        Path(self.log).write_text("")

    def account(self, concurrency: int) -> tuple[float, int, int]:
        """(ideal span, requests, most in flight) of what the server saw since `reset`."""
        spans = [tuple(map(float, line.split())) for line in Path(self.log).read_text().splitlines() if line]
        busy = sum(end - start for start, end in spans)
        events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
        level = most = 0
        for _, step in events:
            level += step
            most = max(most, level)
        return max(busy / concurrency, max((e - s for s, e in spans), default=0.0)), len(spans), most

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()
        os.unlink(self.log)


def _row(label: str, server: LongTailServer, command: list[str], concurrency: int) -> None:
    server.reset()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    ideal, requests, most = server.account(concurrency)
    if result.returncode not in (0, 1):
        raise SystemExit(f"{label}: exit {result.returncode}\n{result.stderr[-3000:]}")
    print(f"{label:<44} {requests:>8} {most:>9} {ideal:>8.2f} {wall:>8.2f} {wall / ideal:>8.2f}", flush=True)


def long_tail(exes: list[tuple[str, str]], data_dir: str, tiny: bool, with_lm_eval: bool) -> None:
    concurrency = 64 if not tiny else 8
    short = 0.2 if not tiny else 0.05
    server = LongTailServer(short, 10.0, 0.1)
    suite_limit, one_limit, judged_limit = (40, 740, 64) if not tiny else (3, 60, 8)
    try:
        print(f"\nlong-tail server: 10% of prompts {short * 10:g} s, the rest {short:g} s; C={concurrency}")
        print(f"{'whole process':<44} {'requests':>8} {'in flight':>9} {'ideal s':>8} {'wall s':>8} {'/ideal':>8}")
        for label, exe in exes:
            with tempfile.TemporaryDirectory() as out:
                base = [exe, "--base-url", server.url, "--model", "m", "--data-dir", data_dir, "--quiet"]
                base += ["--concurrency", str(concurrency)]
                runs = [
                    (f"{label}: gsm8k --limit {one_limit}", ["--tasks", "gsm8k", "--limit", str(one_limit)]),
                    (
                        f"{label}: math-suite --limit {suite_limit}",
                        ["--tasks", "math-suite", "--limit", str(suite_limit)],
                    ),
                    (
                        f"{label}: mathusereval,alignbench --limit {judged_limit}",
                        ["--tasks", "mathusereval,alignbench", "--limit", str(judged_limit), "--judge", "judge"]
                        + ["--judge-base-url", server.url, "--judge-concurrency", str(concurrency)],
                    ),
                ]
                for name, extra in runs:
                    _row(name, server, [*base, *extra, "--out", f"{out}/{len(name)}"], concurrency)
        if with_lm_eval:
            lm_eval_row(server, data_dir, suite_limit, concurrency)
    finally:
        server.close()


def lm_eval_row(server: LongTailServer, data_dir: str, limit: int, concurrency: int) -> None:
    """lm-eval 0.4.13 on the suite's tasks and items, through our YAMLs (tag mathusereval_math_suite)."""
    lm_eval = Path(sys.executable).with_name("lm_eval")
    if not lm_eval.exists():
        print("lm_eval: not installed (pip install 'lm-eval[api]==0.4.13')")
        return
    from mathusereval import lm_eval_task_dir

    model_args = f"base_url={server.url}/chat/completions,model=m,num_concurrent={concurrency},max_retries=1"
    with tempfile.TemporaryDirectory() as out:
        command = [str(lm_eval), "--include_path", lm_eval_task_dir(), "--model", "local-chat-completions"]
        command += ["--model_args", model_args + ",tokenized_requests=False", "--apply_chat_template"]
        command += ["--tasks", "mathusereval_math_suite", "--limit", str(limit), "--output_path", out]
        command += ["--metadata", json.dumps({"data_dir": data_dir})]
        _row(f"lm-eval 0.4.13: math suite --limit {limit}", server, command, concurrency)


def simulated(data_dir: str, tiny: bool, with_ray: bool) -> None:
    """Schedule efficiency over 20 small tasks on the simulated engine, in process and on 2 Ray replicas."""
    sys.path.insert(0, str(HERE.parent))
    from mathusereval.plugins.include import module_of

    sim = module_of(SIMULATED)
    # long enough that the second replica's start-up (the span begins at the first arrival anywhere) is small
    engine = "slots=16:short=0.12" if not tiny else "slots=4:short=0.02"
    workload = sim.Workload.parse(engine)
    limit = 40 if not tiny else 3
    exe = str(Path(sys.executable).with_name("mue-eval"))
    print(
        f"\n{'simulated engine, math-suite (20 tasks)':<44} {'answers':>8} {'ideal s':>8} {'span s':>8} {'effic.':>8}"
    )
    cases: list[tuple[str, list[str]]] = [("in process, 1 engine x 16", [])]
    if with_ray:
        cases.append(("ray local, 2 x 16", ["--ray", "local"]))
    for label, ray in cases:
        if ray:
            ray += ["--data-parallel-size", "2", "--ray-cpus-per-replica", "0.5"]
        with tempfile.TemporaryDirectory() as tmp:
            args = [exe, "--include", str(SIMULATED), "--backend", "simulated", "--model", engine]
            args += ["--tasks", "math-suite", "--limit", str(limit), "--data-dir", data_dir, "--quiet", *ray]
            result = subprocess.run(args, cwd=tmp, capture_output=True, text=True, check=False)
            if result.returncode not in (0, 1):
                raise SystemExit(f"{label}: exit {result.returncode}\n{result.stderr[-3000:]}")
            answers, last = [], 0.0
            for gens in Path(tmp, "results").glob("*/*/generations.jsonl"):
                rows = [json.loads(line) for line in gens.read_text().splitlines()]
                answers += [r for r in rows if r.get("kind") == "generation" and r.get("error") is None]
                last = max(last, gens.stat().st_mtime)
            start = min(sim.arrival(a["text"]) for a in answers)
            slots = workload.slots * (2 if ray else 1)
            ideal = sim.best_span([sim.service(a["text"]) for a in answers], slots)
            span = last - start
            print(f"{label:<44} {len(answers):>8} {ideal:>8.2f} {span:>8.2f} {ideal / span:>8.2f}", flush=True)
    print("goal: efficiency >= 0.90 over the whole invocation")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        port, log, short, factor, share = sys.argv[2:7]
        serve(int(port), log, float(short), float(factor), float(share))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--exe", action="append", default=[], metavar="LABEL=PATH", help="another mue-eval to time")
    parser.add_argument("--tiny", action="store_true", help="every section at a size of seconds (a smoke test)")
    parser.add_argument("--no-lm-eval", action="store_true")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    exes = [tuple(e.split("=", 1)) for e in args.exe] + [
        ("this checkout", str(Path(sys.executable).with_name("mue-eval")))
    ]
    long_tail([(a, b) for a, b in exes], args.data_dir, args.tiny, not args.no_lm_eval and not args.tiny)
    simulated(args.data_dir, args.tiny, not args.no_ray)
    print("goals: suite and one task <= 1.3x the ideal, judged <= 2x; efficiency >= 0.90")


if __name__ == "__main__":
    main()
