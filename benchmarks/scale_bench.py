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
import os
import subprocess
import sys
import tempfile
import threading
import time
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
        if self.server.latency:  # type: ignore[attr-defined]
            time.sleep(self.server.latency)  # type: ignore[attr-defined]
        answer = len(prompt) % 7 if body["seed"] % 2 else 0
        text = f"{PAD}\nSo the answer is \\boxed{{{answer}}}."
        if "[[" in prompt and "评分" in prompt:  # a Math-Critique judge prompt: a critique and its score
            text = f"{PAD[:2000]}\n评分：[[{8 if answer else 3}]]"
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
    latency = 0.0


def _serve(latency: float = 0.0) -> tuple[_Server, str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.latency = latency
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


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


SECTIONS = ("memory", "backlog", "scheduler", "replicas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--items", type=int, default=60, help="GSM8K items at 1x (default: 60)")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections (repeatable)")
    parser.add_argument("--tiny", action="store_true", help="every section at a size of seconds (a smoke test)")
    args = parser.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    sections = args.only or SECTIONS
    if "memory" in sections:
        memory(data_dir, 4 if args.tiny else args.items, 2 if args.tiny else args.samples)
    if "backlog" in sections:
        backlog(data_dir, 8 if args.tiny else 600)
    if "scheduler" in sections:
        scheduler(data_dir, args.tiny)
    if "replicas" in sections:
        replicas_speedup(data_dir, args.tiny)


def memory(data_dir: str, base_items: int, samples: int) -> None:
    server, url = _serve()
    print(f"{'scale':>5} {'answers':>8} {'stored MB':>10} {'run MB':>8} {'resume MB':>10} {'board MB':>9}  peak/stored")
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (1, 4):
            cwd = Path(tmp) / f"x{scale}"
            cwd.mkdir()
            items = base_items * scale
            run = ["--base-url", url, "--model", "padded", "--tasks", "gsm8k", "--limit", str(items)]
            run += ["--samples", str(samples), "--temperature", "0.7", "--data-dir", data_dir, "--quiet"]
            fresh = peak_mb(run, cwd)
            resumed = peak_mb(run, cwd)
            board = peak_mb(["leaderboard", "results", "--out", "board"], cwd)
            stored = stored_mb(cwd / "results")
            worst = max(fresh, resumed, board)
            print(
                f"{scale:>4}x {items * samples:>8} {stored:>10.1f} {fresh:>8.1f} {resumed:>10.1f} {board:>9.1f}"
                f"  {worst / stored:.2f}"
            )
    server.shutdown()
    print("goal: every peak <= 200 MB and about the same at 4x (flat, not linear in the bytes stored)")


# --- backlog: grading slower than generation ----------------------------------------------------------------

SLOW_GRADER = Path(__file__).resolve().parent / "plugins" / "slow_grader.py"


def backlog(data_dir: str, items: int) -> None:
    """Peak RSS and generation rate with 20 KB answers from a fast server (10 ms), at 2 and 8 samples per item,
    graded by the answer grader, by a grader 10 ms slower per answer (so grading falls behind generation on
    any machine), and judged (Math-Critique served by the same server)."""
    server, url = _serve(latency=0.010)
    graders = {
        "no grading (bound)": ["--include", str(SLOW_GRADER), "--graders", "none"],
        "answer": [],
        "slowed (+10 ms)": ["--include", str(SLOW_GRADER), "--graders", "slow-answer"],
        "judged": ["--graders", "answer,math-critique", "--judge", "padded", "--judge-base-url", url],
    }
    print(f"\n{'backlog (20 KB answers)':<24} {'answers':>8} {'peak MB':>8} {'gen/s':>7}   x8/x2 MB  gen/s vs bound")
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in graders.items():
            peaks = {}
            for samples in (2, 8):
                cwd = Path(tmp) / f"{len(peaks)}-{label[:6]}-{samples}"
                cwd.mkdir()
                run = ["--base-url", url, "--model", "padded", "--tasks", "gsm8k", "--limit", str(items)]
                run += ["--samples", str(samples), "--temperature", "0.7", "--data-dir", data_dir, "--quiet", *extra]
                peaks[samples] = peak_mb(run, cwd)
                folder = next((cwd / "results").glob("*/gsm8k"))
                span = (folder / "generations.jsonl").stat().st_mtime - (folder / "samples.jsonl").stat().st_mtime
                rate = items * samples / span
                rates.setdefault(samples, rate)
                ratio = f"{peaks[8] / peaks[2]:>9.2f}" if samples == 8 else " " * 9
                print(f"{label:<24} {items * samples:>8} {peaks[samples]:>8.1f} {rate:>7.0f}  {ratio}  "
                      f"{rate / rates[samples]:>6.2f}")  # fmt: skip
    server.shutdown()
    print("goal: every peak <= 150 MB, x8 <= 1.3 x the x2 peak, generation within 5 % of the bound (no grading)")


def replicas_speedup(data_dir: str, tiny: bool) -> None:
    """Answers per second of 1 and 2 llama.cpp replicas (1 thread each) of the embedded model on a local
    Ray instance, same items, same settings; goal >= 1.7x with 2."""
    import time

    rates = {}
    limit, tokens = (4, 8) if tiny else (16, 96)
    for replicas in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            args = ["--ray", "local", "--data-parallel-size", str(replicas), "--threads", "1", "--tasks", "gsm8k"]
            args += ["--limit", str(limit), "--max-tokens", str(tokens), "--data-dir", data_dir, "--quiet"]
            mue_eval = Path(sys.executable).with_name("mue-eval")
            start = time.perf_counter()
            subprocess.run([str(mue_eval), *args], cwd=tmp, capture_output=True, check=True)
            rates[replicas] = limit / (time.perf_counter() - start)
    print(f"ray llama.cpp replicas: 1 -> {rates[1]:.2f} answers/s, 2 -> {rates[2]:.2f} answers/s, "
          f"{rates[2] / rates[1]:.2f}x (goal >= 1.7x; includes each run's Ray and model start-up)")  # fmt: skip


# --- scheduler: replicas kept full ------------------------------------------------------------------------

SIMULATED = Path(__file__).resolve().parent / "plugins" / "simulated_engine.py"


def _simulated() -> Any:
    from mathusereval.plugins.include import module_of

    return module_of(SIMULATED)


def scheduler_row(
    label: str, data_dir: str, items: int, samples: int, engine: str, replicas: int, dispatch: str, profile: bool
) -> tuple[float, float, float]:
    """(ideal span, achieved span, answers/s) of one run of the simulated engine: achieved is from the first
    request any engine saw to the last answer stored; ideal is the longest-first schedule of the same service
    times on every slot of every replica."""
    sim = _simulated()
    workload = sim.Workload.parse(engine)
    mue_eval = Path(sys.executable).with_name("mue-eval")
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--include", str(SIMULATED), "--backend", "simulated", "--model", engine, "--tasks", "gsm8k"]
        args += ["--limit", str(items), "--samples", str(samples), "--data-dir", data_dir, "--quiet"]
        if replicas:
            args += ["--ray", "local", "--data-parallel-size", str(replicas), "--ray-dispatch", dispatch]
            args += ["--ray-cpus-per-replica", str(min(1.0, (os.cpu_count() or 2) / replicas))]
        command = [str(mue_eval), *args]
        if profile:
            command = [sys.executable, "-m", "cProfile", "-o", f"{tmp}/driver.prof", "-m", "mathusereval", *args]
        result = subprocess.run(command, cwd=tmp, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"{label}: mue-eval failed:\n{result.stderr[-3000:]}")
        gens = next(Path(tmp, "results").glob("*/gsm8k/generations.jsonl"))
        rows = [json.loads(line) for line in gens.read_text().splitlines()]
        answers = [r for r in rows if r.get("kind") == "generation" and r.get("error") is None]
        if len(answers) != items * samples:
            raise SystemExit(f"{label}: {len(answers)} answers stored, {items * samples} expected")
        start = min(sim.arrival(a["text"]) for a in answers)
        span = gens.stat().st_mtime - start
        ideal = sim.best_span([sim.service(a["text"]) for a in answers], workload.slots * max(1, replicas))
        if profile:
            import pstats

            print(f"  where the driver spends its time ({label}, cProfile, top by own time):")
            stats = pstats.Stats(f"{tmp}/driver.prof", stream=sys.stdout)
            stats.sort_stats("tottime").print_stats(12)
    return ideal, span, len(answers) / span


def scheduler(data_dir: str, tiny: bool) -> None:
    """Efficiency (ideal span / achieved span) of keeping engines full: in process, 2 Ray replicas and 8 wide
    Ray replicas, each with 0.2's batch-at-a-time scheme beside the streaming one, in this run."""
    # A scheduler that cannot know service times leaves a tail of up to one long request (10 x short), so
    # each workload is long against that: ideal spans of ~8 s (narrow) and ~20 s (wide, ~800 answers/s).
    narrow = "slots=16:short=0.05" if not tiny else "slots=4:short=0.02"
    wide = "slots=32:short=0.16" if not tiny else "slots=4:short=0.02"
    cases = [
        ("in process, 1 engine x 16", narrow, 0, "stream", 1319, 1),
        ("ray 2 x 16, batch (0.2)", narrow, 2, "batch", 1319, 2),
        ("ray 2 x 16, stream", narrow, 2, "stream", 1319, 2),
        ("ray 8 x 32, batch (0.2)", wide, 8, "batch", 1319, 12),
        ("ray 8 x 32, stream", wide, 8, "stream", 1319, 12),
    ]
    if tiny:
        cases = [(label, engine, min(r, 2), d, 24, 1) for label, engine, r, d, _, _ in cases[:3]]
    print(f"\n{'scheduler (simulated engine)':<30} {'answers':>8} {'ideal s':>8} {'span s':>8} {'answers/s':>10} "
          f"{'efficiency':>10}")  # fmt: skip
    for label, engine, replicas, dispatch, items, samples in cases:
        ideal, span, rate = scheduler_row(label, data_dir, items, samples, engine, replicas, dispatch, False)
        print(f"{label:<30} {items * samples:>8} {ideal:>8.2f} {span:>8.2f} {rate:>10.0f} {ideal / span:>10.2f}")
        if replicas == 8 and dispatch == "stream" and ideal / span < 0.85:
            scheduler_row(label, data_dir, items, samples, engine, replicas, dispatch, True)
    print("goal: stream >= 0.90 with 2 replicas and >= 0.85 wide (8 x 32: 256 in flight through one driver)")


if __name__ == "__main__":
    main()
