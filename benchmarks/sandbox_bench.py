"""The TIR program sandbox beside a bare ``subprocess.run([python, "-c", ...])``, in the same run (issue 33).

    python benchmarks/sandbox_bench.py [--runs 40] [--tiny]

1. start-up cost: one trivial program at a time (``print(1)``), median and 90th percentile;
2. programs per second: the same program, many at once (the pool's workers = the concurrency);
3. a typical TIR program (sympy imported, an equation solved), one at a time.
Ratios are sandbox / bare. The unisolated mode is timed too where this machine can run it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from mathusereval.tir.sandbox import Isolation, Limits, Sandbox

TRIVIAL = "print(1)"
SYMPY = "import sympy as sp\nx = sp.symbols('x')\nprint(sp.solve(x**2 - 5*x + 6, x))"
LIMITS = Limits(wall_seconds=60.0, cpu_seconds=60)


def bare(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)


async def bare_async(code: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    await proc.communicate()


def modes() -> list[Isolation]:
    usable: list[Isolation] = ["isolated"] if Sandbox(isolation="isolated").probe().usable else []
    unisolated = Sandbox(isolation="unisolated").probe()
    if unisolated.usable:
        usable.append("unisolated")
    else:
        print(f"(unisolated not timed: {unisolated.detail})")
    return usable


def latencies(one: Callable[[], None], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        one()
        times.append(time.perf_counter() - started)
    return times


async def sandbox_latencies(sandbox: Sandbox, code: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await sandbox.run(code)
        times.append(time.perf_counter() - started)
        assert result.exit_status == 0, result
    return times


def row(name: str, times: list[float], base: float | None) -> float:
    median = statistics.median(times)
    p90 = sorted(times)[min(len(times) - 1, math.ceil(len(times) * 0.9) - 1)]
    ratio = f"{median / base:6.2f}x" if base else "  1.00x"
    print(f"| {name:<28} | {median * 1000:9.1f} | {p90 * 1000:7.1f} | {ratio} |")
    return median


def sequential(title: str, code: str, runs: int, sandbox_modes: list[Isolation]) -> None:
    print(f"\n{title} ({runs} runs, one at a time)\n")
    print("| runner                       | median ms | p90 ms  | ratio  |\n|---|---:|---:|---:|")
    bare(code)  # warm the page cache
    base = row("subprocess.run(python -c)", latencies(lambda: bare(code), runs), None)
    for mode in sandbox_modes:
        sandbox = Sandbox(LIMITS, workers=1, isolation=mode)
        row(f"sandbox ({mode})", asyncio.run(sandbox_latencies(sandbox, code, runs)), base)


async def rate(run_one: Callable[[str], Awaitable[object]], runs: int, width: int) -> float:
    gate = asyncio.Semaphore(width)

    async def gated() -> None:
        async with gate:
            await run_one(TRIVIAL)

    started = time.perf_counter()
    await asyncio.gather(*(gated() for _ in range(runs)))
    return runs / (time.perf_counter() - started)


def throughput(runs: int, concurrency: list[int], sandbox_modes: list[Isolation]) -> None:
    print(f"\n## 2. Programs per second ({runs} x `{TRIVIAL}`)\n")
    print("| runner                       | at once | programs/s | ratio |\n|---|---:|---:|---:|")
    for width in concurrency:
        base = asyncio.run(rate(bare_async, runs, width))
        print(f"| {'subprocess (python -c)':<28} | {width:7} | {base:10.1f} |  1.00 |")
        for mode in sandbox_modes:
            sandbox = Sandbox(LIMITS, workers=width, isolation=mode)
            per_second = asyncio.run(rate(sandbox.run, runs, width))
            print(f"| {'sandbox (' + mode + ')':<28} | {width:7} | {per_second:10.1f} | {per_second / base:5.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--tiny", action="store_true", help="every section at a size of seconds (a smoke test)")
    parser.add_argument("--data-dir", help="unused (benchmarks share one command line)")
    args = parser.parse_args()
    runs = 3 if args.tiny else args.runs
    sandbox_modes = modes()
    print(f"python {sys.version.split()[0]}; sandbox modes timed: {', '.join(sandbox_modes) or 'none'}")
    sequential(f"## 1. Start-up cost (`{TRIVIAL}`)", TRIVIAL, runs, sandbox_modes)
    throughput(runs * 4, [4] if args.tiny else [2, 4, 16], sandbox_modes)
    sequential("## 3. A sympy program", SYMPY, max(2, runs // 4), sandbox_modes)


if __name__ == "__main__":
    main()
