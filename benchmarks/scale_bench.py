"""Memory against run size: peak RSS of a run, of its resumption and of ``leaderboard --out``, beside the
bytes the run stores, at 1x and 4x the answers (issue: past one machine, flat memory).

    python benchmarks/scale_bench.py --data-dir ../shared/data [--items 60] [--samples 16]

A loopback server answers every GSM8K prompt with ~20 KB of reasoning ending in a boxed answer (right for
every other item). Each measurement is a fresh ``mue-eval`` process; its peak RSS is read from
``RUSAGE_CHILDREN`` of a small wrapper process that runs only it. Goal: each peak at most 200 MB and flat
(about the same at 4x the answers), not growing with the bytes stored.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PAD = "Let us reason about it step by step once more. " * 420  # ~20 KB


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._send(b'{"data": [{"id": "padded"}]}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        answer = len(prompt) % 7 if body["seed"] % 2 else 0
        text = f"{PAD}\nSo the answer is \\boxed{{{answer}}}."
        reply = {
            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(text) // 4},
        }
        self._send(json.dumps(reply).encode())

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


WRAPPER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
)


def peak_mb(args: list[str], cwd: Path) -> float:
    mue_eval = Path(sys.executable).with_name("mue-eval")
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(mue_eval), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode not in (0, 1):
        raise SystemExit(f"mue-eval {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def stored_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--items", type=int, default=60, help="GSM8K items at 1x (default: 60)")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--ray", action="store_true", help="also time 1 and 2 Ray replicas (needs mathusereval[ray])")
    args = parser.parse_args()
    server = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    data_dir = str(Path(args.data_dir).resolve())
    print(f"{'scale':>5} {'answers':>8} {'stored MB':>10} {'run MB':>8} {'resume MB':>10} {'board MB':>9}  peak/stored")
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (1, 4):
            cwd = Path(tmp) / f"x{scale}"
            cwd.mkdir()
            items = args.items * scale
            run = ["--base-url", url, "--model", "padded", "--tasks", "gsm8k", "--limit", str(items)]
            run += ["--samples", str(args.samples), "--temperature", "0.7", "--data-dir", data_dir, "--quiet"]
            fresh = peak_mb(run, cwd)
            resumed = peak_mb(run, cwd)
            board = peak_mb(["leaderboard", "results", "--out", "board"], cwd)
            stored = stored_mb(cwd / "results")
            worst = max(fresh, resumed, board)
            print(
                f"{scale:>4}x {items * args.samples:>8} {stored:>10.1f} {fresh:>8.1f} {resumed:>10.1f} {board:>9.1f}"
                f"  {worst / stored:.2f}"
            )
    server.shutdown()
    print("goal: every peak <= 200 MB and about the same at 4x (flat, not linear in the bytes stored)")
    if args.ray:
        replicas_speedup(data_dir)


def replicas_speedup(data_dir: str) -> None:
    """Answers per second of 1 and 2 llama.cpp replicas (1 thread each) of the embedded model on a local
    Ray instance, same items, same settings; goal >= 1.7x with 2."""
    import time

    rates = {}
    for replicas in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            args = ["--ray", "local", "--data-parallel-size", str(replicas), "--threads", "1", "--tasks", "gsm8k"]
            args += ["--limit", "16", "--max-tokens", "96", "--data-dir", data_dir, "--quiet"]
            mue_eval = Path(sys.executable).with_name("mue-eval")
            start = time.perf_counter()
            subprocess.run([str(mue_eval), *args], cwd=tmp, capture_output=True, check=True)
            rates[replicas] = 16 / (time.perf_counter() - start)
    print(f"ray llama.cpp replicas: 1 -> {rates[1]:.2f} answers/s, 2 -> {rates[2]:.2f} answers/s, "
          f"{rates[2] / rates[1]:.2f}x (goal >= 1.7x; includes each run's Ray and model start-up)")  # fmt: skip


if __name__ == "__main__":
    main()
