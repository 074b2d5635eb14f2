"""The plugin API as a third party uses it: the public surface, contracts checked at registration, grades
filed under the registered name, --include files, the prompt fingerprint, one post-processing layer, and
the AIME 2024 / AMC 2023 tasks written with the public API alone."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import mathusereval
from mathusereval.errors import ConfigError, DataError
from mathusereval.plugins import registry
from mathusereval.records import Generation
from mathusereval.run.postprocess import finalize

from .conftest import REPO, run_cli
from .hostile_server import HostileServer
from .judge_server import ScriptedServer

PUBLIC = [
    "BOXED_COT", "Backend", "BackendFactory", "BackendUnavailable", "ConfigError", "DataError", "Generation",
    "GenerationParams", "Grade", "JudgeGrader", "LoadedData", "Loader", "Message", "MetricValue", "MueError",
    "Renderer", "Request", "RuleGrader", "RunManifest", "RunResult", "Sample", "Settled", "Task", "TaskGroup", "Usage",
    "__version__", "accuracy", "boxed_answer", "grouped_means", "jsonl_loader", "judge_grader", "lm_eval_task_dir",
    "lookup", "mean_with_stderr", "names", "per_sample_scores", "pinned_rows", "pinned_source",
    "prompt_fingerprint", "register", "rule_grader", "user_turn",
]  # fmt: skip


def test_the_public_surface_is_pinned() -> None:
    assert sorted(mathusereval.__all__) == sorted(PUBLIC)
    assert all(hasattr(mathusereval, name) for name in PUBLIC)


# the exact silent failure reported: a grader registered as "aime-int" whose grades say grader="int"
INT_GRADER = """
import re
import mathusereval as mue

def int_grader(sample, generation):
    found = re.findall(r"-?\\d+", generation.text)
    right = bool(found) and found[-1] == sample.reference
    details = {"prediction": found[-1] if found else None}
    return mue.Grade(sample.id, generation.n_index, "int", float(right), right, details)

