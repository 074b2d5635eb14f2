"""``mue-eval watch DIR --config sweep.toml``: evaluate each checkpoint of a training run once it is written.

Every checkpoint that appears under DIR (or matches a glob) is evaluated, once complete (`mathusereval.watch.
checkpoints`), with the settings of ``mue-eval run`` (the same options and ``--config``), one engine at a time,
through the same entry point (`mathusereval.cli.run.Invocation`). After each: ``--board DIR`` is rebuilt as
``leaderboard --out`` (sweep plots and tables included) and ``--log-to`` gets the checkpoint's metrics at its
step. The watcher's state lives in the results tree (`mathusereval.watch.state`): a restarted watcher skips
what it evaluated and resumes what was cut off. A checkpoint deleted while it is evaluated (``save_total_limit``)
is one line, and the watcher goes on.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import MueError, one_line
from . import run as run_command

PREFIX = "mue-eval watch:"


def parser() -> argparse.ArgumentParser:
    p = run_command.parser()
    p.prog = "mue-eval watch"
    p.description = (
        "Evaluate each checkpoint a training run writes under DIR (HF folders, .gguf files, folders with one "
        ".gguf; or a glob as --model takes) once it is complete, with the options of mue-eval run."
    )
    p.epilog = None
    p.add_argument("watched", metavar="DIR", help="the folder the trainer writes checkpoints into, or a glob")
    w = p.add_argument_group("watching")
    w.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="seconds a checkpoint's files must stay unchanged (size and modification time) before it counts "
        "as written (default: 60)",
    )
    w.add_argument(
        "--ready-file",
        metavar="NAME",
        help="a checkpoint is complete once this file is in its folder (e.g. trainer_state.json), whatever "
        "the settle time",
    )
    w.add_argument("--poll", type=float, default=10.0, help="seconds between looks at DIR (default: 10)")
    w.add_argument("--once", action="store_true", help="evaluate the checkpoints complete now, then exit")
    w.add_argument("--idle-exit", type=float, metavar="S", help="exit after S seconds without a new checkpoint")
    w.add_argument("--board", metavar="DIR", help="rebuild the leaderboard (leaderboard --out) here after each")
    w.add_argument("--sweep-x", metavar="FILE.csv", help="for --board: another x-axis for the sweep (see leaderboard)")
    w.add_argument(
        "--served-name",
        metavar="PATTERN",
        help="evaluate each checkpoint as a model a server at --base-url serves, named by PATTERN with {name} "
        "(the checkpoint's file or folder name) and {step}, e.g. 'ckpt-{step}'",
    )
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    args = run_command.parse(argv, parser())
    if any(a.split("=")[0] in ("--model", "--name") for a in argv):
        raise MueError("mue-eval watch evaluates the checkpoints it finds: leave out --model and --name")
    args.model = args.name = None  # a sweep config's models are the run's; the watcher finds its own
    args.steps = None
    for flag, value in (("--settle", args.settle), ("--poll", args.poll)):
        if value < 0:
            raise MueError(f"{flag} must be >= 0, got {value:g}")
    if args.served_name and not args.base_url:
        raise MueError("--served-name names models a server serves: give its --base-url too")
    return args


@dataclasses.dataclass
class Watcher:
    args: argparse.Namespace
    invocation: Any
    state: Any
    settling: Any
    track: Any
    said: dict[Path, str] = dataclasses.field(default_factory=dict)
    failed: set[Path] = dataclasses.field(default_factory=set)
    evaluated: int = 0

    def say(self, text: str) -> None:
        print(f"{PREFIX} {one_line(text)}", file=sys.stderr, flush=True)

    def say_once(self, checkpoint: Path, status: str, text: str) -> None:
        if self.said.get(checkpoint) != status:
            self.said[checkpoint] = status
            self.say(text)

    def look(self, final: bool = False) -> tuple[int, list[str]]:
        """One look at the watched directory: evaluate every complete checkpoint not yet done. Returns how
        many were evaluated and which checkpoints are not complete (with why)."""
        from ..backends.weights import content_identity
        from ..watch.checkpoints import find_checkpoints
        from ..watch.state import DELETED, DONE, RUNNING

        done, waiting = 0, []
        for checkpoint in find_checkpoints(self.args.watched):
            path = checkpoint.path
            entry = self.state.get(path)
            ready, why = self.settling.complete(checkpoint)
            if not ready:
                if why != "new" and not why.startswith("settling"):
                    self.say_once(path, why, f"{checkpoint.name}: not complete yet ({why})")
                elif path not in self.said:  # said once, with how long it waits (a silent minute looks stuck)
                    wait = (
                        ""
                        if self.args.ready_file
                        else f"; waiting until its files are unchanged for {self.args.settle:g} s"
                    )
                    self.say_once(path, "found", f"found {checkpoint.name}{wait}")
                waiting.append(f"{checkpoint.name} ({why})")
                continue
            weights = content_identity(str(path))
            status = entry.get("status")
            if status == DONE and entry.get("weights") == weights:
                self.say_once(path, DONE, f"{checkpoint.name}: evaluated before, skipped")
                continue
            if (status == DELETED and entry.get("weights") == weights) or path in self.failed:
                continue
            name = ""
            if status == DONE:  # the same path with other weights (checkpoint-latest/): a run of its own
                name = f"{checkpoint.name}-{(weights or 'x')[7:15]}"
                self.say(f"{checkpoint.name}: its weights changed since it was evaluated; evaluating them as {name}")
            elif status == RUNNING:
                self.say(f"{checkpoint.name}: resuming (it was cut off; stored answers are reused)")
            done += self.evaluate(checkpoint, weights, name or entry.get("name", ""))
        return done, waiting

    def evaluate(self, checkpoint: Any, weights: str | None, name: str) -> int:
        from ..watch.state import DELETED, DONE, FAILED, RUNNING

        path, step = checkpoint.path, checkpoint.step()
        self.state.set(path, RUNNING, weights=weights, step=step, name=name)
        model = self.args.served_name.format(name=checkpoint.name, step=step) if self.args.served_name else None
        self.say(f"evaluating {checkpoint.name} (step {step if step is not None else 'unknown'})")
        results: list[Any] = []
        error = ""
        try:
            spec = self.invocation.spec(model or checkpoint.model())
            config = {**self.invocation.run_options.config, "model": spec.model, "steps": {spec.model: step}}
            options = dataclasses.replace(self.invocation.run_options, name=name, config=config)
            results = self.invocation.evaluate(spec, options)
        except (MueError, OSError, RuntimeError, ValueError) as exc:
            error = one_line(str(exc)) or type(exc).__name__
        # a trainer's rotation may be half done when we look: the folder still there, its weights gone. Only a
        # failed evaluation makes it 'deleted': an engine that read the weights before they went (llama.cpp and
        # vLLM load them whole at start) evaluated the checkpoint, and its results stand.
        gone = not path.exists() or not any(p.is_file() for p in _weights(path))
        if error and gone:
            stored = sum(r.counts.generations for r in results)
            self.say(
                f"{checkpoint.name} was deleted while it was evaluated (the trainer's save_total_limit?); "
                + (f"its {stored} answers are kept" if results else "what was stored is kept")
                + "; it is not evaluated again"
            )
            self.state.set(path, DELETED, error=error)
            return 0
        if error:
            self.say(f"{checkpoint.name} failed: {error}; the watcher goes on (a restart tries it again)")
            self.state.set(path, FAILED, error=error)
            self.failed.add(path)
            return 0
        if gone:
            self.say(f"{checkpoint.name} was deleted after its weights were read; its evaluation is complete")
        self.state.set(path, DONE, runs=[str(r.directory) for r in results])
        self.said[path] = DONE
        self.track(results)
        shown = ", ".join(
            f"{r.manifest.task} {r.metrics[0].name} {r.metrics[0].value:.3g} (n={r.metrics[0].n})"
            for r in results
            if r.metrics
        )
        self.say(f"{checkpoint.name} done: {shown or 'no metrics'}")
        self.update_board()
        return 1

    def update_board(self) -> None:
        if not self.args.board:
            return
        from ..store.guard import guarded_outputs
        from .leaderboard import read_runs, write_board

        try:
            with guarded_outputs():  # the ledger is written after each update: a killed watcher leaves a valid one
                runs = read_runs(Path(self.args.out), "none", warn=False)
                written = write_board(runs, Path(self.args.board), sweep_x=self.args.sweep_x)
        except (MueError, OSError) as exc:
            self.say(f"warning: the leaderboard in {self.args.board} was not updated: {one_line(str(exc))}")
            return
        self.say(f"leaderboard updated: {self.args.board} ({len(written)} files)")


def run(args: argparse.Namespace) -> int:
    from ..run.tracking import trackers
    from ..watch.checkpoints import Settling
    from ..watch.state import WatchState

    invocation = run_command.Invocation.of(args)  # every option checked before the first look
    out = invocation.run_options.out
    state = WatchState.load(out, args.watched)
    how = f"--ready-file {args.ready_file}" if args.ready_file else f"files unchanged for {args.settle:g} s"
    print(f"{PREFIX} watching {args.watched} (complete: {how}); state in {state.path}", file=sys.stderr, flush=True)
    with trackers(args.log_to or (), out) as track:
        watcher = Watcher(args, invocation, state, Settling(args.settle, args.ready_file), track)
        last_new = time.monotonic()
        while True:
            evaluated, waiting = watcher.look()
            watcher.evaluated += evaluated
            if evaluated:
                last_new = time.monotonic()
            if args.once and not any("new" in w or "settling" in w for w in waiting):
                if waiting:
                    watcher.say(f"--once: not complete, left for a later watch: {', '.join(waiting)}")
                break
            if args.idle_exit is not None and time.monotonic() - last_new >= args.idle_exit:
                watcher.say(f"no new checkpoint for {args.idle_exit:g} s: exiting")
                break
            time.sleep(args.poll)
    count = watcher.evaluated
    watcher.say(f"{count or 'no'} checkpoint{'' if count == 1 else 's'} evaluated in this session")
    return 1 if watcher.failed else 0


def _weights(path: Path) -> list[Path]:
    """The weight files of a checkpoint (a ``.gguf`` file itself, or those in its folder); [] when gone."""
    try:
        if path.is_file():
            return [path]
        return [p for p in path.iterdir() if p.suffix in (".gguf", ".safetensors", ".bin")]
    except OSError:
        return []
