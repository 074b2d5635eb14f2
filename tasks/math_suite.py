"""The groups of the Qwen2.5-Math suite: ``--tasks math-suite-en`` runs the report's English sets,
``math-suite-zh`` its Chinese ones, ``math-suite`` both plus the suite's other English sets.

The headline of a group is the report's "Avg.": the unweighted mean of its columns' accuracies (Qwen2.5-Math
report, arXiv:2409.12122, Table 3 for English, Table 4 for Chinese). The report's "GaoKao" column pools the
2024 GaoKao I/II papers, GaoKao-Math-QA, GaoKao-Math-Cloze and the 91 collected 2024 problems (section 5),
so that part pools those five sets' items.
"""

import mathusereval as mue

EN = mue.TaskGroup(
    "math-suite-en",
    (
        ("GSM8K", ("gsm8k",)),
        ("MATH", ("math",)),
        ("Minerva Math", ("minerva_math",)),
        ("GaoKao 2023 En", ("gaokao2023en",)),
        ("OlympiadBench", ("olympiadbench",)),
        ("College Math", ("college_math",)),
        ("MMLU STEM", ("mmlu_stem",)),
    ),
    "the Qwen2.5-Math report's English sets (Table 3), macro average",
)
ZH = mue.TaskGroup(
    "math-suite-zh",
    (
        ("GaoKao", ("gaokao2024_I", "gaokao2024_II", "gaokao_math_qa", "gaokao_math_cloze", "gaokao2024_mix")),
        ("CMATH", ("cmath",)),
        ("CN Middle School 24", ("cn_middle_school",)),
    ),
    "the Qwen2.5-Math report's Chinese sets (Table 4; GaoKao pools five sets), macro average",
)
ALL = mue.TaskGroup(
    "math-suite",
    (
        *EN.parts,
        *ZH.parts,
        *((name, (name,)) for name in ("sat_math", "aqua", "svamp", "asdiv", "mawps", "carp_en")),
    ),
    "every set of the Qwen2.5-Math evaluation suite (English and Chinese), macro average over the columns",
)
for group in (EN, ZH, ALL):
    mue.register("groups", group.name, group)
