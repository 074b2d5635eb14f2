"""Records round-trip through JSON; the registry finds built-ins and third-party entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mathusereval
from mathusereval.errors import ConfigError
from mathusereval.plugins import registry
from mathusereval.records import Generation, GenerationParams, Grade, MetricValue, Sample, Usage


def test_public_api_is_sorted_and_complete() -> None:
    assert mathusereval.__all__ == sorted(mathusereval.__all__)
    assert all(hasattr(mathusereval, name) for name in mathusereval.__all__)


@pytest.mark.parametrize(
    "record",
    [
        Sample(task="t", id="1", messages=({"role": "user", "content": "2+2?"},), reference="4", metadata={"k": 1}),
        Generation(sample_id="1", n_index=2, model="m", text="4", finish_reason="stop", usage=Usage(3, 4)),
        Generation(sample_id="1", n_index=0, model="m", error="HTTP 500"),
        Grade(sample_id="1", n_index=0, grader="answer", score=1.0, correct=True, details={"reason": "numeric"}),
        GenerationParams(temperature=0.7, stop=("</s>",), n=4),
        MetricValue(name="accuracy", value=0.5, n=10, stderr=0.1),
    ],
)
def test_records_round_trip(record: object) -> None:
    cls = type(record)
    assert cls.from_json(record.to_json()) == record  # type: ignore[attr-defined]


def test_unknown_keys_are_ignored_when_reading() -> None:
    data = {**Grade(sample_id="1", n_index=0, grader="g", score=None).to_json(), "future_field": 1}
    assert Grade.from_json(data).sample_id == "1"


def test_builtins_are_registered() -> None:
    assert {"demo", "gsm8k", "math", "math500"} <= set(registry.names("tasks"))
    assert {"llamacpp", "openai", "vllm"} <= set(registry.names("backends"))
    assert "answer" in registry.names("graders")


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'nope' \(known: .*gsm8k"):
        registry.lookup("tasks", "nope")


def test_third_party_entry_point_is_found(tmp_path: Path) -> None:
    """A real installed distribution (dist-info on sys.path) contributes a task through its entry point."""
    (tmp_path / "mue_plugin_demo.py").write_text(
        textwrap.dedent("""
        import dataclasses
        from mathusereval.tasks.demo import TASK
        PLUGIN_TASK = dataclasses.replace(TASK, name="plugin-demo", description="from a plugin")
    """)
    )
    dist = tmp_path / "mue_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mue-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mathusereval.tasks]\nplugin-demo = mue_plugin_demo:PLUGIN_TASK\n")
    code = (
        "from mathusereval.plugins import registry; t = registry.lookup('tasks', 'plugin-demo'); "
        "print(t.name, t.description, 'plugin-demo' in registry.names('tasks'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path)},
        check=True,
    )
    assert out.stdout.strip() == "plugin-demo from a plugin True"
