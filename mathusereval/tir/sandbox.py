"""Run model-written Python programs in a sandbox that holds, beside the event loop.

Each program is its own process tree (`jail.py` builds it, `runner.py` runs the program as
QwenLM/Qwen2.5-Math @a45202bd ``evaluation/python_executor.py`` does), so a program can only ever end
as that step's result: `Sandbox.run` returns an `ExecResult`, whatever the program did. Upstream runs
the code with ``exec`` in a worker pool on the evaluating machine, with its network and files; here:

- no network: a new network namespace (only a loopback interface, down);
- a fresh root: the interpreter's directories read-only, a size-capped tmpfs as the working directory
  (gone with the namespace; the host directory behind it is deleted too), no /etc, no /home, no /tmp;
- an empty environment (no API keys): HOME and single-threaded BLAS only;
- rlimits on CPU time, address space, file size, processes and open files, and a wall-clock limit;
- stdout and stderr read as they come and capped (64 KiB each by default): past the cap the program is
  stopped and its output ends in a marker;
- after the limit the jail's pid 1 (a small init, the program's parent) is killed, and with it, by the
  kernel, everything in its pid namespace, even what left the process group; the launcher reaps it.

Where namespaces are not allowed (some containers), `Sandbox.probe` says why and `Sandbox.require`
refuses unless ``isolation="unisolated"`` was chosen: then the rlimits, the uid drop, the empty
environment and the working directory remain, the network and the host's files do not go away.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mathusereval.errors import MueError

Isolation = Literal["isolated", "unisolated"]
HERE = Path(__file__).resolve().parent
JAIL, RUNNER = HERE / "jail.py", HERE / "runner.py"
SCIENTIFIC = ("sympy", "mpmath", "numpy", "scipy")  # what upstream's prompts assume (scipy when installed)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache")
MAX_PROGRAM_BYTES = 1 << 20
INSIDE_WORKDIR = "/sandbox"  # the working directory as the program sees it (isolated)
SETUP_FAILED = 125  # jail.SETUP_FAILED
# Root ignores RLIMIT_NPROC, so as root each program runs as a fresh uid from a range no system allots
# (subordinate ids start at 100000 in blocks of 65536); the process-count limit then counts its own processes.
UID_BASE, UID_SPAN = 1_600_000_000, 400_000_000
TIMEOUT_ERROR = "Timeout Error"  # upstream's report for a program past its time (python_executor.py batch_apply)


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0  # upstream allows 5 s, with sympy already imported in its forked worker
    cpu_seconds: int = 10
    memory_mb: int = 1024  # address space per process, and resident memory of all its processes together
    file_mb: int = 16  # largest file a program may write
    disk_mb: int = 64  # the working directory's tmpfs (isolated mode)
    processes: int = 8  # threads count too
    open_files: int = 64
    output_bytes: int = 65536  # per stream

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"sandbox limit {name} must be positive, not {value!r}")


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    error: str  # "" when the program succeeded, else one line: the exception's, "Timeout Error", ...
    exit_status: int  # the program's exit code; minus the signal number when a signal ended it
    timed_out: bool = False
    truncated: bool = False
    seconds: float = 0.0
    stderr: str = ""


@dataclass(frozen=True)
class Probe:
    isolated: bool  # namespaces held: no network, no host files
    usable: bool  # programs can run in the mode asked for
    detail: str


class SandboxError(MueError):
    """The sandbox itself failed (not the program): a setup step the machine refused."""


class SandboxUnavailable(SandboxError):
    pass


@dataclass
class _Capture:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    overflow: bool = False

    async def pump(self, stream: asyncio.StreamReader, full: asyncio.Event) -> None:
        """Keep the first `limit` bytes; past them signal `full` and drain to the end (the pipe must reach
        EOF for the process to be waited for), keeping nothing more."""
        while chunk := await stream.read(1 << 16):
            room = self.limit - len(self.data)
            if room > 0:
                self.data += chunk[:room]
            if len(chunk) > room and not self.overflow:
                self.overflow = True
                full.set()

    def text(self, marker: bool) -> str:
        text = self.data.decode("utf-8", "replace")
        return text + f"\n[output truncated at {self.limit} bytes]" if marker and self.overflow else text


def _site_dirs() -> list[str]:
    dirs: list[str] = []
    for name in SCIENTIFIC:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            site = os.path.dirname(os.path.dirname(os.path.realpath(spec.origin)))
            if site not in dirs:
                dirs.append(site)
    return dirs


def _binds(site: list[str]) -> list[str]:
    """What the jail shows read-only: the system's library directories and the interpreter's, the sites."""
    binds = [p for p in SYSTEM_DIRS if os.path.lexists(p)]
    real = [os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)]
    real.append(os.path.dirname(os.path.realpath(sys.executable)))
    for path in real + site:
        covered = any(path == b or path.startswith(b.rstrip("/") + "/") for b in binds if not os.path.islink(b))
        if not covered and path not in binds:
            binds.append(path)
    return binds


def _ids() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    uid = UID_BASE + secrets.randbelow(UID_SPAN)
    return uid, uid


_REAP = "import os,sys;u=int(sys.argv[1]);os.setgroups([]);os.setresgid(u,u,u);os.setresuid(u,u,u);os.kill(-1,9)"


class Sandbox:
    """A bounded pool of sandboxed program runs: at most `workers` at once, each its own process tree."""

    def __init__(self, limits: Limits | None = None, *, workers: int = 4, isolation: Isolation = "isolated") -> None:
        self.limits = limits or Limits()
        self.isolation: Isolation = isolation
        self.workers = max(1, workers)
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}  # a semaphore belongs to one loop
        self._site = _site_dirs()
        self._binds = _binds(self._site)
        clash = [b for b in self._binds if (b + "/").startswith(INSIDE_WORKDIR + "/")]
        if clash:
            raise SandboxError(f"the sandbox's working directory {INSIDE_WORKDIR} would hide {clash[0]}")

    # -- the machine ------------------------------------------------------------------------------------
    def probe(self) -> Probe:
        """Run one tiny program the way `run` would, in this sandbox's isolation mode; say whether programs
        run here, and if not why."""
        isolation = self.isolation
        sandbox = Sandbox(Limits(wall_seconds=30.0), workers=1, isolation=isolation)
        try:
            # a thread of its own: callable with or without an event loop running here
            with concurrent.futures.ThreadPoolExecutor(1) as thread:
                result = thread.submit(asyncio.run, sandbox.run("print(6 * 7)")).result()
        except SandboxError as exc:
            return Probe(False, False, str(exc))
        if result.stdout.strip() != "42":
            return Probe(False, False, f"a test program failed: {result.error or result.stdout[:200]!r}")
        packages = ", ".join(n for n in SCIENTIFIC if importlib.util.find_spec(n) is not None)
        if isolation == "isolated":
            how = "own network, pid, mount, ipc and uts namespaces, a read-only root, no host files"
        else:
            how = "UNISOLATED: the network and the host's files are reachable"
        return Probe(isolation == "isolated", True, f"{how}; packages: {packages or 'none'}")

    def require(self) -> Probe:
        """Probe; raise `SandboxUnavailable` (with what to do) when programs cannot run as asked."""
        probe = self.probe()
        if not probe.usable:
            hint = (
                " (isolation='unisolated', --sandbox unisolated, runs without namespaces)"
                if self.isolation == "isolated"
                else ""  # unisolated was asked for already: what failed is said above
            )
            raise SandboxUnavailable(f"the program sandbox cannot run here: {probe.detail}" + hint)
        return probe

    # -- one program ------------------------------------------------------------------------------------
    async def run(self, code: str) -> ExecResult:
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots = {loop: asyncio.Semaphore(self.workers)}
        async with self._slots[loop]:
            return await self._run(code)

    def _config(self, workdir: str, uid: int, gid: int, status_fd: int) -> dict[str, object]:
        isolate = self.isolation == "isolated"
        lim = self.limits
        return {
            "isolate": isolate,
            "uid": uid,
            "gid": gid,
            "workdir": workdir,
            "inside_workdir": INSIDE_WORKDIR,
            "status_fd": status_fd,
            "binds": self._binds,
            "python": os.path.realpath(sys.executable),
            "runner_path": str(RUNNER),
            "site": self._site,
            "env": {
                "HOME": INSIDE_WORKDIR if isolate else workdir,
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
            },
            "limits": {
                "cpu_seconds": lim.cpu_seconds,
                "memory_bytes": lim.memory_mb << 20,
                "file_bytes": lim.file_mb << 20,
                "disk_bytes": lim.disk_mb << 20,
                "processes": lim.processes,
                "open_files": lim.open_files,
            },
        }

    async def _run(self, code: str) -> ExecResult:
        source = code.encode("utf-8", "replace")
        if len(source) > MAX_PROGRAM_BYTES:
            return ExecResult("", f"ProgramTooLong: more than {MAX_PROGRAM_BYTES} bytes", 1)
        started = time.monotonic()
        workdir = tempfile.mkdtemp(prefix="mue-tir-")
        uid, gid = _ids()
        reap = self.isolation == "unisolated" and os.geteuid() == 0
        if reap:
            os.chown(workdir, uid, gid)
        status_read, status_write = os.pipe()
        try:
            config = json.dumps(self._config(workdir, uid, gid, status_write))
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-I", "-S", str(JAIL), config,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    pass_fds=(status_write,), start_new_session=True, env={},
                )  # fmt: skip
            finally:
                os.close(status_write)
            out, err = _Capture(self.limits.output_bytes), _Capture(self.limits.output_bytes)
            status = await self._supervise(proc, source, out, err, status_read, uid if reap else None)
        finally:
            with contextlib.suppress(OSError):
                os.close(status_read)
            if reap:  # a program that left its process group and closed its pipes: still this uid's
                await _reap(uid)
            shutil.rmtree(workdir, ignore_errors=True)
        return _result(status, proc.returncode, out, err, time.monotonic() - started, self.limits.cpu_seconds)

    async def _supervise(
        self,
        proc: asyncio.subprocess.Process,
        source: bytes,
        out: _Capture,
        err: _Capture,
        status_fd: int,
        reap_uid: int | None,
    ) -> tuple[str, bool]:
        """Feed, read and wait for one launcher; stop the program at the wall limit or the output cap."""
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        loop = asyncio.get_running_loop()
        full = asyncio.Event()
        status = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(status), os.fdopen(os.dup(status_fd), "rb", 0)
        )

        async def feed() -> None:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):  # the jail failed, or the program closed stdin: not ours to report
                proc.stdin.write(source)
                await proc.stdin.drain()
                proc.stdin.close()

        async def finish() -> None:
            assert proc.stdout is not None and proc.stderr is not None
            await asyncio.gather(feed(), out.pump(proc.stdout, full), err.pump(proc.stderr, full), proc.wait())

        work = asyncio.ensure_future(finish())
        stop = asyncio.ensure_future(full.wait())
        stopped = False
        try:
            done, _ = await asyncio.wait({work, stop}, timeout=self.limits.wall_seconds, return_when="FIRST_COMPLETED")
            timed_out = not done
            if work not in done:
                stopped = True
                await self._stop(proc, work, reap_uid)
            text = b""
            with contextlib.suppress(asyncio.TimeoutError):  # its writers are gone by now; never wait forever
                text = await asyncio.wait_for(status.read(-1), 5.0)
        finally:
            if not stopped and not work.done():  # cancelled: the program must not outlive the call
                await self._stop(proc, work, reap_uid)
            for task in (work, stop):
                task.cancel()
            await asyncio.gather(work, stop, return_exceptions=True)
            transport.close()
            if not work.done() or work.cancelled():  # a pipe still open (an unisolated straggler): close ours
                process_transport = getattr(proc, "_transport", None)
                if process_transport is not None:
                    process_transport.close()
        return text.decode("utf-8", "replace"), timed_out

    async def _stop(self, proc: asyncio.subprocess.Process, work: asyncio.Future[None], reap_uid: int | None) -> None:
        """Isolated: SIGTERM asks the launcher to SIGKILL the jail's pid 1 and reap it (the kernel then kills
        the rest of its pid namespace), so no zombie is left to the host's init. The launcher's process group
        gets SIGKILL when that does not end it in time, and always when unisolated (the runner is the launcher)."""
        if self.isolation == "isolated":
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(work), 3.0)
                return
        _kill_group(proc.pid)
        if reap_uid is not None:
            await _reap(reap_uid)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(work), 3.0)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _reap(uid: int) -> None:
    """Unisolated as root: kill every process of the program's fresh uid, also those that left its group."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", "-c", _REAP, str(uid), stderr=subprocess.DEVNULL, env={}
    )
    await proc.wait()


