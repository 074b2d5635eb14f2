"""MathUserEval and AlignBench: data loading and the official aggregation against published rows.

Published rows are copied from the MathUserEval README leaderboard (= paper Table 15) and
the AlignBench README tables (v1.1 and v1.0, judge gpt-4-0613).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mathusereval.errors import DataError
from mathusereval.plugins import registry
from mathusereval.records import GenerationParams, Grade, Request
from mathusereval.run.pipeline import group_by_params
from mathusereval.tasks import alignbench, math_user_eval

from .conftest import run_cli

TOLERANCE = 0.01 + 1e-9  # published cells are rounded to 2 dp, so recombining them moves the result by < 0.01

# Overall, Reasoning, Math, Logic, Language, Fund, Chinese, Open, Writing, Role, Professional
ALIGNBENCH_ROWS = {
    "v1.1 GPT-4o": (8.38, 8.44, 8.62, 8.25, 8.32, 8.25, 7.97, 8.79, 7.95, 8.35, 8.62),
    "v1.1 通义千问2.5": (8.17, 7.79, 7.97, 7.60, 8.55, 7.87, 8.40, 8.94, 8.60, 8.73, 8.76),
    "v1.1 GLM-4-0520": (7.89, 7.66, 7.67, 7.64, 8.13, 7.78, 8.22, 8.21, 8.09, 7.99, 8.47),
    "v1.1 Gemini 1.5 Pro": (7.47, 7.07, 7.77, 6.36, 7.87, 7.31, 7.22, 8.55, 7.83, 7.79, 8.52),
    "v1.1 Claude 3 Haiku": (6.38, 5.58, 6.06, 5.10, 7.18, 7.15, 6.74, 7.58, 6.95, 7.26, 7.37),
    "v1.0 gpt-4-1106-preview": (8.01, 7.73, 7.8, 7.66, 8.29, 7.99, 7.33, 8.61, 8.67, 8.47, 8.65),
    "v1.0 chatglm-turbo": (6.24, 5, 4.74, 5.26, 7.49, 6.82, 7.17, 8.16, 7.77, 7.76, 7.24),
    "v1.0 llama-2-13b-Chinese-chat": (3.35, 2.47, 2.21, 2.73, 4.23, 4.13, 3.31, 4.79, 3.93, 4.53, 4.71),
}
ALIGNBENCH_CATEGORIES = ("数学计算", "逻辑推理", "基本任务", "中文理解", "综合问答", "文本写作", "角色扮演", "专业能力")

# Overall, Elem avg, algebra, calculate, geometry, trigonometry, Adv avg, calculus, discrete, linear_algebra, Prob.
MATHUSEREVAL_ROWS = {
    "GPT-4-0125-Preview": (5.79, 5.26, 5.04, 7.63, 3.98, 4.59, 6.71, 7.26, 6.62, 5.48, 7.72),
    "GPT-4-1106-Preview": (5.73, 5.07, 4.96, 7.00, 3.78, 4.71, 6.81, 7.39, 6.96, 5.29, 7.91),
    "GLM-4": (5.11, 4.86, 4.47, 6.56, 3.95, 4.74, 5.43, 6.00, 5.67, 4.26, 6.02),
    "Qwen-72B-Chat": (3.87, 3.99, 3.96, 4.81, 3.83, 3.34, 3.67, 4.54, 3.71, 2.84, 3.65),
    "Yi-34B-Chat": (2.64, 2.49, 2.04, 3.61, 2.25, 2.27, 2.87, 2.80, 3.47, 2.03, 3.41),
}


@pytest.mark.parametrize(("name", "count"), [("mathusereval", 567), ("alignbench", 683), ("alignbench-v1.0", 683)])
def test_counts_and_unique_keys(shared_data: Path, name: str, count: int) -> None:
    samples = registry.lookup("tasks", name).load(shared_data).samples
    assert len(samples) == count and len({s.id for s in samples}) == count


def test_mathusereval_keys_and_split(shared_data: Path) -> None:
    samples = math_user_eval.load(shared_data).samples
    assert sum(not s.metadata["supplementary"] for s in samples) == 545
    assert Counter(s.metadata["source"] for s in samples) == {"matheval": 455, "alignbench": 112}
    assert samples[0].id == "alignbench-125" and samples[0].messages[0]["content"].startswith("用自然数基数理论")


def test_alignbench_temperatures_follow_upstream(shared_data: Path) -> None:
    samples = alignbench.ALIGNBENCH.load(shared_data).samples
    temps = {s.metadata["category"]: s.metadata["temperature"] for s in samples}
    assert temps["数学计算"] == 0.1 and temps["角色扮演"] == 0.7 and temps["综合问答"] == 0.7
    groups = group_by_params([Request(s) for s in samples], GenerationParams(), {})
    assert sorted((p.temperature, len(r)) for p, r in groups.items()) == [(0.1, 454), (0.7, 229)]
    forced = group_by_params([Request(s) for s in samples], GenerationParams(temperature=0.0), {"temperature": 0.0})
    assert list(forced) == [GenerationParams(temperature=0.0)]


def test_alignbench_missing_field_and_unknown_keys(tmp_path: Path) -> None:
    folder = tmp_path / "alignbench"
    folder.mkdir()
    row = {
        "question_id": 1,
        "category": "数学计算",
        "subcategory": "初等数学",
        "question": "1+1?",
        "reference": "2",
        "29": {"stray": "nested duplicate"},
    }
    bad = {k: v for k, v in row.items() if k != "reference"}
    (folder / "data_v1.1_release.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"data_v1\.1_release\.jsonl:2: missing required field 'reference'"):
        alignbench.ALIGNBENCH.load(tmp_path)


@pytest.mark.parametrize("model", sorted(ALIGNBENCH_ROWS))
def test_alignbench_combination_reproduces_published_rows(model: str) -> None:
    overall, reasoning, math, logic, language, *lang = ALIGNBENCH_ROWS[model]
    means = dict(zip(ALIGNBENCH_CATEGORIES, (math, logic, *lang), strict=True))
    combined = alignbench.combine(means)
    assert combined["reasoning"] == pytest.approx(reasoning, abs=TOLERANCE)
    assert combined["language"] == pytest.approx(language, abs=TOLERANCE)
    assert combined["overall"] == pytest.approx(overall, abs=TOLERANCE)


def test_alignbench_aggregate_from_item_grades(shared_data: Path) -> None:
    """Item-level grades whose category means are a published row give that row's Overall."""
    overall, _, math, logic, _, *lang = ALIGNBENCH_ROWS["v1.1 GPT-4o"]
    means = dict(zip(ALIGNBENCH_CATEGORIES, (math, logic, *lang), strict=True))
    samples = alignbench.ALIGNBENCH.load(shared_data).samples
    grades = [Grade(s.id, 0, "alignbench-judge", means[s.metadata["category"]]) for s in samples]
    metrics = {m.name: m for m in alignbench.aggregate(samples, grades)}
    assert metrics["overall"].value == pytest.approx(overall, abs=TOLERANCE) and metrics["overall"].n == 683
    assert metrics["category/数学计算"].n == 112


