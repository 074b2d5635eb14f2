"""The launcher between the harness and one sandboxed program (run as ``python -I -S jail.py CONFIG``).

Standard library only, nothing of ours imported: it runs before any isolation exists. The parent
(`mathusereval.tir.sandbox`) starts it in a new session, writes the program to its stdin, reads its
stdout and stderr, and reads the launcher's reports from a status pipe the program never gets ("error: ..."
when setting up the sandbox failed, "exit N" / "signal N" for how the program ended).

Isolated (Linux namespaces; the same system calls ``unshare -rn`` and bubblewrap make):
  launcher: unshare(mount, network, pid, ipc, uts; plus user when not root, mapping our own uid),
            fork -> the child is pid 1 of the new pid namespace; wait (SIGTERM: kill it).
  pid 1:    a fresh root on a small tmpfs with the interpreter's directories bound read-only, /dev with
            null/zero/full/random/urandom, a new /proc, /sandbox a size-capped tmpfs (the working
            directory); chroot there; fork the program, reap, report how it ended on the status pipe.
  program:  the rlimits, an unprivileged uid (as root a fresh random one, so RLIMIT_NPROC counts this
            program's processes only: root ignores RLIMIT_NPROC), no_new_privs, exec the runner.
  When pid 1 ends, the kernel kills everything else in its pid namespace: nothing the program started
  outlives it.
Unisolated (no namespaces): the same rlimits, uid drop and empty environment, in the host working
directory the parent made; the network and the host's files stay reachable.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
from typing import Any

Config = dict[str, Any]
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
DEVICES = ("null", "zero", "full", "random", "urandom")
PAGE = os.sysconf("SC_PAGE_SIZE")
SETUP_FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    args = (_bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data))
    _check(_libc.mount(*args), f"mount {target}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


def _locked_flags(path: str) -> int:
    """The flags a bind remount must keep (the kernel refuses to clear them inside a user namespace)."""
    f = os.statvfs(path).f_flag
    pairs = [
        (os.ST_NOSUID, MS_NOSUID),
        (os.ST_NODEV, MS_NODEV),
        (os.ST_NOEXEC, MS_NOEXEC),
        (os.ST_NOATIME, MS_NOATIME),
        (os.ST_NODIRATIME, MS_NODIRATIME),
        (os.ST_RELATIME, MS_RELATIME),
    ]
    return sum(ms for st, ms in pairs if f & st) | MS_NOSUID | MS_NODEV


def _bind_readonly(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND)  # not recursive: mounts below the path stay out of the jail
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _locked_flags(source))


def _build_root(config: Config, root: str) -> None:
    """Mounts in the private mount namespace; none of them is seen outside it."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path in config["binds"]:
        if os.path.islink(path):  # /lib -> usr/lib on merged-/usr systems: the loader's path must resolve
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            os.symlink(os.readlink(path), root + path)
        elif os.path.exists(path):
            _bind_readonly(path, root + path)
    os.mkdir(root + "/dev")
    for name in DEVICES:
        open(f"{root}/dev/{name}", "a").close()
        _mount(f"/dev/{name}", f"{root}/dev/{name}", None, MS_BIND)
    os.mkdir(root + "/proc")
    with contextlib.suppress(SetupError):  # our pid namespace's /proc; else no /proc at all, never the host's
        _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    inside = root + config["inside_workdir"]
    os.makedirs(inside)
    limits = config["limits"]
    _mount(
        "tmpfs",
        inside,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={limits['disk_bytes']},nr_inodes=4096,mode=0700,uid={config['uid']},gid={config['gid']}",
    )
    _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(root)
    os.chroot(".")
    os.chdir(config["inside_workdir"])


