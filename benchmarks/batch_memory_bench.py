"""Peak memory of a ``--batch`` run whose Batch API output file is hostile (issue 35, item 2).

The loopback Batch API server of the tests (tests/batch_server.py) answers a 2-request gsm8k batch with:

- ``plain``: the two real reply lines (the floor: what any run costs);
- ``gzip-bomb``: a gzip output file of ~1 MB per GiB that inflates to ``--bomb-mib`` MiB of one line;
- ``foreign``: the two real lines, then ``--foreign-mb`` MB of lines for requests the batch does not hold.

Each ``mue-eval`` run is a child of a small wrapper that reports its peak RSS (``ru_maxrss`` of its
children), so each number is that run alone. Give several installations to compare them, e.g. the main
checkout before a change and this one after it; the ratio column is each row against the first ``--exe``:

    python benchmarks/batch_memory_bench.py --data-dir ../shared/data \\
        --exe before=/work/main/.venv/bin/mue-eval --exe after=.venv/bin/mue-eval
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the loopback server

from tests.batch_server import BatchServer  # noqa: E402
from tests.hostile_server import _gzip_bomb  # noqa: E402

PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


def foreign_lines(megabytes: int) -> bytes:
    line = {"custom_id": "other-{}#0", "response": {"status_code": 200, "body": {"pad": "x" * 900}}}
    template = json.dumps(line).replace("{}", "%d") + "\n"
    count = megabytes * 1_000_000 // len(template)
    return "".join(template % i for i in range(count)).encode()


Serve = Callable[[str, bytes], tuple[bytes, dict[str, str]]]
"""What the server sends for a file (its id, its real content): the test server's `serve_file`."""


def measure(exe: str, serve: Serve | None, data_dir: str) -> tuple[float, int, float]:
    """(peak RSS in MiB, exit code, seconds) of one 2-request ``--batch`` run whose files `serve` sends."""
    with BatchServer(lambda body: "So the answer is \\boxed{3}.") as server, tempfile.TemporaryDirectory() as tmp:
        server.serve_file = serve
        args = ["--model", "api", "--base-url", server.url, "--tasks", "gsm8k", "--limit", "2", "--batch"]
        args += ["--batch-poll", "0.05", "--data-dir", data_dir, "--judge-retries", "0", "--quiet"]
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, exe, *args], cwd=tmp, capture_output=True, text=True, check=True
        )
        kib, code = (int(x) for x in out.stdout.split())
        return kib / 1024, code, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exe", action="append", metavar="LABEL=PATH", help="a mue-eval to measure (repeatable)")
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--bomb-mib", type=int, default=1024, help="what the gzip output file inflates to (MiB)")
    p.add_argument("--foreign-mb", type=int, default=200, help="MB of lines for requests the batch does not hold")
    p.add_argument("--tiny", action="store_true", help="a 16 MiB bomb and 4 MB of foreign lines (a smoke test)")
    args = p.parse_args()
    if args.tiny:
        args.bomb_mib, args.foreign_mb = 16, 4
    exes = [e.split("=", 1) for e in args.exe or [f"this={Path(sys.executable).with_name('mue-eval')}"]]
    bomb = _gzip_bomb(args.bomb_mib)
    foreign = foreign_lines(args.foreign_mb)

    def bombed(file_id: str, data: bytes) -> tuple[bytes, dict[str, str]]:
        return (bomb, {"Content-Encoding": "gzip"}) if "output" in file_id else (data, {})

    def padded(file_id: str, data: bytes) -> tuple[bytes, dict[str, str]]:
        return (data + foreign, {}) if "output" in file_id else (data, {})  # the real lines come first

    scenarios: list[tuple[str, Serve | None]] = [
        ("plain", None),
        (f"gzip-bomb {len(bomb) >> 10} KiB -> {args.bomb_mib} MiB", bombed),
        (f"foreign {args.foreign_mb} MB", padded),
    ]
    print(f"{'scenario':<36} {'mue-eval':<10} {'peak RSS':>10} {'ratio':>7} {'exit':>5} {'time':>7}")
    for name, serve in scenarios:
        first = None
        for label, exe in exes:
            peak, code, seconds = measure(exe, serve, args.data_dir)
            first = first or peak
            print(
                f"{name:<36} {label:<10} {peak:>6.0f} MiB {peak / first:>6.2f}x {code:>5} {seconds:>6.1f}s", flush=True
            )


if __name__ == "__main__":
    main()