mue.register("graders", "aime-int", int_grader)
"""


def _grade_lines(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "grades.jsonl").read_text().splitlines()]


def test_a_grader_that_writes_another_name_is_filed_under_its_registered_one(tmp_path: Path) -> None:
    (tmp_path / "plugin.py").write_text(INT_GRADER)
    with HostileServer(["ok"]) as server:  # answers "The answer is \\boxed{7}" to everything
        args = ["--include", "plugin.py", "--base-url", server.url, "--model", "m", "--tasks", "demo"]
        args += ["--graders", "aime-int", "--limit", "6", "--quiet"]
        first = run_cli(*args, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        run = tmp_path / "results" / "m" / "demo"
        grades = _grade_lines(run)
        assert len(grades) == 6 and {g["grader"] for g in grades} == {"aime-int"}
        summary = json.loads((run / "summary.json").read_text())
        accuracy = summary["metrics"][0]
        assert accuracy["n"] == 6 and accuracy["value"] == sum(g["score"] for g in grades) / 6
        again = run_cli(*args, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert len(_grade_lines(run)) == 6  # nothing graded twice


def test_no_gradeable_result_is_said_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        "import mathusereval as mue\n\n"
        "def always_fails(sample, generation):\n    raise ValueError('cannot grade this')\n\n"
        "mue.register('graders', 'always-fails', always_fails)\n"
    )
    with HostileServer(["ok"]) as server:
        result = run_cli(
            *("--include", "broken.py", "--base-url", server.url, "--model", "m", "--tasks", "demo", "--limit", "3"),
            *("--graders", "always-fails", "--quiet"),
            cwd=tmp_path,
        )
    assert result.returncode == 1, result.stderr
    assert "no gradeable result: accuracy has n = 0 (0 graded, 3 grader errors" in result.stderr


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("mue.register('graders', 'half-judge', type('J', (), {'messages': lambda s, a, b: ()})())",
         "grader plugin 'half-judge' (registered by mue_include_bad_"),
        ("mue.register('graders', 'not-callable', 42)", "a rule grader must be callable"),
        ("mue.register('tasks', 'x', 'not a task')", "expected a mathusereval.Task, got str"),
        ("mue.register('tasks', 'other-name', mue.lookup('tasks', 'demo'))", "the Task is named 'demo'"),
        ("mue.register('backends', 'b', None)", "a backend plugin is a factory"),
        ("x = 1\ny = undefined_name", "bad.py:3: NameError: name 'undefined_name' is not defined"),
    ],
)  # fmt: skip
def test_contract_breaches_fail_at_registration_naming_the_plugin(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "bad.py").write_text("import mathusereval as mue\n" + source + "\n")
    result = run_cli("--include", "bad.py", "tasks", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    if "half-judge" in source:
        assert "looks like an LLM judge but lacks" in result.stderr and "parse" in result.stderr


def test_a_backend_that_breaks_its_contract_fails_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "backend.py").write_text(
        "import mathusereval as mue\n\nclass Half:\n    model = 'half'\n\n"
        "mue.register('backends', 'half', lambda spec: Half())\n"
    )
    result = run_cli("--include", "backend.py", "--backend", "half", "--model", "x.gguf", "--quiet", cwd=tmp_path)
    assert result.returncode == 2
    assert "backend plugin 'half'" in result.stderr and "lacks generate, describe, aclose" in result.stderr
    assert not (tmp_path / "results").exists()


THINKING_BACKEND = '''
import mathusereval as mue

class Thinking:
    """Returns raw text with inline reasoning, the way a local engine does."""
    def __init__(self, spec):
        self.model = spec.model
    def describe(self):
        return {"engine": "thinking"}
    async def generate(self, requests, params):
        for r in requests:
            text = "<think>maybe \\\\boxed{9}</think>The answer is \\\\boxed{%s}. STOP here" % r.sample.reference
            yield mue.Generation(r.sample.id, r.n_index, self.model, text=text, finish_reason="eos")
    async def aclose(self):
        pass

mue.register("backends", "thinking", Thinking)
'''


def test_think_stop_and_finish_reasons_are_applied_for_every_backend(tmp_path: Path) -> None:
    (tmp_path / "thinking.py").write_text(THINKING_BACKEND)
    base = ["--include", "thinking.py", "--backend", "thinking", "--model", "t.gguf", "--tasks", "demo"]
    result = run_cli(*base, "--limit", "3", "--stop", "STOP", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    gens = [json.loads(x) for x in (tmp_path / "results" / "t" / "demo" / "generations.jsonl").read_text().splitlines()]
    assert all(g["reasoning"] == "maybe \\boxed{9}" and g["text"].startswith("The answer is") for g in gens)
    assert all(g["text"].endswith(".") and "STOP" not in g["text"] and g["finish_reason"] == "stop" for g in gens)
    assert {g["score"] for g in _grade_lines(tmp_path / "results" / "t" / "demo")} == {1.0}  # not the 9
    kept = run_cli(*base, "--limit", "1", "--think", "keep", "--out", "keep", "--quiet", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    gen = json.loads((tmp_path / "keep" / "t" / "demo" / "generations.jsonl").read_text())
    assert gen["text"].startswith("<think>") and gen["reasoning"] is None


def test_finalize_units() -> None:
    raw = Generation("a", 0, "m", text="<think>x</think> 42", finish_reason="max_tokens")
    assert (finalize(raw).text, finalize(raw).reasoning, finalize(raw).finish_reason) == ("42", "x", "length")
    cut = Generation("a", 0, "m", text="<think>never closed", finish_reason="length")
    assert finalize(cut).text == "" and finalize(cut).reasoning == "never closed"
    failed = Generation("a", 0, "m", error="HTTP 500")
    assert finalize(failed) is failed


def _readme_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(# my_tasks\.py.*?)```", readme, re.DOTALL)
    assert block is not None
    return block.group(1)


def test_the_readme_one_file_task_runs_and_a_prompt_change_is_refused(tmp_path: Path) -> None:
    (tmp_path / "my_tasks.py").write_text(_readme_example())
    with HostileServer(["ok"]) as server:  # every answer is \\boxed{7}: all wrong
        args = ["--include", "my_tasks.py", "--tasks", "tiny-arith", "--base-url", server.url, "--model", "n"]
        first = run_cli(*args, "--quiet", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        summary = json.loads((tmp_path / "results" / "n" / "tiny-arith" / "summary.json").read_text())
        names = {m["name"]: m for m in summary["metrics"]}
        assert names["accuracy"]["value"] == 0.0 and names["accuracy"]["n"] == 3 and "answer/accuracy" in names
        changed = _readme_example().replace("What is 17 + 25?", "Compute 17 + 25.")
        (tmp_path / "my_tasks.py").write_text(changed)
        refused = run_cli(*args, "--quiet", cwd=tmp_path)
    assert refused.returncode == 2 and "prompt_sha256 changed" in refused.stderr, refused.stderr


# --- AIME 2024 / AMC 2023 ---------------------------------------------------------------------------


def _right(prompt: str, k: int) -> bool:
    return int(hashlib.sha256(f"{k}:{prompt}".encode()).hexdigest()[:8], 16) % 3 == 0


@pytest.mark.parametrize(("task", "count"), [("aime24", 30), ("amc23", 40)])
def test_aime_and_amc_scripted_run_gives_exact_avg_pass_and_maj(
    tmp_path: Path, shared_data: Path, task: str, count: int
) -> None:
    """Four samples per item; the scripted model is right on the k-th sample when a hash says so, else
    answers 1000 + k (never a gold: AIME answers are 0-999, AMC's are below 1000 too)."""
    rows = [json.loads(line) for line in (shared_data / task / "test.jsonl").read_text().splitlines()]
    gold = {}
    for row in rows:
        answer = row["answer"]
        gold[mathusereval.BOXED_COT.format(question=row["problem"])] = (
            str(int(answer)) if isinstance(answer, float) else str(answer)
        )

    def script(body: dict[str, Any], _attempt: int) -> str:
        prompt, k = body["messages"][-1]["content"], body["seed"]
        return f"\\boxed{{{gold[prompt] if _right(prompt, k) else 1000 + k}}}"

    with ScriptedServer(script) as server:
        result = run_cli(
            *("--base-url", server.url, "--model", "s", "--tasks", task, "--samples", "4", "--seed", "0"),
            *("--data-dir", str(shared_data), "--quiet"),
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "results" / "s" / task / "summary.json").read_text())
    metrics = {m["name"]: m for m in summary["metrics"]}
    rights = [[_right(p, k) for k in range(4)] for p in gold]
    assert metrics["accuracy"]["n"] == count
    assert metrics["accuracy"]["value"] == pytest.approx(sum(sum(r) / 4 for r in rights) / count)  # avg@4
    assert metrics["pass@4"]["value"] == pytest.approx(sum(any(r) for r in rights) / count)

    # maj@4: wrong answers all differ (1000 + k), so the right one wins a vote when it appears at least once
    # and ties break by first appearance; count it exactly as that rule does
    def majority(r: list[bool]) -> bool:
        votes: dict[str, int] = {}
        for k, ok in enumerate(r):
            votes["gold" if ok else str(k)] = votes.get("gold" if ok else str(k), 0) + 1
        return max(votes, key=lambda v: votes[v]) == "gold"

    assert metrics["maj@4"]["value"] == pytest.approx(sum(majority(r) for r in rights) / count)
    assert metrics["accuracy"]["stderr"] > 0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_aime_and_amc_download_from_a_pinned_mirror(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    for task in ("aime24", "amc23"):
        (mirror / task).mkdir(parents=True)
        (mirror / task / "test.jsonl").write_bytes((shared_data / task / "test.jsonl").read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MUE_DATA_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("MUE_CACHE_DIR", str(tmp_path / "cache"))
    try:
        assert len(registry.lookup("tasks", "aime24").load(None).samples) == 30
        assert len(registry.lookup("tasks", "amc23").load(None).samples) == 40
        assert (tmp_path / "cache" / "data" / "aime24" / "test.jsonl").is_file()
        # a changed file on the mirror is refused, and nothing is cached
        (mirror / "amc23" / "test.jsonl").write_bytes(b'{"id": 0, "problem": "1+1?", "answer": 2}\n')
        (tmp_path / "cache" / "data" / "amc23" / "test.jsonl").unlink()
        with pytest.raises(DataError, match="does not match the pinned 43707e1c"):
            registry.lookup("tasks", "amc23").load(None)
        assert not (tmp_path / "cache" / "data" / "amc23" / "test.jsonl").exists()
    finally:
        server.shutdown()
        server.server_close()


def test_pinned_source_and_registry_refuse_bad_declarations() -> None:
    with pytest.raises(Exception, match="64 lowercase hex"):
        mathusereval.pinned_source("x/y.jsonl", "https://example.invalid/y", "abc")
    with pytest.raises(Exception, match="relative path"):
        mathusereval.pinned_source("../y.jsonl", "https://example.invalid/y", "0" * 64)
    with pytest.raises(ConfigError, match="is a rule grader, not an LLM judge"):
        registry.judge_grader("answer")
    with pytest.raises(ConfigError, match="unknown plugin kind"):
        registry.register("judges", "x", object())  # type: ignore[arg-type]
