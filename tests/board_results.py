"""A results directory with several models on every benchmark family, made through the real CLI.

One scripted loopback server plays both the models under test and the judge. Model ``strong`` answers
every math item correctly and gets high judge scores; ``middle`` and ``weak`` get less, so rankings,
significance marks and plots have something to show. Used by the leaderboard tests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mathusereval.plugins.registry import lookup
from mathusereval.run.selection import select_samples

from .conftest import run_cli
from .judge_server import ScriptedServer, judged_answer

MODELS = {"strong": (0.9, 8), "middle": (0.5, 5), "weak": (0.45, 4)}  # share right, judge score centre
LIMITS = {"gsm8k": 40, "math500": 60, "mathusereval": 80, "alignbench": None}  # AlignBench whole: every category


def _coin(text: str, salt: str) -> float:
    return int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def references(shared_data: Path, limits: dict[str, int | None] = LIMITS) -> dict[str, str]:
    """Prompt -> gold final answer for the `limits[task]` items ``--limit`` takes of gsm8k and math500."""
    out = {}
    for task in ("gsm8k", "math500"):
        loaded = lookup("tasks", task).load(shared_data)
        for s in select_samples(lookup("tasks", task), loaded, limits[task]):  # the items --limit takes
            ref = s.reference if task == "math500" else s.reference.rsplit("####", 1)[-1].strip()
            out[s.messages[-1]["content"]] = ref
    return out


def build(root: Path, shared_data: Path, models: dict[str, tuple[float, int]] = MODELS) -> Path:
    """Runs of `models` on all four benchmarks under ``root/results``; returns that directory."""
    gold = references(shared_data)

    def script_for(model: str, right: float, centre: int) -> Any:
        def script(body: dict[str, Any], _: int) -> str:
            prompt = body["messages"][-1]["content"]
            if body["model"] == "judge":
                answer = judged_answer(body)
                score = max(1, min(10, centre + round(4 * _coin(answer, model)) - 2))
                return f"评价：回答{'正确' if score >= 7 else '有误'}。\n{{'综合得分': {score}}}"
            if prompt in gold and _coin(prompt, model) < right:
                return f"The answer is \\boxed{{{gold[prompt]}}}."
            return f"{model} says \\boxed{{{len(prompt) % 97}}}."

        return script

    for model, (right, centre) in models.items():
        with ScriptedServer(script_for(model, right, centre)) as server:
            for task, limit in LIMITS.items():
                result = run_cli(
                    *("--model", model, "--base-url", server.url, "--tasks", task),
                    *(("--limit", str(limit)) if limit else ()),
                    *("--data-dir", str(shared_data), "--judge", "judge", "--judge-base-url", server.url, "--quiet"),
                    cwd=root,
                )
                assert result.returncode == 0, result.stderr
    return root / "results"