def test_alignbench_combined_standard_errors(shared_data: Path) -> None:
    """Overall/Reasoning/Language carry the standard error of their weighted sums of category means:
    sqrt(sum of squared weights x category variance), checked against the category errors directly."""
    samples = alignbench.ALIGNBENCH.load(shared_data).samples
    grades = [Grade(s.id, 0, "alignbench-judge", float(1 + (7 * k) % 10)) for k, s in enumerate(samples)]
    metrics = {m.name: m for m in alignbench.aggregate(samples, grades)}
    var = {c: metrics[f"category/{c}"].stderr ** 2 for c in ALIGNBENCH_CATEGORIES}
    reasoning, language = ALIGNBENCH_CATEGORIES[:2], ALIGNBENCH_CATEGORIES[2:]
    assert metrics["reasoning"].stderr == pytest.approx(sum(var[c] for c in reasoning) ** 0.5 / 2)
    assert metrics["language"].stderr == pytest.approx(sum(var[c] for c in language) ** 0.5 / 6)
    expected = (sum(var[c] / 16 for c in reasoning) + sum(var[c] / 144 for c in language)) ** 0.5
    assert metrics["overall"].stderr == pytest.approx(expected)


@pytest.mark.parametrize("model", sorted(MATHUSEREVAL_ROWS))
def test_mathusereval_elementary_advanced_reproduce_published_rows(shared_data: Path, model: str) -> None:
    _, elem, algebra, calculate, geometry, trig, adv, calculus, discrete, linear, prob = MATHUSEREVAL_ROWS[model]
    samples = math_user_eval.load(shared_data).samples
    counts = Counter(s.metadata["subcategory"] for s in samples if not s.metadata["supplementary"])
    assert counts == {
        "calculate": 75,
        "algebra": 113,
        "geometry": 81,
        "trigonometry": 73,
        "discrete": 45,
        "Probability": 46,
        "linear_algebra": 58,
        "calculus": 54,
    }
    means = {
        "algebra": algebra,
        "calculate": calculate,
        "geometry": geometry,
        "trigonometry": trig,
        "calculus": calculus,
        "discrete": discrete,
        "linear_algebra": linear,
        "Probability": prob,
    }
    combined = math_user_eval.combine(means, counts)
    assert combined["elementary"] == pytest.approx(elem, abs=TOLERANCE)
    assert combined["advanced"] == pytest.approx(adv, abs=TOLERANCE)
    grades = [
        Grade(s.id, 0, "alignbench-judge", means[s.metadata["subcategory"]])
        for s in samples
        if not s.metadata["supplementary"]
    ]
    metrics = {m.name: m for m in math_user_eval.aggregate(samples, grades)}
    assert metrics["elementary"].value == pytest.approx(elem, abs=TOLERANCE) and metrics["elementary"].n == 342
    assert metrics["advanced"].value == pytest.approx(adv, abs=TOLERANCE) and metrics["advanced"].n == 203
    assert metrics["supplementary"].n == 0 and metrics["overall"].n == 545


def test_hard_split_is_share_of_scores_at_least_seven(shared_data: Path) -> None:
    samples = math_user_eval.load(shared_data).samples[:4]
    grades = [Grade(s.id, 0, "j", score) for s, score in zip(samples, (7.0, 6.0, 10.0, 1.0), strict=True)]
    metrics = {m.name: m for m in math_user_eval.aggregate(samples, grades)}
    assert metrics["hard_split"].value == 0.5 and metrics["overall"].value == 6.0


def test_judged_task_without_judge_is_refused_clearly(tmp_path: Path, shared_data: Path) -> None:
    result = run_cli("--tasks", "mathusereval", "--data-dir", str(shared_data), cwd=tmp_path)
    assert result.returncode == 2
    assert "scored by the LLM judge 'alignbench-judge': pass --judge MODEL" in result.stderr
    assert not (tmp_path / "results").exists()
