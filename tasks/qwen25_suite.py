"""The Qwen2.5-Math evaluation suite: what its sets share (data pins, prompt, options, grading).

Protocol of QwenLM/Qwen2.5-Math at commit a45202bd, ``evaluation/``:
- data: ``evaluation/data/<set>/test.jsonl``, read as ``data_loader.py::load_data`` reads them (the file's
  ``idx`` or, where a set has none, the row's position as the id);
- question and gold answer per set: ``parser.py::parse_question`` and ``parser.py::parse_ground_truth``
  (the set modules say which fields each uses);
- prompt: ``utils.py`` PROMPT_TEMPLATES["qwen25-math-cot"], a system turn "Please reason step by step, and
  put your final answer within \\boxed{}." before the question, greedy decoding (``sh/eval.sh``:
  temperature 0, top-p 1);
- grading: multiple-choice items compare the option letter (``math_eval.py`` after ``run_execute``: a
  letter gold takes the letter of the prediction, several letters for multi-answer items), the rest
  ``grader.py::math_equal``; we use our answer grader there and the ``choice`` grader for letters.

One difference, on purpose: the report scores multiple-choice sets (MMLU-STEM, the choice items of GaoKao
and CN Middle School 24) 5-shot (Qwen2.5-Math report, arXiv:2409.12122, section 5 and Table 3); every set
here is zero-shot, as ``eval.sh`` runs most of them, so those columns compare with the report's within a
few points, not exactly.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mathusereval as mue

COMMIT = "a45202bd16f1ec06f433442dc1152d0074773465"
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
PARAMS = mue.GenerationParams(temperature=0.0, max_tokens=2048)

Row = dict[str, Any]


def pinned(name: str, sha256: str) -> str:
    """``qwen25-math/<set>/test.jsonl``, downloaded from the pinned commit when no data directory is given."""
    return mue.pinned_source(
        f"qwen25-math/{name}/test.jsonl",
        f"https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/{COMMIT}/evaluation/data/{name}/test.jsonl",
        sha256,
    )


def text(row: Row, key: str) -> str:
    """A text field of a data row; anything else is a `ValueError` naming the field (file:line is added)."""
    value = row.get(key)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be text, got {type(value).__name__}")
    return value


def number(row: Row, key: str) -> str:
    """A numeric gold answer as text, ``43.0`` written ``43`` (the sets store integers as floats)."""
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"field {key!r} must be a number, got {type(value).__name__}")
    if isinstance(value, str):
        return value.strip()
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def letters_of(options: list[str]) -> dict[str, str]:
    """``["A)5", "B)6"]`` or ``["x", "y"]`` -> {letter: option text}."""
    found = {}
    for i, option in enumerate(options):
        match = re.match(r"\s*\(?([A-E])\)\s*", option)
        found[match.group(1) if match else "ABCDE"[i]] = option[match.end() :] if match else option
    return found


_INLINE_OPTION = re.compile(r"(?:^|(?<=[\s(（:：]))([A-E])\s*[.．、:：)]\s*")


def inline_options(question: str) -> dict[str, str]:
    """Options written inside the question (``A.-2  B.0  C. 3  D. -1/2``), when all of A-D are there."""
    marks = list(_INLINE_OPTION.finditer(question))
    order = [m.group(1) for m in marks]
    for start in range(len(order) - 3):
        if order[start : start + 4] == ["A", "B", "C", "D"]:
            picked = marks[start : start + 4] + [m for m in marks[start + 4 : start + 5] if m.group(1) == "E"]
            ends = [m.start() for m in picked[1:]] + [len(question)]
            return {m.group(1): question[m.end() : end].strip() for m, end in zip(picked, ends, strict=True)}
    return {}


def choice_or_answer(row: Row) -> str:
    """``parse_ground_truth`` for sets that mix choice and open items: ``choice_answer`` when set, else ``answer``."""
    return text(row, "choice_answer").strip() or text(row, "answer")


def options_if_choice(row: Row) -> dict[str, str]:
    """The options written in the question of a choice item (none for an open item of a mixed set)."""
    return inline_options(text(row, "question")) if text(row, "choice_answer") else {}


def with_options(row: Row, options: dict[str, str], header: str = "Answer Choices") -> str:
    """``parse_question``: the question, then ``Answer Choices: (A) x (B) y`` (``选项:`` for GaoKao QA)."""
    listed = " ".join(f"({letter}) {body}" for letter, body in options.items())
    return f"{text(row, 'question').strip()}\n{header}: {listed}"


def yes_no_hint(question: str, gold: str) -> str:
    """``parse_question``: a true/false or yes/no gold adds the hint to the question."""
    lowered = gold.strip().lower()
    if lowered in ("true", "false"):
        return f"{question} (True or False)"
    if lowered in ("yes", "no"):
        return f"{question} (Yes or No)"
    return question


def task(
    name: str,
    sha256: str,
    description: str,
    question: Callable[[Row], str],
    gold: Callable[[Row], str],
    options: Callable[[Row], dict[str, str]] | None = None,
    graders: tuple[str, ...] = ("answer",),
) -> mue.Task:
    """One set of the suite as a task, registered under `name`."""
    relative = pinned(name, sha256)

    def prepare(_: Path | None) -> Callable[[Row], mue.Sample]:
        position = itertools.count()

        def to_sample(row: Row) -> mue.Sample:
            index = next(position)
            ident = row.get("idx", row.get("id", index))
            reference = gold(row)
            asked = yes_no_hint(question(row).strip(), reference)
            metadata: dict[str, Any] = {"question": asked}
            if options is not None:
                metadata["options"] = options(row)
            for key in ("type", "subfield", "data_topic", "grade", "solution_type"):
                if isinstance(row.get(key), str | int) and not isinstance(row.get(key), bool):
                    metadata["category"] = str(row[key])
                    break
            prompt = ({"role": "system", "content": SYSTEM}, {"role": "user", "content": asked})
            return mue.Sample(name, str(ident), prompt, reference, metadata)

        return to_sample

    built = mue.Task(
        name=name,
        version="1",
        load=mue.jsonl_loader(relative, prepare=prepare, task=name),
        graders=graders,
        aggregate=mue.accuracy,
        params=PARAMS,
        description=description,
    )
    mue.register("tasks", name, built)
    return built
