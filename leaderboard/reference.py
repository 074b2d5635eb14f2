"""Published headline numbers, shown as labelled reference rows next to a user's own runs (``--reference``).

Copied from the upstream READMEs: MathUserEval (THUDM/ChatGLM-Math README leaderboard = paper
Table 15, judge GPT-4-1106-Preview), AlignBench v1.1 (THUDM/AlignBench README at 5b79d4a8, judge gpt-4-0613) and
AlignBench v1.0 (README-en.md at acf7a469, judge gpt-4-0613). Only the Overall column: the breakdowns are in
those tables, and the official aggregation reproduces them from their category means (tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from mathusereval.records import MetricValue


@dataclass(frozen=True)
class Published:
    task: str
    model: str
    overall: float
    source: str
    judge: str


_MUE = ("ChatGLM-Math README leaderboard", "gpt-4-1106-preview")
_AB11 = ("AlignBench v1.1 README", "gpt-4-0613")
_AB10 = ("AlignBench v1.0 README-en", "gpt-4-0613")

PUBLISHED = (
    Published("mathusereval", "GPT-4-0125-Preview", 5.79, *_MUE),
    Published("mathusereval", "GPT-4-1106-Preview", 5.73, *_MUE),
    Published("mathusereval", "GLM-4", 5.11, *_MUE),
    Published("mathusereval", "ChatGLM3-32B-SFT-2312 + RFT&DPO", 4.23, *_MUE),
    Published("mathusereval", "GPT-4-0613", 4.14, *_MUE),
    Published("mathusereval", "ChatGLM3-32B-SFT-2312 + RFT", 4.01, *_MUE),
    Published("mathusereval", "Qwen-72B-Chat", 3.87, *_MUE),
    Published("mathusereval", "GPT-3.5-Turbo-0613", 3.42, *_MUE),
    Published("mathusereval", "ChatGLM3-32B-SFT-2312", 3.39, *_MUE),
    Published("mathusereval", "Claude-2", 3.29, *_MUE),
    Published("mathusereval", "DeepSeek-Chat-67B", 3.24, *_MUE),
    Published("mathusereval", "Yi-34B-Chat", 2.64, *_MUE),
    Published("alignbench", "GPT-4o", 8.38, *_AB11),
    Published("alignbench", "通义千问2.5", 8.17, *_AB11),
    Published("alignbench", "GPT-4 Turbo-20240409", 8.0, *_AB11),
    Published("alignbench", "Abab 6.5(MoE)", 7.94, *_AB11),
    Published("alignbench", "GLM-4-0520", 7.89, *_AB11),
    Published("alignbench", "Sensechat 5.0", 7.89, *_AB11),
    Published("alignbench", "Qwen 1.5-110B-Chat", 7.86, *_AB11),
    Published("alignbench", "文心一言4.0", 7.85, *_AB11),
    Published("alignbench", "Yi-Large", 7.8, *_AB11),
    Published("alignbench", "DeepSeek-V2", 7.72, *_AB11),
    Published("alignbench", "GLM-4-Air", 7.58, *_AB11),
    Published("alignbench", "Claude 3 Opus", 7.53, *_AB11),
    Published("alignbench", "Gemini 1.5 Pro", 7.47, *_AB11),
    Published("alignbench", "Baichuan 4", 7.45, *_AB11),
    Published("alignbench", "Llama 3-70B", 7.42, *_AB11),
    Published("alignbench", "Gemini 1.5 Flash", 7.38, *_AB11),
    Published("alignbench", "WizardLM-2-8x22B", 7.34, *_AB11),
    Published("alignbench", "moonshot-v1-8k", 7.31, *_AB11),
    Published("alignbench", "Step-1-32k", 7.08, *_AB11),
    Published("alignbench", "讯飞星火3.5", 6.9, *_AB11),
    Published("alignbench", "Claude 3 Sonnet", 6.71, *_AB11),
    Published("alignbench", "Mixtral-8x22B (MoE)", 6.48, *_AB11),
    Published("alignbench", "Claude 3 Haiku", 6.38, *_AB11),
    Published("alignbench-v1.0", "gpt-4-1106-preview", 8.01, *_AB10),
    Published("alignbench-v1.0", "gpt-4-0613", 7.53, *_AB10),
    Published("alignbench-v1.0", "chatglm-turbo（智谱清言）", 6.24, *_AB10),
    Published("alignbench-v1.0", "erniebot-3.0（文心一言）", 6.14, *_AB10),
    Published("alignbench-v1.0", "gpt-3.5-turbo-0613", 6.08, *_AB10),
    Published("alignbench-v1.0", "chatglm-pro（智谱清言）", 5.83, *_AB10),
    Published("alignbench-v1.0", "spark_desk_v2（讯飞星火）", 5.74, *_AB10),
    Published("alignbench-v1.0", "qwen-14b-chat", 5.72, *_AB10),
    Published("alignbench-v1.0", "baichuan2-13b-chat", 5.25, *_AB10),
    Published("alignbench-v1.0", "chatglm3-6b", 4.97, *_AB10),
    Published("alignbench-v1.0", "baichuan2-7b-chat", 4.97, *_AB10),
    Published("alignbench-v1.0", "internlm-20b", 4.96, *_AB10),
    Published("alignbench-v1.0", "qwen-7b-chat", 4.91, *_AB10),
    Published("alignbench-v1.0", "chatglm2-6b", 4.48, *_AB10),
    Published("alignbench-v1.0", "internlm-chat-7b", 3.65, *_AB10),
    Published("alignbench-v1.0", "Chinese-llama-2-7b-chat", 3.57, *_AB10),
    Published("alignbench-v1.0", "llama-2-13b-Chinese-chat", 3.35, *_AB10),
)


MARK = "[published]"


def is_published(row_label: str) -> bool:
    """Whether a table row is a published reference row rather than one of the user's runs."""
    return row_label.endswith(MARK)


def reference_rows(columns: list[str]) -> tuple[list[tuple[str, dict[str, MetricValue]]], list[str]]:
    """Rows ``"<model> [published]"`` for the tasks among `columns`, and a legend line per source."""
    rows: dict[str, dict[str, MetricValue]] = {}
    sources: dict[str, str] = {}
    for row in PUBLISHED:
        if row.task in columns:
            label = f"{row.model} {MARK}"
            rows.setdefault(label, {})[row.task] = MetricValue("overall", row.overall, 0)
            sources[row.task] = f"{row.task} {MARK}: {row.source}, judge {row.judge} (Overall, 1-10)"
    return sorted(rows.items(), key=lambda item: (-max(m.value for m in item[1].values()), item[0])), [
        sources[task] for task in sorted(sources)
    ]
