"""Killable worker processes with a wall-clock and a memory bound for grading hostile text.

Each worker is a fresh ``python`` child (not a fork: the parent may hold threads, a GPU context or a
large model) that imports sympy and Math-Verify once, caps its address space with ``RLIMIT_AS`` and
then serves JSON lines on stdin/stdout — nothing is unpickled. The parent sends a chunk of items and
reads one result line per item; when no result arrives within `timeout` seconds the worker is killed,
the item it was on is reported as ``"timeout"``, the rest of its chunk goes back in the queue and a
fresh worker takes over.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any

Item = dict[str, Any]
Handler = Callable[[Item], Item]

DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MEMORY_MB = 1024
_START_TIMEOUT_S = 120.0
# sys.path[0] is the working directory for "-c": drop it, or a checkout's folders would shadow the package.
_BOOT = (
    "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "from mathusereval.graders.sandbox import serve; serve(sys.argv[1], int(sys.argv[2]))"
)


def _limit_memory(extra_mb: int) -> None:
    try:
        import resource

        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):  # not Linux: the wall clock still bounds the work
        pass


def serve(handler_path: str, memory_mb: int) -> None:
    """Worker main loop: one JSON array of items per input line, one JSON result per output line."""
    import importlib
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" notice: we bound time
    module, _, name = handler_path.partition(":")
    handler: Handler = getattr(importlib.import_module(module), name)
    handler({"warmup": True})
    _limit_memory(memory_mb)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        for item in json.loads(line):
            try:
                result = handler(item)
            except MemoryError:
                result = {"error": "memory limit"}
            except RecursionError:
                result = {"error": "parse failure"}
            except Exception as exc:  # noqa: BLE001 - reported per item, never a dead worker
                result = {"error": f"grader error: {type(exc).__name__}: {str(exc)[:200]}"}
            out.write(json.dumps(result) + "\n")
            out.flush()


class _Worker:
    def __init__(self, handler_path: str, memory_mb: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, handler_path, str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout
        self._buffer = b""
        self.queue: deque[int] = deque()
        self.deadline = 0.0

    def read_lines(self) -> list[bytes] | None:
        """The complete lines available now (raw reads: a buffered reader would hide lines from select)."""
        data = os.read(self.stdout.fileno(), 1 << 20)
        if not data:
            return None
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return lines

    def send(self, items: list[Item]) -> None:
        self.stdin.write(json.dumps(items).encode() + b"\n")
        self.stdin.flush()

    def wait_ready(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT_S
        with selectors.DefaultSelector() as sel:
            sel.register(self.stdout, selectors.EVENT_READ)
            while not self._buffer.startswith(b"ready\n"):
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    return False
                lines = self.read_lines()
                if lines is None:
                    return False
                if lines:
                    return lines[0] == b"ready"
        return True

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)
        for stream in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                stream.close()


class WorkerPool:
    """`workers` sandboxed processes applying `handler_path` ("module:function") to JSON items."""

    def __init__(
        self,
        handler_path: str,
        workers: int = 1,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        chunk_size: int = 32,
    ) -> None:
        self.handler_path, self.timeout, self.memory_mb = handler_path, timeout, memory_mb
        self.size, self.chunk_size = max(1, workers), max(1, chunk_size)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.replaced = 0

    def _spawn(self) -> _Worker:
        worker = _Worker(self.handler_path, self.memory_mb)
        # Imports and the warm-up happen before "ready", outside any item's time budget.
        if not worker.wait_ready():
            worker.kill()
            raise RuntimeError(f"grader worker failed to start ({sys.executable} -c ... {self.handler_path})")
        return worker

    def run(self, items: Sequence[Item]) -> list[Item]:
        """Results in item order; an item that overran is ``{"error": "timeout"}``."""
        with self._lock:
            results: list[Item | None] = [None] * len(items)
            todo = deque(range(len(items)))
            # About four chunks per worker, so a worker that is killed loses little and the load evens out.
            workers = min(self.size, max(1, len(items)))
            chunk = max(1, min(self.chunk_size, len(items) // (workers * 4) or 1))
            busy: set[_Worker] = set()
            with selectors.DefaultSelector() as sel:
                while todo or busy:
                    while todo and len(self._workers) < min(self.size, len(todo) + len(busy)):
                        self._workers.append(self._spawn())
                    for worker in list(self._workers):
                        if worker not in busy and todo:
                            worker.queue = deque(todo.popleft() for _ in range(min(chunk, len(todo))))
                            try:
                                worker.send([items[i] for i in worker.queue])
                            except OSError:
                                self._replace(worker, busy, todo, results, "memory limit", sel)
                                continue
                            worker.deadline = time.monotonic() + self.timeout
                            busy.add(worker)
                            sel.register(worker.stdout, selectors.EVENT_READ, worker)
                    if not busy:
                        continue
                    wait_s = max(0.0, min(w.deadline for w in busy) - time.monotonic())
                    for key, _ in sel.select(wait_s):
                        worker = key.data
                        lines = worker.read_lines()
                        if lines is None:  # died (killed by the kernel for memory): blame the item it was on
                            self._replace(worker, busy, todo, results, "memory limit", sel)
                            continue
                        for line in lines:
                            results[worker.queue.popleft()] = json.loads(line)
                        if lines:
                            worker.deadline = time.monotonic() + self.timeout
                        if not worker.queue:
                            busy.discard(worker)
                            sel.unregister(worker.stdout)
                    now = time.monotonic()
                    for worker in [w for w in busy if w.deadline <= now]:
                        self._replace(worker, busy, todo, results, "timeout", sel)
            return [r if r is not None else {"error": "timeout"} for r in results]

    def _replace(
        self,
        worker: _Worker,
        busy: set[_Worker],
        todo: deque[int],
        results: list[Item | None],
        why: str,
        sel: selectors.BaseSelector,
    ) -> None:
        if worker.queue:
            results[worker.queue.popleft()] = {"error": why}
            todo.extendleft(reversed(worker.queue))
            worker.queue.clear()
        if worker in busy:
            busy.discard(worker)
            sel.unregister(worker.stdout)
        worker.kill()
        self._workers.remove(worker)  # replaced when work is next handed out, not while the caller waits
        self.replaced += 1

    def close(self) -> None:
        with self._lock:
            for worker in self._workers:
                worker.kill()
            self._workers.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: dict[tuple[str, float, int], WorkerPool] = {}


def _close_shared() -> None:
    for pool in _shared.values():
        pool.close()


def shared_pool(
    handler_path: str, *, timeout: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB
) -> WorkerPool:
    """One lazily started single-worker pool per configuration, for one-off gradings."""
    key = (handler_path, timeout, memory_mb)
    if key not in _shared:
        if not _shared:
            atexit.register(_close_shared)
        _shared[key] = WorkerPool(handler_path, 1, timeout=timeout, memory_mb=memory_mb)
    return _shared[key]
