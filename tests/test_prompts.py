"""Prompt rendering snapshots: the exact text each task sends, pinned by hash (no benchmark text is
committed), plus the structure of the few-shot variants and the pin on their exemplar files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from mathusereval.errors import DataError
from mathusereval.graders import grade_answer
from mathusereval.plugins import registry
from mathusereval.plugins.task import prompt_fingerprint

# task, items, sha256[:16] of the first and last prompts, the prompt fingerprint of all rendered prompts [:16]
SNAPSHOTS = [
    ("aime24", 30, "b634d835306c8786", "ae4513aa67350206", "4e2d44cc58537aec"),
    ("alignbench", 683, "544ed2d1841c8bae", "de515c93c565ec1d", "de1f375395873e3c"),
    ("alignbench-v1.0", 683, "544ed2d1841c8bae", "de515c93c565ec1d", "96c93db92a72eac7"),
    ("amc23", 40, "63a2cd3290166a75", "e3589ee05be7ca87", "443b86447e674671"),
    ("demo", 25, "8345a49fc83d3ef8", "73cc813654defae8", "9b7aff80ee8dc5e6"),
    ("gsm8k", 1319, "ae94e72dffe34ce5", "2da7c8019f9c07f6", "f23e5f13fccfbc0a"),
    ("gsm8k-5shot", 1319, "ea821015b5b035b5", "25b75107f45f3bc1", "da8d0e408f15c3f1"),
    ("gsm8k-cot-8shot", 1319, "6734f50b107e3f71", "b63368b7f1c526d4", "f60c3ae6909f5765"),
    ("gsm8k-train", 7473, "382c6d317ac1d307", "2187f1651b93e7d6", "73dcdff92dd12a30"),
    ("math", 5000, "437800cf430e119c", "b7e79658f647136c", "454e9d0ec926838e"),
    ("math-minerva-4shot", 5000, "fe779708fdd63f76", "eba5294c3f428243", "78bcde6b1062e656"),
    ("math-train", 7496, "7e8a7f9a0f729487", "2191e08f0ca9c0c2", "885f9c4c4eeada02"),
    ("math500", 500, "53f3535109000111", "a2e821fd810e55cd", "3b13ee937946323d"),
    ("math500-minerva-4shot", 500, "5fd8e64c89e27789", "9b3ecf63e5a7d073", "dc8e1ccc81a5e9fa"),
    ("mathusereval", 567, "f15144a4a775f078", "06e8fab1cd502839", "9b355e2a1f1613c1"),
]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_every_task_has_a_snapshot() -> None:
    assert sorted(registry.names("tasks")) == sorted(row[0] for row in SNAPSHOTS)


@pytest.mark.parametrize(("name", "count", "first", "last", "template"), SNAPSHOTS)
def test_prompt_snapshot(shared_data: Path, name: str, count: int, first: str, last: str, template: str) -> None:
    task = registry.lookup("tasks", name)
    samples = task.load(shared_data).samples
    assert len(samples) == count
    assert all(len(s.messages) == 1 and s.messages[0]["role"] == "user" for s in samples)
    assert (_digest(samples[0].messages[0]["content"]), _digest(samples[-1].messages[0]["content"])) == (first, last)
    assert prompt_fingerprint(samples, task.params.stop)[:16] == template


def test_few_shot_structure(shared_data: Path) -> None:
    def first_prompt(name: str) -> str:
        return str(registry.lookup("tasks", name).load(shared_data).samples[0].messages[0]["content"])

    five = first_prompt("gsm8k-5shot")
    assert five.count("Question: ") == 6 and five.count("\n#### ") == 5 and five.endswith("\nAnswer:")
    cot = first_prompt("gsm8k-cot-8shot")
    assert cot.count("Q: ") == 9 and cot.count(" The answer is ") == 8 and "<<" not in cot and cot.endswith("\nA:")
    minerva = first_prompt("math500-minerva-4shot")
    assert minerva.count("Problem:\n") == 5 and minerva.count("I hope it is correct.") == 4
    assert minerva.endswith("\n\nSolution:")
    assert registry.lookup("tasks", "gsm8k-5shot").params.stop == ("Question:", "\n\n\n")
    assert registry.lookup("tasks", "math-minerva-4shot").params.stop == ("Problem:",)
    # each format's answer line is what the answer grader reads
    assert grade_answer("18", "9 * 2 = 18 dollars.\n#### 18").correct
    assert grade_answer("18", "She makes 9 * 2 = 18 dollars. The answer is 18.").correct
    assert grade_answer(
        "\\frac{1}{2}", "...\nFinal Answer: The final answer is $\\frac12$. I hope it is correct."
    ).correct


def test_zero_shot_tasks_keep_the_raw_question_for_judges(shared_data: Path) -> None:
    for name in ("gsm8k", "gsm8k-5shot", "math500", "math-minerva-4shot"):
        sample = registry.lookup("tasks", name).load(shared_data).samples[0]
        assert sample.metadata["question"] in sample.messages[0]["content"]
        assert not sample.metadata["question"].startswith(("Question:", "Problem:"))


def test_a_different_exemplar_file_is_refused(tmp_path: Path, shared_data: Path) -> None:
    for sub in ("gsm8k", "math"):
        shutil.copytree(shared_data / sub, tmp_path / sub)
    train = tmp_path / "gsm8k" / "train.jsonl"
    train.chmod(0o644)
    train.write_text(train.read_text(encoding="utf-8").replace("Natalia", "Natasha", 1), encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.jsonl: sha256 \w+ is not the pinned 17f347dc.*few-shot exemplars"):
        registry.lookup("tasks", "gsm8k-cot-8shot").load(tmp_path)
    assert len(registry.lookup("tasks", "gsm8k").load(tmp_path).samples) == 1319  # zero-shot does not need it
