"""Our tasks inside real lm-eval 0.4.13: listing and validation, parity with ``mue-eval`` item by item on
the same generations, and a judge-scored task with the embedded model as the judge."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mathusereval import lm_eval_task_dir
from mathusereval.lmeval import CORE_TASK_NAMES, TASK_NAMES
from mathusereval.plugins import registry

from .conftest import run_cli
from .judge_server import ScriptedServer

LM_EVAL = Path(sys.executable).with_name("lm_eval")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _results(out: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """lm-eval's results JSON and its logged samples per task."""
    [results] = out.glob("**/results_*.json")
    samples = {}
    for path in out.glob("**/samples_*.jsonl"):
        task = re.match(r"samples_(.+)_\d{4}-", path.name).group(1)  # type: ignore[union-attr]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return json.loads(results.read_text()), samples


def test_stock_lm_eval_lists_and_validates_our_tasks(tmp_path: Path) -> None:
    """The stock ``lm_eval`` CLI with ``--include_path``: every built-in task indexed too, none shadowed."""
    include = ("--include_path", lm_eval_task_dir())
    listed = subprocess.run(
        [str(LM_EVAL), "ls", "tasks", *include], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    for name in TASK_NAMES:
        assert re.search(rf"\|{name}\s*\|.*mathusereval_", listed.stdout), name
    assert "overrides existing task" not in listed.stderr
    valid = subprocess.run(
        [
            str(LM_EVAL),
            "validate",
            "--tasks",
            ",".join([*TASK_NAMES, "mathusereval", "mathusereval_math_suite_en"]),
            *include,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert valid.returncode == 0 and "All tasks found and valid" in valid.stdout, valid.stderr[-3000:]


def test_lm_eval_help_documents_our_options(tmp_path: Path) -> None:
    result = run_cli("lm-eval", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for flag in ("--only-ours", "--judge VALUE", "--judge-base-url VALUE", "--judge-cascade", "--verifier VALUE"):
        assert flag in result.stdout, flag


def test_yaml_generation_settings_are_the_tasks_own() -> None:
    for name in TASK_NAMES:
        text = (Path(lm_eval_task_dir()) / f"{name}.yaml").read_text()
        task = registry.lookup("tasks", name.removeprefix("mathusereval_"))
        assert f"max_gen_toks: {task.params.max_tokens}" in text and f"task: {task.name}\n" in text
        assert f"temperature: {task.params.temperature}" in text


PARITY_TASKS = ("gsm8k", "math500", "mmlu_stem", "cmath", "gaokao2024_I")
"""Numeric, expression and choice answers, English and Chinese (the Qwen2.5-Math suite's graders too)."""


def _replies(shared_data: Path) -> dict[str, str]:
    """Scripted answers per prompt: right, wrong, equivalent-but-different and unparseable ones."""
    replies = {}
    for task in PARITY_TASKS:
        samples = registry.lookup("tasks", task).load(shared_data).samples[:12]
        for i, s in enumerate(samples):
            answer = s.reference.rsplit("####", 1)[-1].strip() if task == "gsm8k" else s.reference
            options = s.metadata.get("options") or {}
            other = {
                "gsm8k": f"#### {answer}",
                "math500": f"Final Answer: The final answer is ${answer}$.",
                "cmath": f"所以答案是 {answer}。",
            }.get(task, f"\\boxed{{{options.get(answer, answer)}}}")  # a choice: the option's text
            replies[s.messages[-1]["content"]] = [
                f"Step by step ... so the answer is $\\boxed{{{answer}}}$.",
                "The answer is \\boxed{3}.",
                other,
                "I am not sure.",
            ][i % 4]
    return replies


def test_parity_with_mue_eval_item_by_item(tmp_path: Path, shared_data: Path) -> None:
    replies = _replies(shared_data)
    with ScriptedServer(lambda body, _: replies.get(body["messages"][-1]["content"], "I am not sure.")) as server:
        ours = run_cli(
            *("--base-url", server.url, "--model", "scripted", "--tasks", ",".join(PARITY_TASKS), "--limit", "12"),
            *("--limit-order", "file", "--data-dir", str(shared_data), "--quiet"),  # lm-eval's --limit: the first N
            cwd=tmp_path,
        )
        assert ours.returncode == 0, ours.stderr
        theirs = run_cli(
            *("lm-eval", "run", "--only-ours", "--model", "local-chat-completions"),
            "--model_args",
            f"base_url={server.url}/chat/completions,model=scripted,num_concurrent=4,max_retries=1,"
            "tokenized_requests=False",
            "--apply_chat_template",
            *("--tasks", ",".join(["mathusereval", *(f"mathusereval_{t}" for t in PARITY_TASKS[2:])])),
            *("--limit", "12", "--log_samples"),
            *("--metadata", json.dumps({"data_dir": str(shared_data)}), "--output_path", str(tmp_path / "lm")),
            cwd=tmp_path,
            env=OFFLINE,
        )
        assert theirs.returncode == 0, theirs.stderr[-5000:]
    results, samples = _results(tmp_path / "lm")
    for task in PARITY_TASKS:
        grades = {
            g["sample_id"]: g["score"]
            for g in map(
                json.loads, (tmp_path / "results" / "scripted" / task / "grades.jsonl").read_text().splitlines()
            )
        }
        logged = {s["doc"]["id"]: s["accuracy"] for s in samples[f"mathusereval_{task}"]}
        assert logged == grades and len(logged) == 12
        assert 0 < sum(logged.values()) < 12  # both verdicts occur
        summary = json.loads((tmp_path / "results" / "scripted" / task / "summary.json").read_text())
        assert results["results"][f"mathusereval_{task}"]["accuracy,none"] == pytest.approx(
            summary["metrics"][0]["value"]
        )
    assert "accuracy,none" in results["groups"]["mathusereval"]


@pytest.mark.slow
def test_every_task_through_lm_eval_on_a_real_server_with_the_embedded_model_as_judge(
    tmp_path: Path, shared_data: Path, llama_server: str
) -> None:
    """lm-eval's local-chat-completions against llama.cpp's server, two items of each of our tasks; the
    judged ones scored by the same embedded model as judge (plumbing, not a meaningful score)."""
    result = run_cli(
        *("lm-eval", "--judge", "smollm2-135m-instruct", "--judge-base-url", llama_server, "--judge-max-tokens", "48"),
        *("run", "--only-ours", "--model", "local-chat-completions"),
        "--model_args",
        f"base_url={llama_server}/chat/completions,model=smollm2-135m-instruct,num_concurrent=1,max_retries=1,"
        "tokenized_requests=False",
        *("--apply_chat_template", "--tasks", "mathusereval,mathusereval_judged", "--limit", "2", "--log_samples"),
        *("--gen_kwargs", "max_gen_toks=32", "--output_path", str(tmp_path / "lm")),
        *("--metadata", json.dumps({"data_dir": str(shared_data)})),
        cwd=tmp_path,
        env={**OFFLINE, "MUE_JUDGE_CACHE": str(tmp_path / "judge-cache")},
    )
    assert result.returncode == 0, result.stderr[-5000:]
    results, samples = _results(tmp_path / "lm")
    for name in CORE_TASK_NAMES:
        assert len(samples[name]) == 2, name
        judged = name in ("mathusereval_mathusereval", "mathusereval_alignbench")
        metric = "score,judge" if judged else "accuracy,none"
        assert metric in results["results"][name], (name, results["results"][name])
        if judged:  # coverage beside the score: the share scored, and of unparseable replies
            scored, unparseable = (
                results["results"][name]["scored,judge"],
                results["results"][name]["unparseable,judge"],
            )
            assert 0 <= scored <= 1 and 0 <= unparseable <= 1 and scored + unparseable <= 1
    assert "scored" in result.stdout  # lm-eval's own table shows the coverage
    assert all(s["resps"][0][0] for name in CORE_TASK_NAMES for s in samples[name])  # real model text came back
    for task in ("mathusereval", "alignbench"):
        calls = (tmp_path / "judge-cache" / task / "judgments.jsonl").read_text().splitlines()
        assert len(calls) >= 2 and all(json.loads(c)["generation"]["error"] is None for c in calls)
