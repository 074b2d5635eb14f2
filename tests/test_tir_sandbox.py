"""The TIR program sandbox: hostile programs are data (each ends as that step's error text, within its
limits, leaving nothing behind), upstream's executor semantics, and how it degrades without namespaces.

Every program here really runs, in the sandbox the harness uses. The fork bombs rely on RLIMIT_NPROC
counting a fresh unprivileged uid (root ignores the limit): tests/test_tir_sandbox.py checks the count
holds before it lets a bomb loose.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mathusereval.tir.sandbox import UID_BASE, UID_SPAN, ExecResult, Limits, Sandbox

from .conftest import NO_NESTED_NAMESPACES

pytestmark = pytest.mark.cli  # every test here starts processes

LIMITS = Limits(wall_seconds=3.0, cpu_seconds=3, processes=8)


def sandbox_pids(programs_only: bool = False) -> set[int]:
    """Processes of the sandbox alive now: the program and its forks (their command lines carry the runner's
    source), also, unless `programs_only`, the launchers (jail.py) and anything running as a sandbox uid."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        program = b"SOURCE_LIMIT" in cmdline
        other = UID_BASE <= uid < UID_BASE + UID_SPAN or b"mathusereval/tir/jail.py" in cmdline
        if program or (other and not programs_only):
            found.add(int(entry))
    return found


def wait_until_gone(before: set[int], seconds: float = 5.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := sandbox_pids() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture(autouse=True)
def nothing_left_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """After every test: no sandbox process alive, no working directory left (they are made in tmp_path)."""
    before = sandbox_pids()
    workdirs = tmp_path / "workdirs"
    workdirs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(workdirs))
    yield
    assert not wait_until_gone(before), "sandbox processes outlived their program"
    assert list(workdirs.iterdir()) == []


def run(code: str, limits: Limits = LIMITS) -> ExecResult:
    return asyncio.run(Sandbox(limits).run(textwrap.dedent(code)))


# -- what programs get --------------------------------------------------------------------------------


def test_the_scientific_stack_is_there() -> None:
    result = run(
        """
        import math
        from fractions import Fraction
        import numpy as np
        import sympy as sp
        x = sp.symbols("x")
        print(sp.solve(x**2 - 5*x + 6, x), Fraction(1, 3) + Fraction(1, 6), math.comb(10, 3), int(np.arange(5).sum()))
        """,
        Limits(wall_seconds=20.0),
    )
    assert (result.stdout, result.error, result.exit_status) == ("[2, 3] 1/2 120 10\n", "", 0)
    assert not result.timed_out and not result.truncated and result.seconds > 0


def test_upstream_executor_semantics() -> None:
    """python_executor.py with auto_mode: the last line is evaluated unless it prints; prints before an
    evaluated last line are lost; globals are a fresh dict; input( is refused; errors are their last line."""
    assert run("x = 3\nprint('lost')\nx * 2").stdout == "6"
    assert run("def f():\n    pass\nf()").stdout == "None"
    assert run("print(__name__ == '__main__')").stdout == "False\n"
    assert run("print(input('n?'))").error == "RuntimeError"
    assert run("print('before')\n1 / 0\nprint('after')").error == "ZeroDivisionError: division by zero"
    assert run("import sys\nsys.exit(3)\nprint(1)").error == "SystemExit: 3"
    assert run("lambda: 1").error.startswith("_pickle.PicklingError") or "pickle" in run("lambda: 1").error
    assert run("while True: pass").error.startswith("SyntaxError")  # eval() of a statement, as upstream


def test_the_working_directory_is_fresh_and_writable() -> None:
    result = run("import os\nopen('notes.txt', 'w').write('hi')\nprint(os.getcwd(), os.listdir('.'))")
    assert result.stdout == "/sandbox ['notes.txt']\n"
    assert run("import os\nprint(os.listdir('.'))").stdout == "[]\n"  # the next program's is empty again


# -- hostile programs -----------------------------------------------------------------------------------


