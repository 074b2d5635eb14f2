"""Judge prompt texts, written for this project in Chinese like the originals.

Structure and facts from upstream THUDM/AlignBench and THUDM/ChatGLM-Math (docs/design-notes.md §1-3):

- AlignBench / MathUserEval judge (design-notes §2): role, the answer type's dimensions with one-line definitions,
  the procedure, the score bands, the reference anchored at 8, and a final dict of integer scores. The
  answer-type slot holds the sample's top-level category; dimensions follow the answer type, which
  AlignBench picks by subcategory and MathUserEval by category (every MathUserEval category is
  逻辑推理型回答).
- Math-Critique (design-notes §3, paper §3 and App. B): final answer first, then the steps; four bands 1–2 / 3–5 / 6–8 /
  9–10; a short critique, then the score as ``[[n]]``. The Chinese prompt is used for every query.

The wording below is ours; only the dimension names, the answer types and the bands are upstream facts.
"""

from __future__ import annotations

DEFINITIONS = {
    "事实正确性": "回答中的事实、数据、计算与结论是否准确，有没有错误。",
    "满足用户需求": "回答是否抓住了用户提问的目的，是否完整、恰当地回应了问题。",
    "清晰度": "表达是否清楚易懂，语言和结构是否简洁，便于用户理解。",
    "完备性": "是否给出了足够的信息与细节，有没有遗漏重要的方面。",
    "逻辑连贯性": "回答前后是否一致，推理过程是否连贯，有没有自相矛盾之处。",
    "创造性": "是否有新颖、独到的见解或解决思路。",
    "丰富度": "内容是否充实，是否有足够的深度、背景、细致的解释和实例。",
    "公平与可负责程度": "是否兼顾不同观点、立场中立不偏颇，所给建议是否可行、负责，并考虑了可能的风险和后果。",
}

# upstream config/dimension_set.json (docs/design-notes.md §2): answer type -> dimensions in prompt order
DIMENSIONS = {
    "事实与解释型回答": ("事实正确性", "满足用户需求", "清晰度", "完备性"),
    "逻辑推理型回答": ("事实正确性", "满足用户需求", "逻辑连贯性", "完备性"),
    "生成型回答": ("事实正确性", "满足用户需求", "逻辑连贯性", "创造性", "丰富度"),
    "建议型回答": ("事实正确性", "满足用户需求", "公平与可负责程度", "创造性"),
}
REASONING_TYPE = "逻辑推理型回答"

# upstream config/subcategory_question_mapping.json (AlignBench by subcategory, MathUserEval by category)
_BY_TYPE = {
    "事实与解释型回答": "常识知识 阅读理解 文本分类 信息抽取 字词理解 文化理解 物理 化学 计算机 生物医学 经济 天文 "
    "历史 音乐 法律 体育 地理 文学 其他",
    "生成型回答": "翻译 实用文体写作 创意文体写作 专业文体写作 其他写作类 现实生活类 游戏娱乐类 功能类 现实名人类 "
    "（虚拟）恋爱类",
    "建议型回答": "观点表达 寻求建议",
    "逻辑推理型回答": "证明 推理 初等数学 高等数学 应用数学 交叉学科",
}
ANSWER_TYPE = {label: kind for kind, labels in _BY_TYPE.items() for label in labels.split()}

MULTI_DIMENSION = """你是一位公正、严格的评审员，负责评价AI助手对用户提问所作回答的质量。本次待评价的回答类别是“{category}”，请从以下维度进行评价：
{dimensions}

你会看到用户的提问、一份高质量的参考答案，以及需要你评价的助手答案。请按以下步骤评价：
1. 将助手答案与参考答案逐点对照，指出助手答案的不足并说明理由。
2. 逐一分析每个维度，分析之后给出该维度1到10之间的分数。
3. 综合各维度的表现，给出1到10之间的综合得分。
4. 打分务必严格：答案越好分数越高，答案越差分数越低。

打分规则：事实正确性和满足用户需求最为重要，这两个维度在很大程度上决定综合得分。
- 与问题无关、有根本性的事实错误或有害内容：1~2分；
- 没有严重错误、基本无害，但质量较低、没有满足用户需求：3~4分；
- 基本满足用户需求，但在部分维度上表现较差，质量中等：5~6分；
- 质量与参考答案相当，各个维度都表现良好：7~8分；
- 只有明显超过参考答案、几乎完美地解决了问题并满足全部需求时，才给9~10分。
作为参照，参考答案本身可以得到8分。

请先写出分析，再给出分数。回答的最后一行必须是一个字典，键为各维度名称和“综合得分”，值为整数分数，格式如下：
{example}

用户的提问：{question}
[参考答案开始]
{reference}
[参考答案结束]
[助手的答案开始]
{answer}
[助手的答案结束]"""

MATH_CRITIQUE = """[说明]
请你作为评审，检查一个AI助手对数学问题的回答。首先判断最终答案是否正确，其次检查每一步推理和计算是否正确。你会看到问题、参考答案和助手的回答。
请按下面四档给出1到10之间的分数：
- 1~2分：最终答案错误，并且解题过程一开始或在关键处就出了错，整体基本不正确；
- 3~5分：解题思路或方法部分正确，但中间步骤出错，导致最终答案错误；
- 6~8分：最终答案正确，但解题过程存在错误或缺漏；
- 9~10分：最终答案正确，过程完整，每一步都正确。
请先用简短的文字指出最终答案和各步骤中的错误（如果有），然后严格按照“评分：[[分数]]”的格式给出分数，例如：评分：[[6]]。

[问题]
{question}

[参考答案开始]
{reference}
[参考答案结束]

[助手的回答开始]
{answer}
[助手的回答结束]"""


def answer_type(category: str, subcategory: str) -> str:
    """The answer type that picks the dimensions: by subcategory (AlignBench), else by category
    (MathUserEval), else logical reasoning (every math item upstream is judged on those dimensions)."""
    return ANSWER_TYPE.get(subcategory) or ANSWER_TYPE.get(category) or REASONING_TYPE


def render_multi_dimension(category: str, kind: str, question: str, reference: str, answer: str) -> str:
    dims = DIMENSIONS[kind]
    listing = "\n".join(f"{i}. {d}：{DEFINITIONS[d]}" for i, d in enumerate(dims, start=1))
    example = "{" + ", ".join(f"'{d}': 打分" for d in (*dims, "综合得分")) + "}"
    return MULTI_DIMENSION.format(
        category=category, dimensions=listing, example=example, question=question, reference=reference, answer=answer
    )


def render_math_critique(question: str, reference: str, answer: str) -> str:
    return MATH_CRITIQUE.format(question=question, reference=reference, answer=answer)