def _enter_user_namespace(flags: int) -> None:
    """Not root: a user namespace mapping only our own uid and gid (what ``unshare -r`` does, minus root)."""
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(CLONE_NEWUSER | flags), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _limit_and_drop(config: Config, supervisors: int = 0) -> None:
    """Rlimits, then (as root) a fresh uid without groups or capabilities. `supervisors`: our processes that
    share the program's uid and so count against its process limit (the launcher and pid 1, when not root)."""
    limits = config["limits"]
    processes = limits["processes"] + (supervisors if os.geteuid() != 0 else 0)
    for which, value in (
        (resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 1)),
        (resource.RLIMIT_AS, (limits["memory_bytes"],) * 2),
        (resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2),
        (resource.RLIMIT_NPROC, (processes, processes)),
        (resource.RLIMIT_NOFILE, (limits["open_files"],) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(which, value)
    if os.geteuid() == 0:
        uid, gid = config["uid"], config["gid"]
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.geteuid() == 0 or os.getuid() == 0:
            raise SetupError("could not drop root")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # changing credentials cleared any earlier one


def _exec_runner(config: Config, runner: str) -> None:
    python = config["python"]
    os.execve(python, [python, "-I", "-S", "-X", "utf8", "-c", runner, *config["site"]], config["env"])


_status_fd = -1  # the pipe to the harness (config "status_fd"); close-on-exec, so never the program's


def _report(text: str) -> None:
    os.write(_status_fd, text.encode()[:4000] + b"\n")


def _report_status(status: int) -> None:
    _report(f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}")


def _init(config: Config, runner: str, lifeline: int) -> None:
    """Pid 1 of the new pid namespace: build the jail, start the program as its child, reap until it ends,
    report how it ended. (Not the program itself: pid 1 ignores signals it has no handler for, SIGXCPU
    included, and the program's own signals should work as anywhere else.) Its exit ends the namespace."""
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _prctl(PR_SET_DUMPABLE, 0)  # not root: the program shares our uid, and must not ptrace its init
        if select.select([lifeline], [], [], 0)[0]:  # the launcher died before the death signal was set
            os._exit(SETUP_FAILED)
        os.close(lifeline)
        os.setsid()  # its own session: a kill(0) inside reaches nothing of the launcher's
        _build_root(config, config["workdir"])
        program = os.fork()
        if program == 0:
            try:
                _limit_and_drop(config, supervisors=2)
                _exec_runner(config, runner)
            except BaseException as exc:  # noqa: BLE001 - a forked child never unwinds into its parent's code
                _report(f"error: {exc}")
            os._exit(SETUP_FAILED)
        status, usage, held = _reap_watching(program, config["limits"]["memory_bytes"])
        _report(f"cpu {usage.ru_utime + usage.ru_stime:.3f}")  # a SIGKILL at the hard CPU limit is a timeout
        if held:
            _report(f"memory {held}")
        _report_status(status)
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001
        _report(f"error: {exc}")
    os._exit(SETUP_FAILED)


def _pids() -> list[str]:
    """Every process of this pid namespace (its own /proc), pid 1 included."""
    return [name for name in os.listdir("/proc") if name.isdigit()]


def _process_bytes(pids: list[str], proportional: bool = False) -> int:
    """The resident memory of the processes `pids`. Resident
    sets count pages a fork shares copy-on-write once per process; `proportional` (slower: each process's
    page tables are walked) counts each page once in all, shared pages split between their processes (PSS,
    smaps_rollup)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):  # OSError: it ended meanwhile
            total += _proportional(pid) if proportional else _statm_resident(pid)
    return total


def _memfd_bytes(pids: list[str]) -> int:
    """The memory files (``memfd_create``) the processes `pids` hold open: written with ``write``, they are
    in no process's resident set, each bounded only by the file-size limit, per descriptor."""
    memfds = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # it ended meanwhile
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path).startswith("/memfd:"):
                        held = os.stat(fd.path)  # the file itself: shared by every descriptor of it
                        memfds[held.st_ino] = held.st_blocks * 512
    return sum(memfds.values())


def _ipc_bytes() -> int:
    """System V shared memory (resident and swapped) and queued messages of this IPC namespace: kernel memory
    outside every process's resident set. (The sysctls that would cap them are not ours to write when the
    jail's user namespace maps no root.)"""
    total = 0
    for table, columns in (("shm", ("rss", "swap")), ("msg", ("cbytes",))):
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/sysvipc/{table}", "rb") as fh:
            header = fh.readline().split()
            where = [header.index(c.encode()) for c in columns]
            for line in fh:
                fields = line.split()
                total += sum(int(fields[i]) for i in where)
    return total