def test_process_count_holds_before_any_bomb() -> None:
    """Root ignores RLIMIT_NPROC: the program must run as a fresh uid for the limit to count. A program that
    forks at most 20 sleeping children gets processes - 1 of them (itself is the first), then EAGAIN."""
    result = run(
        """
        import os, time
        n = 0
        try:
            for _ in range(20):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                n += 1
        except OSError as exc:
            print(n, exc.errno)
        """,
        Limits(wall_seconds=10.0, processes=4),
    )
    assert result.stdout == "3 11\n", result
    assert result.seconds < 5  # the sleeping children died with the program: nothing waited for them


def test_fork_bomb(tmp_path: Path) -> None:
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(sandbox_pids(programs_only=True)))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\nprint(1)")
    finally:
        done.set()
        watcher.join()
    assert result.error == "Timeout Error" and result.timed_out
    assert result.seconds < LIMITS.wall_seconds + 4
    assert 1 < peak <= LIMITS.processes


def test_infinite_loop_ends_at_the_wall_clock() -> None:
    result = run("while True:\n    pass\nprint(1)", Limits(wall_seconds=1.5, cpu_seconds=30))
    assert (result.error, result.timed_out, result.exit_status) == ("Timeout Error", True, -signal.SIGKILL)
    assert 1.5 <= result.seconds < 5


def test_cpu_time_limit() -> None:
    result = run("while True:\n    pass\nprint(1)", Limits(wall_seconds=30.0, cpu_seconds=1))
    assert (result.error, result.timed_out, result.exit_status) == ("Timeout Error", True, -signal.SIGXCPU)
    assert result.seconds < 10
    # a program that ignores SIGXCPU runs on to the hard limit, one second later, and is killed there
    stubborn = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\nprint(1)"
    result = run(stubborn, Limits(wall_seconds=30.0, cpu_seconds=1))
    assert (result.error, result.timed_out, result.exit_status) == ("Timeout Error", True, -signal.SIGKILL)
    assert result.seconds < 10


def test_ten_gigabytes() -> None:
    assert run("x = bytearray(10 * 1024**3)\nprint(len(x))").error == "MemoryError"
    result = run("import numpy as np\nprint(np.ones(10 * 1024**3 // 8).sum())", Limits(wall_seconds=20.0))
    assert "Unable to allocate" in result.error and result.exit_status == 1


def test_the_memory_limit_holds_for_all_of_a_programs_processes() -> None:
    """RLIMIT_AS bounds each process; a program that forks is held to the limit all together (pid 1 of
    the jail watches the namespace's resident memory): four children touching 400 MiB each under 512 MiB; pages
    the children share with their parent count once (a forked worker pool is no reason to stop)."""
    forks = """
        import os, time
        kids = []
        for i in range(4):
            pid = os.fork()
            if pid == 0:
                block = bytearray(400 * 1024 * 1024)
                for j in range(0, len(block), 4096):
                    block[j] = 1
                time.sleep(5)
                os._exit(0)
            kids.append(pid)
        print(sum(os.waitpid(k, 0)[1] == 0 for k in kids))
    """
    result = run(forks, Limits(memory_mb=512, wall_seconds=20.0, cpu_seconds=20))
    assert result.error.startswith("MemoryError: the program's processes held") and result.stdout == "", result
    assert result.seconds < 5  # stopped as it crossed the limit, not at the children's end
    assert run("block = bytearray(300 * 1024 * 1024)\nprint(len(block))", Limits(memory_mb=512)).stdout == "314572800\n"
    shared = """
        import os, time
        block = bytearray(300 * 1024 * 1024)
        for j in range(0, len(block), 4096):
            block[j] = 1
        kids = []
        for i in range(4):
            pid = os.fork()
            if pid == 0:  # reads the parent's pages, shared copy-on-write: 300 MiB in all, five resident sets
                time.sleep(0.5 + block[4096 * i])
                os._exit(0)
            kids.append(pid)
        print(sum(os.waitpid(k, 0)[1] == 0 for k in kids))
    """
    assert run(shared, Limits(memory_mb=512, wall_seconds=20.0)).stdout == "4\n"


