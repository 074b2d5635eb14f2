"""Shared fixtures: the benchmark data beside the checkout, the CLI as a subprocess, free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MUE_TEST_DATA", REPO.parent / "shared" / "data"))
MUE_EVAL = Path(sys.executable).with_name("mue-eval")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert (SHARED_DATA / "gsm8k" / "test.jsonl").is_file(), f"benchmark data expected at {SHARED_DATA}"
    return SHARED_DATA


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mue-eval`` in `cwd` (never the repo root, whose folders would shadow the package)."""
    full_env = {**os.environ, "COLUMNS": "200"}
    full_env.pop("MUE_DATA_DIR", None)  # only what a test passes counts
    full_env.update(env or {})
    return subprocess.run(
        [str(MUE_EVAL), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
