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


# the Qwen2.5-Math suite: a system turn (qwen25-math-cot) and the question; digests of the question turn
SUITE_SNAPSHOTS = [
    ("aqua", 254, "f0f689a5b2c205bc", "20277e44639b4c6a", "c9bfe07ff5d7b434"),
    ("asdiv", 2215, "b6f053a5320a172c", "37d248649475329b", "74a0dc43d3ede16c"),
    ("carp_en", 976, "89d284083a5e5527", "f96bad578f530a40", "f92c4e65c62af098"),
    ("cmath", 600, "bb078a2b6f137c10", "aa2a39efcda5ef94", "fb50d7cc1c99744a"),
    ("cn_middle_school", 101, "dd78826add5a0b1a", "30b446a82d80c926", "7584eb046c417e8a"),
    ("college_math", 2818, "93cfdd6eebf67538", "ac94919c09be51e0", "5b3382a08f97bc23"),
    ("gaokao2023en", 383, "c0f552054a6b3e2c", "9c3d146230919258", "b9a347e8a1f8cfcf"),  # 385 rows, 2 left out
    ("gaokao2024_I", 14, "85d6c1e2c1d44a2f", "71982cb9521f5131", "52d98f8475109b15"),
    ("gaokao2024_II", 14, "ebdf493975f94d89", "71982cb9521f5131", "a2ff1f5bcdfc16e4"),
    ("gaokao2024_mix", 91, "41b72b9b62e420d5", "8a283811acb2e89b", "7dc3856654eb80db"),
    ("gaokao_math_cloze", 118, "7f0d0a867fc78e6e", "e804e46e2fccd4f0", "f99936f69fc30381"),
    ("gaokao_math_qa", 351, "2a75df7c74868d68", "e8f73fa3da8cac1c", "481b91a00193db34"),
    ("mawps", 2065, "66b5c5bfb4ab823f", "108e582efb0b70bf", "feba3505803c3f75"),
    ("minerva_math", 272, "2f02a08e7b65e18f", "359ae015c4518add", "9e755ec52e8b06a4"),
    ("mmlu_stem", 3018, "390761cd411d2c44", "749554917ae07a46", "a6a06b8ea1e3470d"),
    ("olympiadbench", 675, "74c617fd90177f3e", "506039e140b67f4d", "a80db6cbb067ee09"),
    ("sat_math", 32, "2f855da057d78ce7", "0002e1b4ae696bcd", "3eac1a3e4e1fefb7"),
    ("svamp", 1000, "1739bb7bfc371d39", "6bd00635c02f7dc8", "346bac893764b692"),
]

# the tool-integrated variants (tasks/tir.py): upstream's TIR system turn and the raw question; the suite's
# question turns are their base sets' (same digests), the others lose the chain-of-thought instruction
TIR_SNAPSHOTS = [
    ("aime24-tir", 30, "40de3e36fcb84aa5", "ff87a2102c130645", "ea8bd5b41fefaf5e"),
    ("amc23-tir", 40, "6bc26377a24cf0a1", "81d580f5223b433e", "5815d6a78769f5e5"),
    ("aqua-tir", 254, "f0f689a5b2c205bc", "20277e44639b4c6a", "c5bef10f9771493f"),
    ("asdiv-tir", 2215, "b6f053a5320a172c", "37d248649475329b", "368d278a8f5927c2"),
    ("carp_en-tir", 976, "89d284083a5e5527", "f96bad578f530a40", "59dcc491ac1feeb6"),
    ("cmath-tir", 600, "bb078a2b6f137c10", "aa2a39efcda5ef94", "9b3f3c7b2911f0f7"),
    ("cn_middle_school-tir", 101, "dd78826add5a0b1a", "30b446a82d80c926", "d9c51ee6d69154b1"),
    ("college_math-tir", 2818, "93cfdd6eebf67538", "ac94919c09be51e0", "40b69dffd74b14bd"),
    ("gaokao2023en-tir", 383, "c0f552054a6b3e2c", "9c3d146230919258", "eb48631aecb5ddd0"),
    ("gaokao2024_I-tir", 14, "85d6c1e2c1d44a2f", "71982cb9521f5131", "0831c329618a4f51"),
    ("gaokao2024_II-tir", 14, "ebdf493975f94d89", "71982cb9521f5131", "d49331813da90629"),
    ("gaokao2024_mix-tir", 91, "41b72b9b62e420d5", "8a283811acb2e89b", "cf6d7502a2a46e8b"),
    ("gaokao_math_cloze-tir", 118, "7f0d0a867fc78e6e", "e804e46e2fccd4f0", "3b7b732c43ec5c0f"),
    ("gaokao_math_qa-tir", 351, "2a75df7c74868d68", "e8f73fa3da8cac1c", "bf60729c06d33339"),
    ("gsm8k-tir", 1319, "2b2e3f9639f6fa28", "d633d02dadf28293", "3b53e7437eac1825"),
    ("math-tir", 5000, "a5140381f6885ffa", "a98dc0b7142fb2c2", "04cf8c9179118119"),
    ("math500-tir", 500, "13bb5d32a5afacb3", "ef342bf2f116069f", "17762c705b230ccb"),
    ("mawps-tir", 2065, "66b5c5bfb4ab823f", "108e582efb0b70bf", "17749b2f9a612234"),
    ("minerva_math-tir", 272, "2f02a08e7b65e18f", "359ae015c4518add", "411e873050ec9f5d"),
    ("mmlu_stem-tir", 3018, "390761cd411d2c44", "749554917ae07a46", "1cef0ecd06a4b732"),
    ("olympiadbench-tir", 675, "74c617fd90177f3e", "506039e140b67f4d", "745f8343541c7701"),
    ("sat_math-tir", 32, "2f855da057d78ce7", "0002e1b4ae696bcd", "3ae5f831f98d944d"),
    ("svamp-tir", 1000, "1739bb7bfc371d39", "6bd00635c02f7dc8", "1ed471433ac9ddda"),
]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_every_task_has_a_snapshot() -> None:
    assert sorted(registry.names("tasks")) == sorted(row[0] for row in SNAPSHOTS + SUITE_SNAPSHOTS + TIR_SNAPSHOTS)


@pytest.mark.parametrize(("name", "count", "first", "last", "template"), SNAPSHOTS + SUITE_SNAPSHOTS + TIR_SNAPSHOTS)
def test_prompt_snapshot(shared_data: Path, name: str, count: int, first: str, last: str, template: str) -> None:
    task = registry.lookup("tasks", name)
    samples = task.load(shared_data).samples
    roles = ["system", "user"] if name in {row[0] for row in SUITE_SNAPSHOTS + TIR_SNAPSHOTS} else ["user"]
    assert len(samples) == count
    assert all([m["role"] for m in s.messages] == roles for s in samples)
    assert (_digest(samples[0].messages[-1]["content"]), _digest(samples[-1].messages[-1]["content"])) == (first, last)
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