def _result(
    status: tuple[str, bool], returncode: int | None, out: _Capture, err: _Capture, seconds: float, cpu_seconds: int
) -> ExecResult:
    text, timed_out = status
    exit_status = returncode if returncode is not None else -signal.SIGKILL
    cpu, held = 0.0, 0
    for line in text.splitlines():
        kind, _, value = line.partition(" ")
        if kind == "error:":
            raise SandboxError(f"sandbox setup failed: {value}")
        if kind in ("exit", "signal") and value.isdigit():
            exit_status = int(value) if kind == "exit" else -int(value)
        if kind == "cpu":
            cpu = float(value)
        if kind == "memory" and value.isdigit():
            held = int(value)
    truncated = out.overflow or err.overflow
    # The CPU-time limit is a timeout by another clock: SIGXCPU at the soft limit, SIGKILL at the hard one
    # (a program that handles SIGXCPU runs on to it).
    if exit_status == -signal.SIGXCPU or (exit_status == -signal.SIGKILL and cpu >= cpu_seconds):
        timed_out = True
    if timed_out:
        error = TIMEOUT_ERROR
    elif held:
        error = f"MemoryError: the program's processes held {held >> 20} MiB together, over the limit"
    elif truncated:
        error = f"OutputLimitExceeded: more than {out.limit} bytes of output"
    elif exit_status == 0:
        error = ""
    elif exit_status < 0:
        error = f"Killed: signal {-exit_status}"
    else:
        lines = [line for line in err.text(False).splitlines() if line.strip()]
        error = lines[-1].strip() if lines else f"Exited with status {exit_status}"
    return ExecResult(
        stdout=out.text(True),
        error=error,
        exit_status=exit_status,
        timed_out=timed_out,
        truncated=truncated,
        seconds=round(seconds, 4),
        stderr=err.text(True),
    )