class _SocketBuffers:
    """The bytes queued in this network namespace's Unix sockets (``sock_diag``, as ``ss -x -m`` reads them):
    a socket's buffer is kernel memory, up to ``wmem_max`` twice over per socket (8 MiB on a common host), and
    64 descriptors of 8 processes hold gigabytes. An skb is charged to the socket that sent it until it is
    read. Where the kernel has no Unix diag (a module not loaded), nothing is counted."""

    SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, NLM_F_DUMP, NLMSG_ERROR, NLMSG_DONE = 20, 1, 0x300, 2, 3
    UDIAG_SHOW_MEMINFO, UNIX_DIAG_MEMINFO = 0x20, 5  # linux/unix_diag.h
    NETLINK_SOCK_DIAG = 4

    def __init__(self) -> None:
        self.link: socket.socket | None = None
        with contextlib.suppress(OSError):
            self.link = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, self.NETLINK_SOCK_DIAG)
            self.link.settimeout(1.0)

    def held(self) -> int:
        if self.link is None:
            return 0
        request = struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, self.UDIAG_SHOW_MEMINFO, 0, 0)
        flags = self.NLM_F_REQUEST | self.NLM_F_DUMP
        try:
            self.link.send(struct.pack("=IHHII", 16 + len(request), self.SOCK_DIAG_BY_FAMILY, flags, 1, 0) + request)
            total = 0
            while True:
                data, at = self.link.recv(1 << 16), 0
                while at + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, at)
                    if kind == self.NLMSG_DONE:
                        return total
                    if kind == self.NLMSG_ERROR or length < 32:
                        raise OSError("no Unix socket diag")
                    attribute = at + 32  # the message header, then struct unix_diag_msg
                    while attribute + 4 <= at + length:
                        size, what = struct.unpack_from("=HH", data, attribute)
                        if what == self.UNIX_DIAG_MEMINFO and size >= 4 + 12:
                            received, _, sent = struct.unpack_from("=3I", data, attribute + 4)
                            total += received + sent
                        attribute += max(4, (size + 3) & ~3)
                    at += (length + 3) & ~3
        except (OSError, struct.error):
            self.link.close()
            self.link = None  # not again: a kernel without it does not grow one
            return 0


def _statm_resident(pid: str) -> int:
    with open(f"/proc/{pid}/statm", "rb") as fh:
        return int(fh.read().split()[1]) * PAGE


def _proportional(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) << 10
    except FileNotFoundError:  # a kernel before 4.14: no rollup, the resident set it is
        pass
    return _statm_resident(pid)


def _reap_watching(program: int, limit: int) -> tuple[int, Any, int]:
    """Reap until `program` ends (orphans of the program are ours to reap too), and hold all its processes
    to `limit` bytes together: RLIMIT_AS bounds each process only, and a program may fork. What counts is
    their resident memory and what they hold outside it (memory files, System V IPC, socket buffers). Over
    the limit, every process here is killed, and the bytes seen are returned (0: never over). Polled, from
    every millisecond up to every 20: memory grows at page-fault speed, so the overshoot stays small."""
    wait, held, buffers = 0.001, 0, _SocketBuffers()
    while True:
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == program:
            return status, usage, held
        if pid:
            continue
        if not held:
            pids = _pids()
            outside = _memfd_bytes(pids) + _ipc_bytes() + buffers.held()
            if (
                _process_bytes(pids) + outside > limit
                and (resident := _process_bytes(pids, proportional=True) + outside) > limit
            ):
                held = resident
                with contextlib.suppress(ProcessLookupError):
                    os.kill(-1, signal.SIGKILL)  # from pid 1: every other process of the namespace
        select.select([], [], [], wait)
        wait = min(wait * 2, 0.02)


def _isolated(config: Config, runner: str) -> int:
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if os.geteuid() == 0:
        _check(_libc.unshare(flags), "unshare")
    else:
        _enter_user_namespace(flags)
    lifeline_read, lifeline_write = os.pipe()
    # SIGTERM from the harness (the wall limit, the output cap): kill pid 1 of the jail, then reap it here.
    stopping: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signum)
        if child > 0:
            os.kill(child, signal.SIGKILL)

    child = 0
    signal.signal(signal.SIGTERM, stop)
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.close(lifeline_write)
        _init(config, runner, lifeline_read)
    os.close(lifeline_read)
    if stopping:  # the request came before the fork returned
        os.kill(child, signal.SIGKILL)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):  # pid 1 was killed (stopped by us): it reported nothing
        _report_status(status)
    return 0


def _unisolated(config: Config, runner: str) -> None:
    os.chdir(config["workdir"])
    _limit_and_drop(config)
    try:
        _exec_runner(config, runner)
    except PermissionError as exc:
        raise SetupError(
            f"{config['python']} cannot be run by an unprivileged uid ({exc.strerror}); unisolated programs never "
            "run as root (root ignores the process-count limit): run mue-eval from an interpreter other users may "
            "run (a virtual environment made from /usr/bin/python3, say), or where user namespaces are allowed"
        ) from None


def main() -> None:
    global _status_fd
    config = json.loads(sys.argv[1])
    _status_fd = config["status_fd"]
    os.set_inheritable(_status_fd, False)  # the program never gets the status channel
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the harness died: so does everything below it
        with open(config["runner_path"], encoding="utf-8") as f:
            runner = f.read()
        if config["isolate"]:
            sys.exit(_isolated(config, runner))
        _unisolated(config, runner)
    except (OSError, SetupError, ValueError) as exc:
        _report(f"error: {exc}")
    sys.exit(SETUP_FAILED)


if __name__ == "__main__":
    main()
