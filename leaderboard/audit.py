"""A run's sample-level page (``runs/<run>.html``): every item with its prompt, reference, response,
extracted answer, grades and the judge's critique, so a reader can check any number on the leaderboard.

Read from the run's own records (samples, generations, grades, judgments). Each item is a collapsed
``<details id="s-<sample id>">``: the summary line shows id, category, scores and the extracted answer,
and the filter box matches against it. Long texts are kept whole; the page is as large as the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from mathusereval.records import GROUP_KEYS, Generation, Grade, RunResult, Sample
from mathusereval.results.runs import StoredAnswer, iter_answers
from mathusereval.store import RunStore
from mathusereval.store.guard import check_output, recorded

from .html import facts, page_ends
from .layout import format_cell
from .tables import row_label


def _group(sample: Sample) -> str:
    return " / ".join(str(sample.metadata[k]) for k in GROUP_KEYS if sample.metadata.get(k) not in (None, ""))


def _score(grade: Grade) -> str:
    if grade.score is None:
        return f"{grade.grader}: error"
    css = "right" if grade.correct else "wrong"
    return f'<span class="{css}">{escape(grade.grader)}: {grade.score:g}</span>'


def _pre(title: str, text: str | None) -> str:
    return "" if not text else f"<h4>{escape(title)}</h4><pre>{escape(text)}</pre>"


def _item(answer: StoredAnswer, critiques: Callable[[str], str | None]) -> str:
    sample, generation = answer.sample, answer.generation
    grades = [answer.grades[name] for name in sorted(answer.grades)]
    extracted = next((str(g.details["extracted"]) for g in grades if g.details.get("extracted")), "")
    scores = " · ".join(_score(g) for g in grades) or "not graded"
    index = f"#{generation.n_index}" if generation is not None and generation.n_index else ""
    summary_text = f"{sample.id}{index} {_group(sample)} {extracted}"
    summary = (
        f"<summary>{escape(sample.id + index)} · "
        + (f"{escape(_group(sample))} · " if _group(sample).strip(" -") else "")
        + f"{scores}"
        + (f" · extracted: {escape(extracted)}" if extracted else "")
        + "</summary>"
    )
    prompt = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in sample.messages)
    parts = [_pre("prompt", prompt), _pre("reference", sample.reference)]
    if generation is not None:
        parts.append(_pre("response", generation.text or f"(no answer: {generation.error})"))
        parts.append(_pre("reasoning (not graded)", generation.reasoning))
        parts.extend(_steps(generation))
    for grade in grades:
        detail = {k: v for k, v in grade.details.items() if k in ("extracted", "reference", "reason", "dimensions")}
        note = f"{grade.grader}: score {grade.score}" + (f", error: {grade.error}" if grade.error else "")
        parts.append(_pre(f"grade — {note}", _lines(detail)))
        parts.append(_pre(f"{grade.grader} critique", critiques(str(grade.details.get("key")))))
    anchor = escape(f"s-{sample.id}{index}")
    opening = f'<details class="sample" id="{anchor}" data-filter="{escape(summary_text)}">'
    return f"{opening}{summary}{''.join(parts)}</details>"


def _steps(generation: Generation) -> list[str]:
    """A tool-integrated answer step by step: what the model wrote, the program run, what it was shown."""
    from mathusereval.errors import DataError
    from mathusereval.tir.protocol import ToolStep

    parts: list[str] = []
    for i, raw in enumerate(generation.steps, start=1):
        try:
            step = ToolStep.from_json(raw)
        except DataError as exc:  # a stored record is hostile: shown as unreadable, the page still renders
            parts.append(_pre(f"step {i}: unreadable", str(exc)))
            continue
        parts.append(_pre(f"step {i}: model", step.text or "(empty)"))
        if step.code is not None:
            status = f"exit status {step.exit_status}, {step.seconds:.2f} s"
            parts.append(_pre(f"step {i}: program ({status})", step.code))
            parts.append(_pre(f"step {i}: output shown to the model", step.output or "(empty)"))
    return parts


def _lines(detail: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in detail.items())


def write_run_page(run: RunResult, path: Path, judge_scale: float = 1.0) -> None:
    """Write the page item by item: answer texts are read back one at a time, so memory does not grow with
    the size of the run (written to a temporary file, renamed when complete)."""
    stores = [RunStore(d) for d in run.record_dirs]

    def critiques(key: str) -> str | None:  # read back one at a time, as the answers are
        calls = (store.stored_judge_call(key) for store in stores)
        return next((call.generation.text for call in calls if call is not None), None)

    title = f"{row_label(run)} · {run.manifest.task}"
    headline = ", ".join(f"{m.name} {format_cell(m, judge_scale)}" for m in run.metrics[:3])
    head = [
        f"<h1>{escape(title)}</h1>",
        '<p><a href="../index.html">← leaderboard</a></p>',
        f'<p class="note">{escape(headline)}</p>',
        facts(run),
        '<input id="filter" type="search" placeholder="filter by id, category or answer" aria-label="filter">',
    ]
    start, end = page_ends(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_output(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(start + "\n".join(head))
            for answer in iter_answers(run.record_dirs):  # a sharded run: every shard's records
                fh.write("\n" + _item(answer, critiques))
            fh.write(end)
        os.replace(tmp, path)
        recorded(path)
    finally:
        tmp.unlink(missing_ok=True)