def test_memory_held_outside_every_process_counts_too() -> None:
    """Memory files written with write(), System V shared memory and message queues are in no process's
    resident set: the watch adds them up too. 48 memory files of 16 MiB, 12 segments of 64 MiB, 40000
    queues of 16 KiB, 7 processes with 64 MiB each in socket buffers: each under 256 MiB; one process with
    64 MiB in socket buffers stays under it."""
    memfds = """
        import os
        block, fds = b"x" * (8 << 20), []
        for i in range(48):
            fd = os.memfd_create(f"m{i}")
            os.write(fd, block); os.write(fd, block)
            fds.append(fd)
        print(len(fds))
    """
    result = run(memfds, Limits(memory_mb=256, wall_seconds=20.0))
    assert result.error.startswith("MemoryError: the program's processes held") and result.stdout == "", result
    shm = """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        for i in range(12):  # attached, touched, detached: no process holds it, the segment does
            sid = libc.shmget(0, 64 << 20, 0o1600)
            address = libc.shmat(sid, None, 0)
            ctypes.memset(address, 1, 64 << 20)
            libc.shmdt(ctypes.c_void_p(address))
        print(i)
    """
    messages = """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        message = ctypes.create_string_buffer(8 + 8192)
        message[0] = 1  # mtype 1
        for i in range(40000):  # 16 KiB a queue, up to 32000 queues by default
            queue = libc.msgget(0, 0o1600)
            libc.msgsnd(queue, message, 8192, 0); libc.msgsnd(queue, message, 8192, 0)
        print(i)
    """
    sockets = """
        import os, socket, time
        children = %d
        for i in range(children):
            if os.fork() == 0:
                break
        keep, queued = [], 0
        while queued < 64 << 20:  # sent and never read: kernel memory, charged to the sending socket
            a, b = socket.socketpair()
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            a.setblocking(False)
            keep += [a, b]
            try:
                while True:
                    queued += a.send(b"x" * 65536)
            except BlockingIOError:
                pass
        time.sleep(2)
        print(queued >> 20)
    """
    for code in (shm, messages, sockets % 6):
        result = run(code, Limits(memory_mb=256, wall_seconds=20.0, open_files=2048))
        assert result.error.startswith("MemoryError: the program's processes held") and result.stdout == "", result
    assert int(run(sockets % 0, Limits(memory_mb=256, wall_seconds=20.0, open_files=2048)).stdout) >= 64
    fine = "import os\nfd = os.memfd_create('m')\nos.write(fd, b'x' * (8 << 20))\nprint(os.fstat(fd).st_size)"
    assert run(fine, Limits(memory_mb=256)).stdout == "8388608\n"


def test_secret_files_and_the_checkout_are_not_there() -> None:
    assert Path("/etc/shadow").exists()
    assert run("print(open('/etc/shadow').read())").error.startswith("FileNotFoundError")
    here = Path(__file__).resolve()
    assert run(f"print(open({str(here)!r}).read()[:10])").error.startswith("FileNotFoundError")


def test_no_network_even_to_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        result = run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('in')")
        assert result.error == "OSError: [Errno 101] Network is unreachable"
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody knocked


