"""--ray: llama.cpp replicas of the embedded model as Ray actors on a local cluster of two simulated nodes
(ray.cluster_utils.Cluster, 1 CPU each, on 127.0.0.1 only): both nodes answer, a replica killed mid-run
leaves the run complete with nothing lost or stored twice, and a request the cluster cannot hold fails
within seconds, naming what is missing, and writes nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import SHARED_DATA, run_cli, start_cli, wait_for_lines

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
# loopback only: Ray binds its node to 127.0.0.1 instead of the machine's outward address
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    os.environ.update(ENV)
    import ray
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 1})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    assert nodes.address.startswith("127.0.0.1:"), nodes.address
    try:
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_both_nodes_answer(cluster: Any, tmp_path: Path) -> None:
    result = run_cli(
        *("--ray", cluster.address, "--data-parallel-size", "2", "--threads", "1", "--limit", "8"),
        *("--max-tokens", "16", "--quiet"),
        cwd=tmp_path,
        env=ENV,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    report = next(line for line in result.stderr.splitlines() if line.startswith("mue-eval: ray:"))
    replicas = dict(re.findall(r"node (\w+)\) answered (\d+)", report))
    assert len(replicas) == 2 and all(int(n) > 0 for n in replicas.values()), report  # two nodes, both answered
    gens = _lines(tmp_path / "results" / "smollm2-135m-instruct" / "demo" / "generations.jsonl")
    keys = [(g["sample_id"], g["n_index"]) for g in gens]
    assert len(keys) == len(set(keys)) == 8 and all(g["error"] is None for g in gens)
    manifest = json.loads((tmp_path / "results/smollm2-135m-instruct/demo/manifest.json").read_text())
    assert manifest["backend"] == "ray" and manifest["backend_config"]["replicas"] == 2


def test_a_killed_replica_loses_nothing(cluster: Any, tmp_path: Path) -> None:
    import ray

    run = start_cli(
        *("--ray", cluster.address, "--data-parallel-size", "2", "--threads", "1", "--limit", "14"),
        *("--max-tokens", "48", "--quiet"),
        cwd=tmp_path,
        env=ENV,
    )
    gens = tmp_path / "results" / "smollm2-135m-instruct" / "demo" / "generations.jsonl"
    wait_for_lines(gens, 2, run, timeout=120)
    ray.kill(ray.get_actor("mue-replica-1", namespace="mathusereval"))
    _, stderr = run.communicate(timeout=240)
    assert run.returncode == 0, stderr
    assert "replica 1 died" in stderr
    keys = [(g["sample_id"], g["n_index"]) for g in _lines(gens)]
    assert len(keys) == len(set(keys)) == 14  # every item once: nothing lost, nothing stored twice


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data-parallel-size", "3", "--threads", "1"], "3 replicas of 1 CPU each do not fit; the cluster holds 2"),
        (["--data-parallel-size", "1", "--threads", "2"], "no node can hold one replica (2 CPU)"),
    ],
)
def test_an_impossible_request_fails_fast(cluster: Any, tmp_path: Path, extra: list[str], message: str) -> None:
    start = time.monotonic()
    result = run_cli("--ray", cluster.address, *extra, "--limit", "2", "--quiet", cwd=tmp_path, env=ENV, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert time.monotonic() - start < 60
    assert not (tmp_path / "results").exists()


def test_ray_local_starts_its_own_instance(tmp_path: Path) -> None:
    result = run_cli(
        *("--ray", "local", "--data-parallel-size", "2", "--threads", "1", "--limit", "4", "--max-tokens", "8"),
        "--quiet",
        cwd=tmp_path,
        env=ENV,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert "mue-eval: ray: replica 0" in result.stderr


LONG_PROMPT_TASK = """
import mathusereval as mue

def load(data_dir):
    huge = "Add these: " + "1 + " * 3000 + "1."
    prompts = [("short-1", "What is 2 + 2?"), ("huge", huge), ("short-2", "What is 3 + 3?")]
    return mue.LoadedData([mue.Sample("long-prompt", i, mue.user_turn(p), "4") for i, p in prompts], "2" * 64, "inline")

