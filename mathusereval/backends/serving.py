"""``--serve``: vLLM's OpenAI server for a model directory, started and stopped around a run.

One server per ``--data-parallel-size`` replica (each on its own slice of the visible GPUs, ``--tensor-
parallel-size`` GPUs wide), all on 127.0.0.1, load-balanced by the OpenAI backend's endpoint pool. Useful
where replicas beat one engine, and to evaluate exactly what will be deployed behind the HTTP API.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ..errors import BackendUnavailable, ConfigError
from .base import ModelSpec
from .options import VLLMOptions
from .vllm_engine import NO_TRACKING

SERVER_FLAGS = {
    "tensor_parallel_size": "--tensor-parallel-size",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "max_model_len": "--max-model-len",
    "max_num_seqs": "--max-num-seqs",
    "dtype": "--dtype",
}
READY_TIMEOUT_S = float(os.environ.get("MUE_SERVE_TIMEOUT", "1800"))  # a 70B model loads in minutes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gpu_slices(replicas: int, width: int) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each replica: consecutive slices of the GPUs this process may use."""
    if replicas == 1:
        return [None]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(replicas * width)]
    if len(ids) < replicas * width:
        raise ConfigError(
            f"--data-parallel-size {replicas} x --tensor-parallel-size {width} needs more GPUs than {ids}"
        )
    return [",".join(ids[i * width : (i + 1) * width]) for i in range(replicas)]


class VLLMServers:
    """The replicas' processes; an async context manager yielding their base URLs once all are ready."""

    def __init__(self, spec: ModelSpec, served_name: str) -> None:
        if not isinstance(spec.options, VLLMOptions):
            raise ConfigError("--serve starts vLLM for --model HF_DIR; a served model is evaluated with --base-url")
        self.spec = spec
        self.options = spec.options
        self.served_name = served_name
        self.replicas = int(spec.options.data_parallel_size or 1)
        self.logs = Path(tempfile.mkdtemp(prefix="mue-serve-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def command(self, port: int) -> list[str]:
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.spec.model]
        cmd += ["--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(port)]
        for key, flag in SERVER_FLAGS.items():
            if getattr(self.options, key) is not None:
                cmd += [flag, str(getattr(self.options, key))]
        if self.options.enforce_eager:
            cmd.append("--enforce-eager")
        if self.options.chat_template is not None:
            template = self.logs / "chat_template.jinja"
            template.write_text(self.options.chat_template, encoding="utf-8")
            cmd += ["--chat-template", str(template)]
        return cmd

    def _start(self) -> None:
        width = int(self.options.tensor_parallel_size or 1)
        env = {**os.environ, **NO_TRACKING}
        for i, devices in enumerate(_gpu_slices(self.replicas, width)):
            port = _free_port()
            replica_env = env if devices is None else {**env, "CUDA_VISIBLE_DEVICES": devices}
            with (self.logs / f"vllm-{i}.log").open("wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        self.command(port),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=replica_env,
                    )
                )
            self.urls.append(f"http://127.0.0.1:{port}/v1")

    def _tail(self, i: int) -> str:
        lines = (self.logs / f"vllm-{i}.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-25:])

    async def _ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting = set(range(len(self.procs)))
        async with httpx.AsyncClient(timeout=5.0) as client:
            while waiting:
                for i in sorted(waiting):
                    if self.procs[i].poll() is not None:
                        raise BackendUnavailable(
                            f"vLLM server {i} exited with {self.procs[i].returncode} while starting; "
                            f"log {self.logs}/vllm-{i}.log ends:\n{self._tail(i)}"
                        )
                    try:
                        if (await client.get(f"{self.urls[i]}/models")).status_code == 200:
                            waiting.discard(i)
                    except httpx.TransportError:
                        pass
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"vLLM servers not ready after {READY_TIMEOUT_S:.0f} s; logs in {self.logs}"
                    )
                await asyncio.sleep(0.5)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    async def __aenter__(self) -> list[str]:
        self._start()
        try:
            await self._ready()
        except BaseException:
            self.stop()
            raise
        return self.urls

    async def __aexit__(self, *exc: Any) -> None:
        self.stop()
