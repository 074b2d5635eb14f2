"""How a run is asked for: representative subsets, a config file equal to the command line, generation
options users expect, machine-readable outputs, experiment trackers and what the logs show."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mathusereval.plugins import registry
from mathusereval.run.selection import select_samples, stratum

from .conftest import run_cli
from .fault_server import FaultServer
from .loopback import JsonHandler, LoopbackServer


@pytest.mark.parametrize("task", ["alignbench", "mathusereval"])
def test_limit_spreads_over_the_categories_nested_and_the_same_every_time(shared_data: Path, task: str) -> None:
    t = registry.lookup("tasks", task)
    loaded = t.load(shared_data)
    strata = Counter(stratum(s) for s in loaded.samples)
    few = select_samples(t, loaded, 5)
    assert len(few) == 5 and len({stratum(s) for s in few}) == 5  # five groups, not the file's first category
    every = select_samples(t, loaded, len(strata))
    assert {stratum(s) for s in every} == set(strata)  # one item of each group while N allows
    small, large = select_samples(t, loaded, 40), select_samples(t, loaded, 120)
    assert {s.id for s in small} <= {s.id for s in large}  # raising --limit resumes
    assert [s.id for s in select_samples(t, loaded, 40)] == [s.id for s in small]  # deterministic
    counts = Counter(stratum(s) for s in large)
    for group, size in strata.items():  # proportional within the rounding, once every group has one
        assert abs(counts[group] - 120 * size / len(loaded.samples)) <= 2, (group, counts[group], size)
    first = select_samples(t, loaded, 5, order="file")
    assert [s.id for s in first] == [s.id for s in loaded.samples[:5]]


def test_limit_and_sample_ids_from_the_command_line(tmp_path: Path, shared_data: Path) -> None:
    with FaultServer() as server:
        base = ["--base-url", server.url, "--model", "m", "--data-dir", str(shared_data), "--quiet"]
        spread = run_cli(*base, "--tasks", "alignbench", "--limit", "5", "--judge", "m", "--judge-base-url",
                         server.url, "--out", "a", cwd=tmp_path)  # fmt: skip
        assert spread.returncode in (0, 1), spread.stderr
        rows = (tmp_path / "a/m/alignbench/samples.jsonl").read_text().splitlines()
        assert len({json.loads(r)["metadata"]["category"] for r in rows}) == 5
        (tmp_path / "ids.txt").write_text("# two items\ntest-0003\n\ntest-0001\n")
        picked = run_cli(*base, "--tasks", "gsm8k", "--sample-ids", "ids.txt", "--out", "b", cwd=tmp_path)
        assert picked.returncode == 0, picked.stderr
        ids = [json.loads(r)["id"] for r in (tmp_path / "b/m/gsm8k/samples.jsonl").read_text().splitlines()]
        assert ids == ["test-0001", "test-0003"]
        (tmp_path / "bad.txt").write_text("test-0001\nno-such-item\n")
        bad = run_cli(*base, "--tasks", "gsm8k", "--sample-ids", "bad.txt", "--out", "c", cwd=tmp_path)
        assert bad.returncode == 2 and "no-such-item" in bad.stderr and not (tmp_path / "c").exists()


def test_a_config_file_run_equals_the_same_command_line_run(tmp_path: Path) -> None:
    with FaultServer() as server:
        (tmp_path / "run.toml").write_text(
            f'base_url = "{server.url}"\nmodel = "m"\nlimit = 3\nquiet = true\ntemperature = 0.2\n'
            'out = "from-file"\n[tasks.demo]\nmax_tokens = 99\n'
        )
        from_file = run_cli("--config", "run.toml", cwd=tmp_path)
        assert from_file.returncode == 0, from_file.stderr
        flags = ["--base-url", server.url, "--model", "m", "--limit", "3", "--quiet", "--temperature", "0.2"]
        from_flags = run_cli(*flags, "--tasks", "demo", "--max-tokens", "99", "--out", "from-flags", cwd=tmp_path)
        assert from_flags.returncode == 0, from_flags.stderr
        override = run_cli("--config", "run.toml", "--limit", "2", "--out", "override", cwd=tmp_path)
        assert override.returncode == 0, override.stderr
        (tmp_path / "typo.toml").write_text('modle = "m"\n')
        typo = run_cli("--config", "typo.toml", cwd=tmp_path)
    a = json.loads((tmp_path / "from-file/m/demo/manifest.json").read_text())
    b = json.loads((tmp_path / "from-flags/m/demo/manifest.json").read_text())
    assert a["fingerprint"] == b["fingerprint"] and a["params"]["max_tokens"] == 99
    assert a["config"]["config"] == "run.toml" and a["config"]["task_overrides"] == {"demo": {"max_tokens": 99}}
    texts = [(tmp_path / d / "m/demo/generations.jsonl").read_text() for d in ("from-file", "from-flags")]
    assert [json.loads(x)["text"] for x in texts[0].splitlines()] == [
        json.loads(x)["text"] for x in texts[1].splitlines()
    ]
    assert len((tmp_path / "override/m/demo/samples.jsonl").read_text().splitlines()) == 2  # the flag wins
    assert typo.returncode == 2 and "typo.toml: modle is not an option of mue-eval run" in typo.stderr


def test_generation_options_reach_the_server_and_are_part_of_the_identity(tmp_path: Path) -> None:
    with FaultServer() as server:
        base = ["--base-url", server.url, "--model", "m", "--limit", "1", "--quiet"]
        (tmp_path / "system.txt").write_text("You are terse.")
        first = run_cli(*base, "--top-k", "20", "--min-p", "0.05", "--repetition-penalty", "1.1",
                        "--extra-body", '{"chat_template_kwargs": {"enable_thinking": false}}',
                        "--system-prompt", "@system.txt", cwd=tmp_path)  # fmt: skip
        assert first.returncode == 0, first.stderr
        body = server.bodies[-1]
        assert body["top_k"] == 20 and body["min_p"] == 0.05 and body["repetition_penalty"] == 1.1
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        again = run_cli(*base, "--top-k", "40", "--min-p", "0.05", "--repetition-penalty", "1.1",
                        "--extra-body", '{"chat_template_kwargs": {"enable_thinking": false}}',
                        "--system-prompt", "@system.txt", cwd=tmp_path)  # fmt: skip
        assert again.returncode == 2 and "params.top_k: 20 -> 40" in again.stderr
        # A served model's chat turns use the server's template: --chat-template renders only the continued
        # replies of <task>-tir chains, so on gsm8k it is taken (and recorded) with a warning.
        template = run_cli(*base, "--chat-template", "system.txt", "--name", "templated", cwd=tmp_path)
        assert template.returncode == 0, template.stderr
        assert "renders continued replies of <task>-tir tasks only" in template.stderr


def test_version_and_the_tasks_table(tmp_path: Path, shared_data: Path) -> None:
    version = run_cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("mathusereval ")
    tasks = run_cli("tasks", "--data-dir", str(shared_data), cwd=tmp_path)
    assert tasks.returncode == 0
    line = next(x for x in tasks.stdout.splitlines() if x.startswith("│ gsm8k "))
    assert "answer" in line and "temperature 0, top_p 1, max_tokens 1024" in line
    align = next(x for x in tasks.stdout.splitlines() if x.startswith("│ alignbench "))
    assert "alignbench-judge" in align and "temperature per category" in tasks.stdout


class NoV1(JsonHandler):
    """Serves /v1/models only, and refuses every completion: a server reached at the wrong path."""

    def do_GET(self) -> None:
        self.send_json(404 if self.path == "/models" else 200, b'{"data": [{"id": "served-name"}]}')

    def do_POST(self) -> None:
        self.send_json(400, b'{"error": {"message": "no such route"}}')


def test_a_base_url_without_v1_is_caught_with_a_hint(tmp_path: Path) -> None:
    with LoopbackServer(NoV1, path="") as server:
        result = run_cli("--base-url", server.url, "--model", "m", "--limit", "1", "--quiet", cwd=tmp_path)
        assert result.returncode == 2 and f"try --base-url {server.url}/v1" in result.stderr
        assert not (tmp_path / "results").exists()
        failing = run_cli("--base-url", f"{server.url}/v1", "--model", "m", "--limit", "3", "--quiet", cwd=tmp_path)
    assert failing.returncode == 1
    assert failing.stderr.count("an answer failed: HTTP 400: no such route") == 1  # the first of its kind, once
    summary = json.loads((tmp_path / "results/m/demo/summary.json").read_text(), parse_constant=pytest.fail)
    headline = summary["metrics"][0]
    assert headline["value"] is None and headline["n"] == 0 and headline["reason"] == "no scored answers"
    manifest = json.loads((tmp_path / "results/m/demo/manifest.json").read_text())
    assert manifest["backend_config"]["served_models"] == ["served-name"]


def test_progress_is_plain_lines_in_logs(tmp_path: Path) -> None:
    with FaultServer() as server:
        result = run_cli("--base-url", server.url, "--model", "a-model-name-" + "x" * 70, "--limit", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [x for x in result.stderr.splitlines() if x.startswith("mue-eval: progress:")]
    assert lines and lines[-1].endswith("done") and "4/4 (100%)" in lines[-1] and "/s" in lines[-1]
    assert "x" * 70 + "/demo generate" in "\n".join(lines)  # the name is not cut at 80 columns


def test_metrics_go_to_tensorboard_and_wandb_offline(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with FaultServer() as server:
        result = run_cli("--base-url", server.url, "--model", "ckpt-300", "--limit", "2", "--quiet",
                         "--log-to", "tensorboard", "--log-to", "wandb", cwd=tmp_path,
                         env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "results/ckpt-300/demo/summary.json").read_text())
    accuracy = summary["metrics"][0]["value"]
    events = EventAccumulator(str(tmp_path / "results/tensorboard/ckpt-300"))
    events.Reload()
    [scalar] = events.Scalars("demo/accuracy")
    assert scalar.step == 300 and scalar.value == pytest.approx(accuracy)
    runs = list((tmp_path / "results/wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    from wandb.proto import wandb_internal_pb2

    logged: dict[str, float] = {}
    for data in wandb_records(runs[0].read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            # "demo/accuracy" is stored as the nested key ["demo", "accuracy"]
            logged.update(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
    assert logged["demo/accuracy"] == pytest.approx(accuracy) and logged["checkpoint_step"] == 300


def wandb_records(raw: bytes) -> list[bytes]:
    """The records of a W&B run file: a 7-byte header (":W&B", magic, version), then LevelDB log blocks of
    32 KiB whose records are checksum (4 bytes), length (2, little-endian), type (1: full, 2-4: first, middle,
    last) and the data (wandb's former sdk/internal/datastore.py, now in its Go core)."""
    assert raw[:4] == b":W&B"
    records, pending, offset, block = [], b"", 7, 32768
    while offset + 7 <= len(raw):
        if block - offset % block < 7:  # a block's tail too short for a header is padding
            offset += block - offset % block
            continue
        length, kind = int.from_bytes(raw[offset + 4 : offset + 6], "little"), raw[offset + 6]
        data, offset = raw[offset + 7 : offset + 7 + length], offset + 7 + length
        if kind == 0 and length == 0:
            break
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            records.append(pending)
    return records