def test_writing_outside_the_working_directory(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    site = Path(__import__("sympy").__file__).parent / "escaped.txt"
    for path in (target, Path("/escaped.txt"), site, Path("/tmp/escaped.txt")):
        result = run(f"open({str(path)!r}, 'w').write('x')\nprint('wrote')")
        assert result.error.split(":")[0] in ("FileNotFoundError", "OSError"), result
        assert not path.exists()
    assert run("open('big', 'wb').write(b'x' * (64 << 20))\nprint(1)").error == "OSError: [Errno 27] File too large"


def test_the_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-7f3a")
    result = run("import os\nprint(sorted(os.environ.items()))")
    assert "sk-test-secret" not in result.stdout and "OPENAI" not in result.stdout
    names = {name for name, _ in eval(result.stdout)}  # noqa: S307 - our own print of a list of str pairs
    assert names <= {"HOME", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LC_CTYPE"}


def test_printing_a_gigabyte() -> None:
    result = run("import sys\nfor _ in range(1024):\n    sys.stdout.write('x' * 2**20)\nprint('done')")
    assert result.truncated and result.error == "OutputLimitExceeded: more than 65536 bytes of output"
    assert result.stdout.startswith("x" * 65536) and result.stdout.endswith("[output truncated at 65536 bytes]")
    assert len(result.stdout) < 66000 and result.seconds < 3


def test_killing_the_parent_and_everyone() -> None:
    """Its parent is pid 1 of its own namespace (another uid); the harness is not in its namespace at all."""
    assert (
        run("import os\nos.kill(os.getppid(), 9)\nprint('alive')").error
        == "PermissionError: [Errno 1] Operation not permitted"
    )
    assert run("import os\nos.kill(-1, 9)\nprint('alive')").error == "ProcessLookupError: [Errno 3] No such process"
    result = run(f"import os\nos.kill({os.getpid()}, 9)\nprint('alive')")
    assert result.error == "ProcessLookupError: [Errno 3] No such process"


def test_output_that_never_ends() -> None:
    code = """
        import sys, time
        while True:
            sys.stdout.write('y')
            sys.stdout.flush()
            time.sleep(0.01)
        print(1)
        """
    result = run(code, Limits(wall_seconds=1.5))
    assert result.timed_out and result.error == "Timeout Error" and result.seconds < 5


def test_daemons_die_with_the_program() -> None:
    result = run(
        """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        print('parent done')
        """
    )
    assert result.stdout == "parent done\n" and result.seconds < 3  # the autouse fixture checks nothing is left


def test_the_event_loop_keeps_running() -> None:
    async def main() -> tuple[ExecResult, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        result = await Sandbox(LIMITS).run("import time\ntime.sleep(1)\nprint('slept')")
        ticker.cancel()
        return result, ticks

    result, ticks = asyncio.run(main())
    assert result.stdout == "slept\n" and ticks >= 40


@pytest.mark.slow
def test_limits_hold_under_parallel_load() -> None:
    """16 programs at once on this machine's cores: bombs, loops, hogs and plain ones; each ends within its
    limits with its own result."""
    hostile = {
        "bomb": (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\nprint(1)",
            "Timeout Error",
        ),
        "loop": ("while True:\n    pass\nprint(1)", "Timeout Error"),
        "memory": ("x = bytearray(10 * 1024**3)\nprint(1)", "MemoryError"),
        "flood": (
            "while True:\n    print('z' * 4096)\nprint(1)",
            "OutputLimitExceeded: more than 65536 bytes of output",
        ),
    }
    programs = [hostile[name] for name in hostile for _ in range(2)]
    programs += [(f"import sympy\nprint(sympy.factorint({n}))", "") for n in range(1000, 1008)]
    limits = Limits(wall_seconds=8.0, cpu_seconds=8, processes=8)

    async def main() -> tuple[list[ExecResult], float]:
        sandbox = Sandbox(limits, workers=16)
        started = time.monotonic()
        results = await asyncio.gather(*(sandbox.run(code) for code, _ in programs))
        return results, time.monotonic() - started

    results, seconds = asyncio.run(main())
    for (code, error), result in zip(programs, results, strict=True):
        assert result.error == error, (code, result)
        assert result.seconds < limits.wall_seconds + 5
    assert [r.stdout for r in results[8:]] == [f"{__import__('sympy').factorint(n)}\n" for n in range(1000, 1008)]
    assert seconds < limits.wall_seconds + 10


def test_a_cancelled_run_stops_its_program() -> None:
    async def main() -> None:
        task = asyncio.ensure_future(Sandbox(LIMITS).run("import time\ntime.sleep(60)\nprint(1)"))
        while not sandbox_pids(programs_only=True):
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())  # the autouse fixture checks nothing is left running and no directory left behind


def test_limits_are_positive() -> None:
    with pytest.raises(ValueError, match="processes"):
        Limits(processes=0)


def test_nothing_outlives_a_killed_harness(tmp_path: Path) -> None:
    """The harness itself SIGKILLed mid-program: the launcher and the jail follow it (parent-death signals),
    and the host directory behind the jail's working directory is empty (the tmpfs was the jail's only)."""
    workdirs = tmp_path / "harness-workdirs"
    workdirs.mkdir()
    code = "import asyncio; from mathusereval.tir.sandbox import Sandbox; asyncio.run(Sandbox().run(SLEEP))"
    sleeper = "import time\nopen('left.txt', 'w').write('x')\ntime.sleep(60)\nprint(1)"
    harness = subprocess.Popen(
        [sys.executable, "-c", code.replace("SLEEP", repr(sleeper))],
        env={**os.environ, "TMPDIR": str(workdirs)},
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not sandbox_pids(programs_only=True):
            assert time.monotonic() < deadline and harness.poll() is None, "the program never started"
            time.sleep(0.05)
        time.sleep(0.3)  # the program is writing its file
    finally:
        harness.kill()
        harness.wait()
    assert not wait_until_gone(set()), "sandbox processes outlived the harness"
    assert [list(d.iterdir()) for d in workdirs.iterdir()] == [[]]


def test_the_unisolated_reaper_kills_a_uids_every_process() -> None:
    """Unisolated as root, a program that left its process group is still its uid's: the reaper's kill(-1) as
    that uid ends it (and nothing of any other uid)."""
    if os.geteuid() != 0:
        pytest.skip("only root runs programs as a fresh uid")  # pragma: no cover - CI runs as root
    from mathusereval.tir.sandbox import _ids, _reap

    uid, _ = _ids()
    setpriv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sleep", "60"]
    stray = subprocess.Popen([*setpriv], start_new_session=True, stdin=subprocess.DEVNULL)
    bystander = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        asyncio.run(_reap(uid))
        assert stray.wait(timeout=5) == -signal.SIGKILL
        assert bystander.poll() is None
    finally:
        for proc in (stray, bystander):
            proc.kill()
            proc.wait()


# -- machines without namespaces ------------------------------------------------------------------------

HARNESS = """
import asyncio, json, os, socket, sys
from mathusereval.tir.sandbox import Limits, Sandbox, SandboxUnavailable
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
report = {"euid": os.geteuid()}
for mode in ("isolated", "unisolated"):
    probe = Sandbox(isolation=mode).probe()
    report[mode] = {"probe": [probe.isolated, probe.usable, probe.detail]}
    try:
        Sandbox(isolation=mode).require()
    except SandboxUnavailable as exc:
        report[mode]["refused"] = str(exc)
        continue
    port = server.getsockname()[1]
    code = f"import os, socket\\nsocket.create_connection(('127.0.0.1', {port}))\\nprint(os.getcwd())"
    result = asyncio.run(Sandbox(Limits(wall_seconds=10), isolation=mode).run(code))
    report[mode]["run"] = [result.stdout, result.error]
print(json.dumps(report))
"""


def harness(*wrapper: str) -> dict[str, object]:
    import json

    result = subprocess.run(
        [*wrapper, sys.executable, "-c", HARNESS], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_an_unprivileged_user_gets_the_same_isolation() -> None:
    """Not root: the jail makes its own user namespace mapping only the caller's uid (unshare -r, minus root)."""
    report = harness("unshare", "--user", "--map-user=1000", "--map-group=1000")
    assert report["euid"] == 1000
    isolated = report["isolated"]
    assert isolated["probe"][:2] == [True, True]  # type: ignore[index]
    assert isolated["run"] == ["", "OSError: [Errno 101] Network is unreachable"]  # type: ignore[index]


def test_without_namespaces_the_run_refuses_unless_unisolated() -> None:
    """User namespaces capped at one level (as where they are disabled): isolated refuses, saying why and
    what to pass; unisolated runs, with the network reachable, in a fresh host directory."""
    report = harness(*NO_NESTED_NAMESPACES)
    isolated, unisolated = report["isolated"], report["unisolated"]
    assert isolated["probe"][:2] == [False, False] and "unshare" in isolated["probe"][2]  # type: ignore[index]
    assert "--sandbox unisolated" in isolated["refused"]  # type: ignore[index]
    assert unisolated["probe"][:2] == [False, True] and "UNISOLATED" in unisolated["probe"][2]  # type: ignore[index]
    stdout, error = unisolated["run"]  # type: ignore[index]
    assert error == "" and Path(stdout.strip()).name.startswith("mue-tir-") and not Path(stdout.strip()).exists()
