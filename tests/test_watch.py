"""``mue-eval watch``: a directory a "trainer" (this test) writes checkpoints into while the watcher runs: copies
of the embedded model, one written slowly in parts, one deleted while it is evaluated, the watcher killed
mid-checkpoint and restarted; and the pieces it is built from (completeness, steps, its state file)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mathusereval.backends.base import embedded_gguf_path
from mathusereval.watch.checkpoints import Checkpoint, Settling, find_checkpoints
from mathusereval.watch.state import WatchState

from .conftest import MUE_EVAL, cli_env

SWEEP = """\
# the sweep's settings, per task as a sweep config gives them
limit = 3
quiet = true
[tasks.demo]
max_tokens = 24
"""


def copy_slowly(source: Path, target: Path, parts: int, pause: float) -> None:
    """Write `target` in `parts` appends with pauses: a trainer still writing the file."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    step = len(data) // parts + 1
    with target.open("wb") as fh:
        for k in range(parts):
            fh.write(data[k * step : (k + 1) * step])
            fh.flush()
            time.sleep(pause)


def wait_for(log: Path, text: str, proc: subprocess.Popen[str], timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while True:
        seen = log.read_text(encoding="utf-8") if log.exists() else ""
        if text in seen:
            return seen
        assert proc.poll() is None or text in log.read_text(encoding="utf-8"), f"watcher ended before {text!r}:\n{seen}"
        assert time.monotonic() < deadline, f"{text!r} not in the log within {timeout} s:\n{seen}"
        time.sleep(0.05)


def start_watch(tmp_path: Path, log: Path, *extra: str) -> subprocess.Popen[str]:
    """The watcher in the background, its stderr (the log a Slurm job keeps) in `log`."""
    args = [str(MUE_EVAL), "watch", "ckpts", "--config", "sweep.toml", "--settle", "1.5", "--poll", "0.2",
            "--board", "board", "--log-to", "tensorboard", *extra]  # fmt: skip
    with log.open("w") as fh:
        return subprocess.Popen(args, cwd=tmp_path, env=cli_env(tmp_path), stdout=fh, stderr=subprocess.STDOUT,
                                text=True, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.slow
def test_the_watcher_follows_a_training_run_through_deletion_and_a_restart(tmp_path: Path) -> None:
    model = embedded_gguf_path()
    (tmp_path / "sweep.toml").write_text(SWEEP)
    (tmp_path / "ckpts" / "checkpoint-100").mkdir(parents=True)
    shutil.copyfile(model, tmp_path / "ckpts" / "checkpoint-100" / "model.gguf")
    first_log = tmp_path / "watch-1.log"
    watcher = start_watch(tmp_path, first_log)
    try:
        wait_for(first_log, "leaderboard updated", watcher)  # checkpoint-100 done: the watcher is looking
        # written in 8 parts 0.4 s apart: incomplete for about 3 s, longer than the settle time of 1.5 s
        copy_slowly(model, tmp_path / "ckpts" / "checkpoint-200" / "model.gguf", parts=8, pause=0.4)
        wait_for(first_log, "checkpoint-200 done", watcher)
        (tmp_path / "ckpts" / "checkpoint-300").mkdir()
        shutil.copyfile(model, tmp_path / "ckpts" / "checkpoint-300" / "model.gguf")
        wait_for(first_log, "evaluating checkpoint-300", watcher)
        shutil.rmtree(tmp_path / "ckpts" / "checkpoint-300")  # the trainer's save_total_limit rotates it away
        # deleted before llama.cpp read it (the usual case: 'deleted'), or after (a loaded model finishes: 'done';
        # under load the model can be read before this test sees the log line); both are pinned deterministically
        # by the next test
        seen = wait_for(first_log, "checkpoint-300 was deleted", watcher)
        rotated_first = "while it was evaluated" in seen
        (tmp_path / "ckpts" / "checkpoint-400").mkdir()
        shutil.copyfile(model, tmp_path / "ckpts" / "checkpoint-400" / "model.gguf")
        wait_for(first_log, "evaluating checkpoint-400", watcher)
        answers = tmp_path / "results" / "checkpoint-400-model" / "demo" / "generations.jsonl"
        deadline = time.monotonic() + 120
        while not (answers.exists() and answers.read_text().count("\n") >= 1):
            assert time.monotonic() < deadline and watcher.poll() is None, first_log.read_text()
            time.sleep(0.05)
        watcher.send_signal(signal.SIGTERM)  # the job is preempted mid-checkpoint
        assert watcher.wait(timeout=60) == 130, first_log.read_text()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    first = first_log.read_text(encoding="utf-8")
    assert "checkpoint-200: not complete yet (being written)" in first, first
    assert "Traceback" not in first and first.count("checkpoint-300 was deleted") == 1
    state = json.loads(next((tmp_path / "results" / ".mue-watch").glob("*.json")).read_text())["checkpoints"]
    assert {Path(k).name: v["status"] for k, v in state.items()} == {
        "checkpoint-100": "done", "checkpoint-200": "done", "checkpoint-300": "deleted" if rotated_first else "done",
        "checkpoint-400": "running",
    }  # fmt: skip
    # the slowly written checkpoint was evaluated only once whole: its run records the full file
    weights = json.loads((tmp_path / "results/checkpoint-200-model/demo/manifest.json").read_text())["settings"]
    assert f"{model.stat().st_size} bytes" in weights["backend.weights"]

    second_log = tmp_path / "watch-2.log"
    restarted = start_watch(tmp_path, second_log, "--once")
    assert restarted.wait(timeout=300) == 0, second_log.read_text()
    second = second_log.read_text(encoding="utf-8")
    assert "checkpoint-100: evaluated before, skipped" in second and "checkpoint-200: evaluated before" in second
    assert "checkpoint-400: resuming" in second and "checkpoint-300" not in second, second
    resumed = [line for line in second.splitlines() if line.startswith("checkpoint-400-model/demo:")]
    assert resumed and "(0 reused)" not in resumed[0], second  # the answers stored before the kill were reused
    board = (tmp_path / "board" / "sweeps" / "demo.md").read_text(encoding="utf-8")
    steps = [line.split(" | ")[1] for line in board.splitlines() if line.startswith("| checkpoint-")]
    evaluated = [100, 200, 400] if rotated_first else [100, 200, 300, 400]
    assert steps == [str(s) for s in evaluated], board
    assert (tmp_path / "board" / "plots" / "sweep-demo.png").read_bytes()[:4] == b"\x89PNG"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps_logged = []
    for logdir in sorted((tmp_path / "results" / "tensorboard").iterdir()):
        events = EventAccumulator(str(logdir))
        events.Reload()
        steps_logged += [e.step for e in events.Scalars("demo/accuracy")]
    assert sorted(steps_logged) == evaluated  # each checkpoint's metrics at its step
    print(first, second, sep="\n--- restarted with --once ---\n")  # the report quotes this log


@pytest.mark.slow
def test_a_checkpoint_is_deleted_only_when_its_evaluation_failed_for_want_of_its_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The two orders of a rotation, pinned: the folder gone before the engine read the weights ('deleted',
    not tried again), and gone after (the loaded model finished: 'done', its results on the board)."""
    from mathusereval.cli import run as run_command
    from mathusereval.cli import watch

    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.toml").write_text(SWEEP)
    for step in (300, 500):
        (tmp_path / "ckpts" / f"checkpoint-{step}").mkdir(parents=True)
        shutil.copyfile(embedded_gguf_path(), tmp_path / "ckpts" / f"checkpoint-{step}" / "model.gguf")
    args = watch.parse(["ckpts", "--config", "sweep.toml", "--settle", "0"])
    invocation = run_command.Invocation.of(args)
    state = WatchState.load(invocation.run_options.out, args.watched)
    watcher = watch.Watcher(args, invocation, state, Settling(0, None), track=lambda results: None)
    first, second = sorted(find_checkpoints("ckpts"), key=lambda c: c.name)

    shutil.rmtree(first.path)  # rotated away between the look and the load
    assert watcher.evaluate(first, None, "") == 0
    assert state.get(first.path)["status"] == "deleted" and "no such file" in state.get(first.path)["error"]

    evaluate = invocation.evaluate

    def read_then_rotated(*a: object, **k: object) -> object:
        results = evaluate(*a, **k)
        shutil.rmtree(second.path)  # the trainer rotates it after llama.cpp loaded it
        return results

    monkeypatch.setattr(invocation, "evaluate", read_then_rotated)
    assert watcher.evaluate(second, None, "") == 1
    assert state.get(second.path)["status"] == "done"
    log = capsys.readouterr().err
    assert "checkpoint-300 was deleted while it was evaluated" in log
    assert "checkpoint-500 was deleted after its weights were read; its evaluation is complete" in log
    assert (tmp_path / "results" / "checkpoint-500-model" / "demo" / "summary.json").is_file()


def _write(path: Path, data: bytes = b"x" * 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_sharded_folder_is_complete_once_every_indexed_shard_is_there_and_settled(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-500"
    _write(folder / "config.json", b"{}")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    _write(folder / "model.safetensors.index.json", json.dumps(index).encode())
    _write(folder / "model-00001-of-00002.safetensors")
    settling = Settling(settle=5)
    checkpoint = Checkpoint(folder)
    assert settling.complete(checkpoint, now=0) == (False, "shards missing: model-00002-of-00002.safetensors")
    _write(folder / "model-00002-of-00002.safetensors")
    for name in ("config.json", "model.safetensors.index.json", *index["weight_map"].values()):
        os.utime(folder / name, (time.time(), time.time()))  # just written
    assert settling.complete(checkpoint, now=0) == (False, "new")
    assert settling.complete(checkpoint, now=2)[0] is False  # settling
    assert settling.complete(checkpoint, now=6) == (True, "")
    _write(folder / "model-00002-of-00002.safetensors", b"y" * 128)  # rewritten: settles again
    assert settling.complete(checkpoint, now=7) == (False, "being written")


def test_a_ready_file_decides_and_the_trainer_state_gives_the_step(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "checkpoint-latest"
    _write(folder / "model.safetensors")
    _write(folder / "config.json", b"{}")
    settling = Settling(settle=3600, ready_file="trainer_state.json")
    assert settling.complete(Checkpoint(folder)) == (False, "no trainer_state.json yet")
    _write(folder / "trainer_state.json", json.dumps({"global_step": 1250}).encode())
    assert settling.complete(Checkpoint(folder)) == (True, "")
    assert Checkpoint(folder).step() == 1250  # the trainer's step, not a number in the name
    _write(tmp_path / "run" / "ckpt-300.gguf")
    (tmp_path / "run" / "logs").mkdir()  # no weights: not a checkpoint
    assert [c.name for c in find_checkpoints(str(tmp_path / "run"))] == ["checkpoint-latest", "ckpt-300.gguf"]
    assert [c.step() for c in find_checkpoints(str(tmp_path / "run" / "ckpt-*"))] == [300]


def test_an_unreadable_state_file_is_set_aside_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = WatchState.location(tmp_path, "ckpts")
    _write(path, b'{"checkpoints": [1, 2]')
    state = WatchState.load(tmp_path, "ckpts")
    assert state.entries == {} and path.with_suffix(".unreadable").exists() and not path.exists()
    assert "cannot be read" in capsys.readouterr().err
    state.set(tmp_path / "ckpts" / "a", "done", weights="w")
    assert WatchState.load(tmp_path, "ckpts").get(tmp_path / "ckpts" / "a")["status"] == "done"
