"""``mue-eval``: dispatch to one module per command, with one way of ending in an error.

Only argparse and the standard library are imported at start-up; a command's module is imported when it
runs (and engines, rich and the task modules when it needs them), so ``mue-eval --help`` returns at once.
Each command module has ``parser()`` and ``run(args) -> exit code``.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any

from ..errors import MueError, one_line
from ..plugins.include import split_include
from ..run.guards import GuardTripped

COMMANDS = {
    "run": "run",
    "tasks": "tasks",
    "leaderboard": "leaderboard",
    "grade": "grade",
    "import": "imports",
    "export": "export",
    "agreement": "agreement",
    "verify": "verify",
    "compare": "compare",
    "watch": "watch",
    "models": "models",
}
"""Command -> its module in `mathusereval.cli`; ``lm-eval`` parses its own arguments."""
WRITERS = frozenset({"run", "grade", "import"})
"""The commands that write runs (and resume them); the others only read runs and write reports."""


def _error(message: str) -> int:
    print(f"mue-eval: error: {one_line(message)}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lm-eval":
        from . import lm_eval

        try:
            return lm_eval.run(argv[1:])
        except MueError as exc:
            return _error(str(exc))
    try:
        includes, argv = split_include(argv)
        if includes:
            from ..plugins.include import include

            include(includes)
    except MueError as exc:
        return _error(str(exc))
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    module = importlib.import_module(f"{__package__}.{COMMANDS[command]}")
    parse = getattr(module, "parse", None)  # a command with --config reads its file first
    try:
        args = parse(argv) if parse is not None else module.parser().parse_args(argv)
    except MueError as exc:
        return _error(str(exc))
    # SIGTERM (Slurm, Kubernetes, `kill`) stops a run as Ctrl-C does: answers kept, a clean message
    previous = signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C the same way: asyncio.run would otherwise cancel the main task on SIGINT, and a cancellation
    # that lands inside a retry or a worker await can be absorbed, so the run went on to the end (seen under
    # load); a KeyboardInterrupt raised where the main thread stands always stops it
    previous_int = signal.signal(signal.SIGINT, _terminate)
    try:
        return int(module.run(args))
    except GuardTripped as exc:  # a run-health guard: one line, exit 3, what is stored stays
        print(f"mue-eval: stopped: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except MueError as exc:
        return _error(str(exc))
    except OSError as exc:  # a full disk, a read-only --out, permissions taken away mid-run
        where = f"{exc.filename}: " if exc.filename else ""
        if command not in WRITERS:  # a reader changed no run: there is nothing to resume
            return _error(f"{where}{exc.strerror or exc}")
        return _error(
            f"{where}{exc.strerror or exc}; answers already written are kept, and the same command resumes once "
            "this is fixed"
        )
    except KeyboardInterrupt:
        batches = sys.modules.get("mathusereval.backends.batch_api")
        if batches is not None:  # batches polled at the interrupt keep running on the provider (or are cancelled)
            for line in batches.interrupted(bool(getattr(args, "batch_cancel_on_interrupt", False))):
                print(line, file=sys.stderr)
        print("mue-eval: interrupted; finished work is saved, run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


_ENGINES = ("vllm", "ray", "llama_cpp", "torch", "lm_eval", "wandb", "tensorboardX", "multiprocessing")
"""Modules whose exit handlers stop child processes or flush logs: a process that imported one exits normally."""


def entry() -> None:
    """The ``mue-eval`` executable: `main`, then exit. A process that only spoke HTTP and wrote its files has
    nothing to tear down that the OS does not do itself, so it skips the interpreter's teardown (~0.1 s of
    freeing every module, a tenth of a short run's overhead); every file is closed by then, records are
    written unbuffered, and stdout and stderr are flushed first."""
    code = main()
    if any(name in sys.modules for name in _ENGINES):
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
