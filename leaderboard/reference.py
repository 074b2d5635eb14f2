"""Published numbers, shown as labelled reference rows next to a user's own runs (``--reference``): in the
overview (Overall) and in each task's breakdown (every published column).

Copied from the upstream READMEs: MathUserEval (THUDM/ChatGLM-Math README leaderboard = paper Table 15, judge
GPT-4-1106-Preview), AlignBench v1.1 (THUDM/AlignBench README at 5b79d4a8, judge gpt-4-0613) and AlignBench
v1.0 (README-en.md at acf7a469, judge gpt-4-0613). The official aggregation reproduces each row's averages
from its category means (tests/test_tasks_judged.py). The Qwen2.5-Math suite: the chain-of-thought, greedy
rows of the Qwen2.5-Math report (arXiv:2409.12122), Table 3 (English) and Table 4 (Chinese), accuracies;
the report's "GaoKao" column pools five sets and is shown only inside ``math-suite-zh``'s average. Its
tool-integrated reasoning (TIR) rows go to the ``<task>-tir`` columns (tasks/tir.py), as far as transcribed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mathusereval.records import MetricValue


@dataclass(frozen=True)
class PublishedTable:
    task: str
    source: str
    judge: str | None
    """The judge model of judge-scored tables; None for accuracies (stored as shares, shown in percent)."""
    columns: tuple[str, ...]
    """Metric names (the task's aggregation), in the published column order."""
    rows: Mapping[str, tuple[float, ...]]
    protocol: Mapping[str, Any] = field(default_factory=dict)
    """How the published rows were generated, as far as the source records it (`leaderboard.reproduction`):
    ``max_tokens``, ``temperature`` (None: the task's per-category temperatures), ``samples``, ``prompt``,
    and ``shots`` (a sentence) where the source's number of examples differs from ours."""


MUE_COLUMNS = ("overall", "elementary", "subcategory/algebra", "subcategory/calculate", "subcategory/geometry",
               "subcategory/trigonometry", "advanced", "subcategory/calculus", "subcategory/discrete",
               "subcategory/linear_algebra", "subcategory/Probability")  # fmt: skip
ALIGNBENCH_COLUMNS = (
    "overall",
    "reasoning",
    "category/数学计算",
    "category/逻辑推理",
    "language",
    "category/基本任务",
    "category/中文理解",
    "category/综合问答",
    "category/文本写作",
    "category/角色扮演",
    "category/专业能力",
)

_MUE_ROWS = {
    "GPT-4-0125-Preview": (5.79, 5.26, 5.04, 7.63, 3.98, 4.59, 6.71, 7.26, 6.62, 5.48, 7.72),
    "GPT-4-1106-Preview": (5.73, 5.07, 4.96, 7.0, 3.78, 4.71, 6.81, 7.39, 6.96, 5.29, 7.91),
    "GLM-4": (5.11, 4.86, 4.47, 6.56, 3.95, 4.74, 5.43, 6.0, 5.67, 4.26, 6.02),
    "ChatGLM3-32B-SFT-2312 + RFT&DPO": (4.23, 4.01, 3.88, 5.41, 2.9, 3.99, 4.59, 5.22, 4.76, 3.38, 5.2),
    "GPT-4-0613": (4.14, 3.34, 2.88, 4.76, 3.17, 2.78, 5.33, 5.57, 5.49, 4.26, 6.22),
    "ChatGLM3-32B-SFT-2312 + RFT": (4.01, 3.86, 3.84, 5.37, 2.57, 3.77, 4.26, 4.72, 4.69, 2.98, 4.89),
    "Qwen-72B-Chat": (3.87, 3.99, 3.96, 4.81, 3.83, 3.34, 3.67, 4.54, 3.71, 2.84, 3.65),
    "GPT-3.5-Turbo-0613": (3.42, 3.04, 2.81, 4.07, 2.23, 3.26, 4.07, 4.83, 4.38, 3.26, 3.91),
    "ChatGLM3-32B-SFT-2312": (3.39, 3.35, 3.35, 4.51, 2.51, 3.11, 3.44, 4.04, 4.38, 2.41, 3.13),
    "Claude-2": (3.29, 2.63, 2.35, 3.63, 2.2, 2.53, 4.35, 4.56, 4.53, 3.29, 5.28),
    "DeepSeek-Chat-67B": (3.24, 2.76, 2.21, 4.73, 2.12, 2.3, 3.84, 4.41, 4.82, 2.79, 3.52),
    "Yi-34B-Chat": (2.64, 2.49, 2.04, 3.61, 2.25, 2.27, 2.87, 2.8, 3.47, 2.03, 3.41),
}

_AB11_ROWS = {
    "GPT-4o": (8.38, 8.44, 8.62, 8.25, 8.32, 8.25, 7.97, 8.79, 7.95, 8.35, 8.62),
    "通义千问2.5": (8.17, 7.79, 7.97, 7.6, 8.55, 7.87, 8.4, 8.94, 8.6, 8.73, 8.76),
    "GPT-4 Turbo-20240409": (8.0, 8.0, 8.32, 7.67, 8.01, 7.6, 7.57, 8.37, 7.75, 8.18, 8.59),
    "Abab 6.5(MoE)": (7.94, 7.73, 7.82, 7.63, 8.16, 8.21, 7.81, 8.31, 8.14, 8.24, 8.22),
    "GLM-4-0520": (7.89, 7.66, 7.67, 7.64, 8.13, 7.78, 8.22, 8.21, 8.09, 7.99, 8.47),
    "Sensechat 5.0": (7.89, 7.54, 7.96, 7.12, 8.23, 8.27, 7.69, 8.45, 8.15, 8.53, 8.29),
    "Qwen 1.5-110B-Chat": (7.86, 7.49, 7.69, 7.28, 8.23, 7.76, 8.12, 8.46, 8.2, 8.3, 8.52),
    "文心一言4.0": (7.85, 7.81, 7.6, 8.02, 7.89, 7.33, 8.35, 8.16, 8.11, 8.07, 7.29),
    "Yi-Large": (7.8, 7.44, 7.65, 7.23, 8.17, 7.81, 7.85, 8.51, 7.96, 8.18, 8.69),
    "DeepSeek-V2": (7.72, 7.26, 7.51, 7.0, 8.19, 8.1, 7.83, 8.16, 8.2, 8.41, 8.44),
    "GLM-4-Air": (7.58, 7.2, 7.19, 7.2, 7.97, 7.53, 7.71, 8.18, 7.97, 8.1, 8.32),
    "Claude 3 Opus": (7.53, 7.19, 7.27, 7.11, 7.87, 7.94, 7.71, 8.21, 7.61, 7.73, 8.02),
    "Gemini 1.5 Pro": (7.47, 7.07, 7.77, 6.36, 7.87, 7.31, 7.22, 8.55, 7.83, 7.79, 8.52),
    "Baichuan 4": (7.45, 7.28, 7.34, 7.22, 7.63, 7.34, 7.4, 7.74, 7.6, 7.36, 8.33),
    "Llama 3-70B": (7.42, 7.02, 7.18, 6.86, 7.82, 7.75, 6.63, 8.65, 7.8, 8.02, 8.08),
    "Gemini 1.5 Flash": (7.38, 7.29, 7.96, 6.61, 7.47, 6.75, 7.16, 8.05, 6.96, 7.73, 8.16),
    "WizardLM-2-8x22B": (7.34, 6.99, 6.99, 6.98, 7.7, 7.57, 6.6, 8.4, 7.6, 8.17, 7.83),
    "moonshot-v1-8k": (7.31, 6.76, 6.94, 6.58, 7.86, 7.56, 7.83, 7.82, 7.76, 7.93, 8.25),
    "Step-1-32k": (7.08, 6.43, 6.77, 6.09, 7.72, 8.09, 7.74, 7.34, 7.56, 7.74, 7.86),
    "讯飞星火3.5": (6.9, 6.47, 7.3, 5.63, 7.33, 7.28, 7.71, 7.24, 7.12, 7.41, 7.24),
    "Claude 3 Sonnet": (6.71, 6.17, 6.24, 6.1, 7.25, 7.56, 6.39, 7.37, 7.14, 7.76, 7.26),
    "Mixtral-8x22B (MoE)": (6.48, 6.23, 6.47, 5.98, 6.73, 6.87, 5.72, 7.0, 6.61, 7.14, 7.01),
    "Claude 3 Haiku": (6.38, 5.58, 6.06, 5.1, 7.18, 7.15, 6.74, 7.58, 6.95, 7.26, 7.37),
}

_AB10_ROWS = {
    "gpt-4-1106-preview": (8.01, 7.73, 7.8, 7.66, 8.29, 7.99, 7.33, 8.61, 8.67, 8.47, 8.65),
    "gpt-4-0613": (7.53, 7.47, 7.56, 7.37, 7.59, 7.81, 6.93, 7.42, 7.93, 7.51, 7.94),
    "chatglm-turbo（智谱清言）": (6.24, 5.0, 4.74, 5.26, 7.49, 6.82, 7.17, 8.16, 7.77, 7.76, 7.24),
    "erniebot-3.0（文心一言）": (6.14, 5.15, 5.03, 5.27, 7.13, 6.62, 7.6, 7.26, 7.56, 6.83, 6.9),
    "gpt-3.5-turbo-0613": (6.08, 5.35, 5.68, 5.02, 6.82, 6.71, 5.81, 7.29, 7.03, 7.28, 6.77),
    "chatglm-pro（智谱清言）": (5.83, 4.65, 4.54, 4.75, 7.01, 6.51, 6.76, 7.47, 7.07, 7.34, 6.89),
    "spark_desk_v2（讯飞星火）": (5.74, 4.73, 4.71, 4.74, 6.76, 5.84, 6.97, 7.29, 7.18, 6.92, 6.34),
    "qwen-14b-chat": (5.72, 4.81, 4.91, 4.71, 6.63, 6.9, 6.36, 6.74, 6.64, 6.59, 6.56),
    "baichuan2-13b-chat": (5.25, 3.92, 3.76, 4.07, 6.59, 6.22, 6.05, 7.11, 6.97, 6.75, 6.43),
    "chatglm3-6b": (4.97, 3.85, 3.55, 4.14, 6.1, 5.75, 5.29, 6.71, 6.83, 6.28, 5.73),
    "baichuan2-7b-chat": (4.97, 3.66, 3.56, 3.75, 6.28, 5.81, 5.5, 7.13, 6.84, 6.53, 5.84),
    "internlm-20b": (4.96, 3.66, 3.39, 3.92, 6.26, 5.96, 5.5, 7.18, 6.19, 6.49, 6.22),
    "qwen-7b-chat": (4.91, 3.73, 3.62, 3.83, 6.09, 6.4, 5.74, 6.26, 6.31, 6.19, 5.66),
    "chatglm2-6b": (4.48, 3.39, 3.16, 3.61, 5.58, 4.91, 4.52, 6.66, 6.25, 6.08, 5.08),
    "internlm-chat-7b": (3.65, 2.56, 2.45, 2.66, 4.75, 4.34, 4.09, 5.82, 4.89, 5.32, 4.06),
    "Chinese-llama-2-7b-chat": (3.57, 2.68, 2.29, 3.07, 4.46, 4.31, 4.26, 4.5, 4.63, 4.91, 4.13),
    "llama-2-13b-Chinese-chat": (3.35, 2.47, 2.21, 2.73, 4.23, 4.13, 3.31, 4.79, 3.93, 4.53, 4.71),
}

# Qwen2.5-Math report (arXiv:2409.12122) chain-of-thought greedy rows, in percent.
# Table 3: Minerva Math, GaoKao 2023 En, OlympiadBench, College Math, MMLU STEM, Avg. (of 7 sets, with GSM8K/MATH)
_QWEN_EN_COLUMNS = ("minerva_math", "gaokao2023en", "olympiadbench", "college_math", "mmlu_stem", "math-suite-en")
_QWEN_EN: dict[str, tuple[float, ...]] = {
    "GPT-4o-2024-08-06": (36.8, 67.5, 43.3, 48.5, 64.2, 62.0),
    "DeepSeekMath-7B-RL": (20.6, 43.6, 19.0, 37.5, 64.8, 46.6),
    "DeepSeek-Coder-V2-Lite-Instruct": (29.4, 56.1, 26.4, 39.8, 68.6, 52.7),
    "Internlm2-math-plus-7B": (17.3, 50.1, 18.8, 36.2, 55.2, 45.1),
    "Internlm2-math-plus-20B": (20.2, 51.9, 23.1, 37.5, 63.5, 48.7),
    "Internlm2-math-plus-mixtral8x7B": (26.8, 49.6, 25.0, 37.5, 71.9, 51.8),
    "Mathstral-7B-v0.1": (16.2, 46.0, 21.5, 33.7, 64.0, 46.1),
    "NuminaMath-7B-CoT": (19.1, 47.5, 19.9, 36.9, 60.8, 45.0),
    "NuminaMath-72B-CoT": (25.0, 58.4, 32.6, 39.7, 64.5, 54.0),
    "Llama-3.1-8B-Instruct": (21.7, 38.4, 15.4, 33.8, 60.5, 41.9),
    "Llama-3.1-70B-Instruct": (34.2, 54.0, 27.7, 42.5, 80.4, 56.9),
    "Qwen2-1.5B-Instruct": (5.5, 19.7, 4.1, 10.4, 46.2, 25.0),
    "Qwen2-7B-Instruct": (19.5, 36.4, 21.3, 24.5, 68.2, 44.1),
    "Qwen2-72B-Instruct": (31.6, 58.7, 33.2, 43.2, 84.4, 59.0),
    "Qwen2-Math-1.5B-Instruct": (29.4, 59.7, 31.3, 44.2, 54.9, 53.3),
    "Qwen2-Math-7B-Instruct": (34.6, 62.1, 38.2, 45.9, 63.8, 58.5),
    "Qwen2-Math-72B-Instruct": (40.1, 68.3, 43.0, 47.9, 79.9, 65.7),
    "Qwen2.5-Math-1.5B-Instruct": (29.4, 65.5, 38.1, 47.7, 57.5, 56.9),
    "Qwen2.5-Math-7B-Instruct": (37.1, 66.8, 41.6, 46.8, 71.9, 62.9),
    "Qwen2.5-Math-72B-Instruct": (44.1, 71.9, 49.0, 49.5, 80.8, 68.2),
}
# Table 4: CMATH, CN Middle School 24, Avg. (with the pooled GaoKao column)
_QWEN_ZH_COLUMNS = ("cmath", "cn_middle_school", "math-suite-zh")
_QWEN_ZH: dict[str, tuple[float, ...]] = {
    "GPT-4o-2024-08-06": (92.5, 60.4, 65.2),
    "DeepSeekMath-7B-RL": (86.7, 67.3, 62.5),
    "DeepSeek-Coder-V2-Lite-Instruct": (89.8, 66.3, 69.1),
    "Internlm2-math-plus-7B": (82.7, 32.7, 50.0),
    "Internlm2-math-plus-20B": (81.3, 33.7, 50.4),
    "Internlm2-math-plus-mixtral8x7B": (85.7, 39.6, 54.2),
    "Mathstral-7B-v0.1": (76.7, 42.6, 50.3),
    "NuminaMath-7B-CoT": (78.2, 60.4, 58.3),
    "NuminaMath-72B-CoT": (87.3, 75.2, 70.1),
    "Llama-3.1-8B-Instruct": (64.8, 43.6, 46.3),
    "Llama-3.1-70B-Instruct": (86.7, 59.4, 62.6),
    "Qwen2-1.5B-Instruct": (65.5, 31.7, 38.1),
    "Qwen2-7B-Instruct": (83.5, 54.5, 57.7),
    "Qwen2-72B-Instruct": (92.2, 74.3, 73.7),
    "Qwen2-Math-1.5B-Instruct": (84.2, 66.3, 65.7),
    "Qwen2-Math-7B-Instruct": (90.0, 69.3, 69.4),
    "Qwen2-Math-72B-Instruct": (92.8, 77.2, 76.6),
    "Qwen2.5-Math-1.5B-Instruct": (89.7, 76.2, 76.1),
    "Qwen2.5-Math-7B-Instruct": (91.8, 73.3, 77.1),
    "Qwen2.5-Math-72B-Instruct": (94.3, 79.2, 82.7),
}

# Qwen2.5-Math report (arXiv:2409.12122) tool-integrated reasoning (TIR), greedy rows, in percent, for the
# `<task>-tir` columns. Only Table 3's MATH cells are transcribed: the values the report and the Qwen blog state
# in their text (the abstract: Qwen2.5-Math-7B-Instruct "Under CoT and TIR settings, it achieves MATH scores of
# 83.6 and 85.3"; https://qwenlm.github.io/blog/qwen2.5-math/: "Qwen2.5-Math-1.5B/7B/72B-Instruct achieve 79.7,
# 85.3, and 87.8 respectively on the MATH benchmark using TIR"). The other TIR cells are absent, not guessed:
# Table 3's GSM8K, Minerva Math, GaoKao 2023 En, OlympiadBench, College Math, MMLU STEM and Avg., and Table 4's
# GaoKao, CMATH, CN Middle School 24 and Avg. have not been read from a source text here.
_QWEN_TIR_EN_COLUMNS = ("math-tir",)
_QWEN_TIR_EN: dict[str, tuple[float, ...]] = {
    "Qwen2.5-Math-1.5B-Instruct": (79.7,),
    "Qwen2.5-Math-7B-Instruct": (85.3,),
    "Qwen2.5-Math-72B-Instruct": (87.8,),
}

# The CoT MATH cell beside it, for the one model whose value a source text states (the report's abstract:
# Qwen2.5-Math-7B-Instruct's "MATH scores of 83.6 and 85.3" under CoT and TIR); Table 3's other MATH and
# GSM8K cells have not been read from a source text here.
_QWEN_COT_MATH: dict[str, tuple[float, ...]] = {"Qwen2.5-Math-7B-Instruct": (83.6,)}

# The protocols behind the rows. ChatGLM-Math paper App. C.1: temperature 0, one greedy run (a max-seq-length of
# 4096, not a max_tokens). AlignBench get_answers.py with config/temperature.json: the temperature by category,
# other parameters (max tokens) at each model's defaults (AlignBench issue #3). Qwen2.5-Math evaluation/sh/eval.sh
# at a45202bd: greedy (temperature 0), one sample, max_tokens_per_call 2048, the qwen25-math-cot prompt; the report
# scores MMLU-STEM and the choice items of the Chinese sets 5-shot (arXiv:2409.12122 section 5).
_MUE_PROTOCOL = {"temperature": 0.0, "samples": 1, "prompt": "the raw question as one user turn"}
_AB_PROTOCOL = {"temperature": None, "samples": 1, "prompt": "the raw question as one user turn"}
_QWEN_PROTOCOL = {"temperature": 0.0, "samples": 1, "max_tokens": 2048, "prompt": "qwen25-math-cot"}
# TIR: the same eval.sh with the qwen25-math-tir prompt; max_tokens_per_call 2048 bounds each call of the chain
_QWEN_TIR_PROTOCOL = {**_QWEN_PROTOCOL, "prompt": "qwen25-math-tir"}
_FIVE_SHOT = ("mmlu_stem", "cn_middle_school", "math-suite-en", "math-suite-zh")


def _accuracy_tables(
    source: str,
    columns: tuple[str, ...],
    rows: Mapping[str, tuple[float, ...]],
    protocol: Mapping[str, Any] = _QWEN_PROTOCOL,
) -> list[PublishedTable]:
    """One table per task (or group) column, its single metric the accuracy, percent stored as a share."""
    return [
        PublishedTable(
            task,
            source,
            None,
            ("accuracy",),
            {model: (values[k] / 100,) for model, values in rows.items()},
            {
                **protocol,
                **({"shots": "published 5-shot on choice items, zero-shot here"} if task in _FIVE_SHOT else {}),
            },
        )  # fmt: skip
        for k, task in enumerate(columns)
    ]


TABLES = (
    PublishedTable(
        "mathusereval", "ChatGLM-Math README leaderboard", "gpt-4-1106-preview", MUE_COLUMNS, _MUE_ROWS, _MUE_PROTOCOL
    ),
    PublishedTable("alignbench", "AlignBench v1.1 README", "gpt-4-0613", ALIGNBENCH_COLUMNS, _AB11_ROWS, _AB_PROTOCOL),
    PublishedTable(
        "alignbench-v1.0", "AlignBench v1.0 README-en", "gpt-4-0613", ALIGNBENCH_COLUMNS, _AB10_ROWS, _AB_PROTOCOL
    ),
    *_accuracy_tables("Qwen2.5-Math report Table 3 (CoT, greedy)", _QWEN_EN_COLUMNS, _QWEN_EN),
    *_accuracy_tables("Qwen2.5-Math report Table 4 (CoT, greedy)", _QWEN_ZH_COLUMNS, _QWEN_ZH),
    *_accuracy_tables("Qwen2.5-Math report abstract (CoT, greedy)", ("math",), _QWEN_COT_MATH),
    *_accuracy_tables(
        "Qwen2.5-Math report Table 3 (TIR, greedy)", _QWEN_TIR_EN_COLUMNS, _QWEN_TIR_EN, _QWEN_TIR_PROTOCOL
    ),
)
MARK = "[published]"


def is_published(row_label: str) -> bool:
    """Whether a table row is a published reference row rather than one of the user's runs."""
    return row_label.endswith(MARK)


def _source(table: PublishedTable, what: str) -> str:
    if table.judge is None:
        return f"{table.task} {MARK}: {table.source} ({what}, accuracy in percent)"
    return f"{table.task} {MARK}: {table.source}, judge {table.judge} ({what}, 1-10)"


def reference_rows(columns: list[str]) -> tuple[list[tuple[str, dict[str, MetricValue]]], list[str]]:
    """Overview rows ``"<model> [published]"`` (Overall) for the tasks among `columns`, and a legend line
    per source."""
    rows: dict[str, dict[str, MetricValue]] = {}
    sources = []
    for table in TABLES:
        if table.task in columns:
            for model, values in table.rows.items():
                headline = table.columns[0] if table.judge is None else "overall"
                rows.setdefault(f"{model} {MARK}", {})[table.task] = MetricValue(headline, values[0], 0)
            sources.append(_source(table, "Overall"))
    ordered = sorted(rows.items(), key=lambda item: (-max(m.value for m in item[1].values()), item[0]))
    return ordered, sorted(sources)


def breakdown_rows(task: str) -> tuple[list[tuple[str, dict[str, MetricValue]]], list[str]]:
    """A task's published breakdown rows, every published column by its metric name, and their source."""
    for table in TABLES:
        if table.task == task:
            rows = [
                (f"{model} {MARK}", {c: MetricValue(c, v, 0) for c, v in zip(table.columns, values, strict=True)})
                for model, values in table.rows.items()
            ]
            return rows, [_source(table, "every published column")]
    return [], []
