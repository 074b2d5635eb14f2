"""Shared fixtures: the benchmark data beside the checkout, the CLI as a subprocess, free ports."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mathusereval.backends import ModelSpec
from mathusereval.backends.openai_compat import OpenAIBackend
from mathusereval.metrics import accuracy
from mathusereval.pipeline import RunOptions, RunResult, run_task
from mathusereval.records import Sample
from mathusereval.task import LoadedData, Task

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
    # downloads go to a per-test cache and, unless a test serves a mirror, to a closed loopback port:
    # no test touches the user's cache or the internet
    full_env["MUE_CACHE_DIR"] = str(cwd / ".mue-cache")
    full_env["MUE_DATA_MIRROR"] = "http://127.0.0.1:9"
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


def inline_task(name: str, samples: list[Sample]) -> Task:
    """A task over samples built in the test, graded by the answer grader."""
    return Task(
        name=name,
        version="1",
        load=lambda _: LoadedData(samples, "0" * 64, "inline"),
        prompt_template="{q}",
        graders=("answer",),
        aggregate=accuracy,
    )


def run_openai(task: Task, spec: ModelSpec, options: RunOptions) -> RunResult:
    """One pipeline run of `task` on an OpenAI-compatible backend, closing the client afterwards."""

    async def go() -> RunResult:
        backend = OpenAIBackend(spec)
        try:
            return await run_task(task, spec, backend, options)
        finally:
            await backend.aclose()

    return asyncio.run(go())