mue.register("tasks", "long-prompt", mue.Task("long-prompt", "1", load, ("answer",), mue.accuracy))
"""


def test_an_over_long_prompt_fails_only_its_item(cluster: Any, tmp_path: Path) -> None:
    (tmp_path / "task.py").write_text(LONG_PROMPT_TASK)
    result = run_cli(
        *("--include", "task.py", "--tasks", "long-prompt", "--ray", cluster.address, "--data-parallel-size", "2"),
        *("--threads", "1", "--n-ctx", "512", "--max-tokens", "8", "--quiet"),
        cwd=tmp_path,
        env=ENV,
        timeout=240,
    )
    assert result.returncode == 1, result.stderr  # done, one item failed: a rerun would retry it
    gens = {g["sample_id"]: g for g in _lines(tmp_path / "results/smollm2-135m-instruct/long-prompt/generations.jsonl")}
    assert gens["huge"]["error"] and gens["short-1"]["error"] is None and gens["short-2"]["error"] is None


SIMULATED = Path(__file__).resolve().parents[1] / "benchmarks" / "plugins" / "simulated_engine.py"


def _simulated() -> Any:
    from mathusereval.plugins.include import module_of

    return module_of(SIMULATED)


def _simulated_run(cluster: Any, engine: str, limit: int, *extra: str) -> list[str]:
    return [
        *("--include", str(SIMULATED), "--backend", "simulated", "--model", engine, "--tasks", "gsm8k"),
        *("--ray", cluster.address, "--data-parallel-size", "2", "--ray-cpus-per-replica", "1"),
        *("--limit", str(limit), "--data-dir", str(SHARED_DATA), "--quiet", *extra),
    ]


def test_replicas_are_kept_full(cluster: Any, tmp_path: Path) -> None:
    """A continuous-batching engine (16 slots, 10 % of requests ten times longer) as a plugin backend on two
    nodes: the span from the first request an engine saw to the last answer stored stays near the best
    schedule of the same service times (batch-at-a-time scored ~0.23 here; the benchmark holds the 0.9 goal)."""
    sim = _simulated()
    engine = "slots=16:short=0.05"
    result = run_cli(*_simulated_run(cluster, engine, 400, "--samples", "2"), cwd=tmp_path, env=ENV, timeout=240)
    assert result.returncode == 0, result.stderr
    gens = next((tmp_path / "results").glob("*/gsm8k/generations.jsonl"))
    answers = _lines(gens)
    assert len({(a["sample_id"], a["n_index"]) for a in answers}) == len(answers) == 800
    workload = sim.Workload.parse(engine)
    ideal = sim.best_span([workload.service_time(a["sample_id"], a["n_index"]) for a in answers], 32)
    span = gens.stat().st_mtime - min(sim.arrival(a["text"]) for a in answers)
    assert ideal / span >= 0.7, (ideal, span)
    report = next(line for line in result.stderr.splitlines() if line.startswith("mue-eval: ray:"))
    assert all(int(n) > 200 for n in re.findall(r"answered (\d+)", report)), report  # both replicas did a share


def test_a_hung_replica_is_given_up_and_its_requests_go_to_the_other(cluster: Any, tmp_path: Path) -> None:
    import signal

    import ray

    run = start_cli(*_simulated_run(cluster, "slots=4:short=0.1", 80, "--replica-timeout", "3"), cwd=tmp_path, env=ENV)
    gens = tmp_path / "results" / "slots_4_short_0.1" / "gsm8k" / "generations.jsonl"
    wait_for_lines(gens, 4, run, timeout=120)
    _, _, pid = ray.get(ray.get_actor("mue-replica-1", namespace="mathusereval").info.remote(), timeout=30)
    os.kill(pid, signal.SIGSTOP)  # stopped, not dead: only the timeout can tell
    try:
        _, stderr = run.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert run.returncode == 0, stderr
    assert "replica 1 answered nothing for 3 s (--replica-timeout)" in stderr, stderr
    keys = [(g["sample_id"], g["n_index"]) for g in _lines(gens)]
    assert len(keys) == len(set(keys)) == 80 and all(g["error"] is None for g in _lines(gens))


def test_sigterm_stops_a_ray_run_in_one_line(cluster: Any, tmp_path: Path) -> None:
    import signal

    run = start_cli(*_simulated_run(cluster, "slots=4:short=0.2", 200), cwd=tmp_path, env=ENV)
    gens = tmp_path / "results" / "slots_4_short_0.2" / "gsm8k" / "generations.jsonl"
    wait_for_lines(gens, 3, run, timeout=120)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted; finished work is saved" in stderr, stderr
    kept = len(_lines(gens))
    again = run_cli(*_simulated_run(cluster, "slots=4:short=0.2", 200), cwd=tmp_path, env=ENV, timeout=240)
    assert again.returncode == 0, again.stderr
    keys = [(g["sample_id"], g["n_index"]) for g in _lines(gens)]
    assert 3 <= kept < 200 and len(keys) == len(set(keys)) == 200  # resumed where it stopped, nothing twice


TIR_COPY = Path(__file__).resolve().parent / "tir_copy_task.py"


def _copy_tokens() -> int:
    """The copied program's token count under the embedded model's vocabulary (what its reply is cut at)."""
    from llama_cpp import Llama

    from mathusereval.backends import ModelSpec
    from mathusereval.backends.llamacpp import LlamaCppBackend

    from .tir_copy_task import BLOCK

    path = LlamaCppBackend(ModelSpec.of("llamacpp", "smollm2-135m-instruct")).path
    vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        return len(vocab.tokenize(BLOCK.encode(), add_bos=False))
    finally:
        vocab.close()


def test_a_tool_integrated_chain_runs_on_ray_replicas(cluster: Any, tmp_path: Path) -> None:
    """Continuations are new requests through the replicas: the copied program runs in the driver's sandbox,
    its output is appended, and a replica continues the reply (issue 33: Ray is one of the chain's backends)."""
    result = run_cli(
        *("--include", str(TIR_COPY), "--tasks", "tir-copy", "--samples", "2"),
        *("--ray", cluster.address, "--data-parallel-size", "2", "--threads", "1"),
        *("--max-tokens", str(_copy_tokens()), "--quiet"),
        cwd=tmp_path,
        env=ENV,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "results" / "smollm2-135m-instruct" / "tir-copy"
    gens = _lines(run / "generations.jsonl")
    assert sorted(g["n_index"] for g in gens) == [0, 1]
    from .tir_copy_task import BLOCK

    for gen in gens:
        steps = gen["steps"]
        assert len(steps) == 2 and steps[0]["text"] == BLOCK and steps[0]["output"] == "42", steps
        assert steps[1]["code"] is None and gen["text"].startswith(f"{BLOCK}\n```output\n42\n```\n")
    stored = _lines(run / "steps.jsonl")
    assert sorted(r["n_index"] for r in stored) == [0, 1]
    # both requests of each chain counted: the continuation's prompt holds the first reply and its output
    assert all(
        g["usage"]["prompt_tokens"] > 2 * r["usage"]["prompt_tokens"]
        for g, r in zip(
            sorted(gens, key=lambda g: g["n_index"]), sorted(stored, key=lambda r: r["n_index"]), strict=True
        )
    )
