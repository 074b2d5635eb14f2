"""Training sets from judged runs: the data round of ChatGLM-Math's Self-Critique pipeline.

The paper (Xu et al., "ChatGLM-Math: Improving Math Problem-Solving in Large Language Models with a
Self-Critique Pipeline", arXiv:2404.02893, the Self-Critique pipeline) samples many answers per problem, scores them
with
Math-Critique, keeps the good ones for rejective fine-tuning (RFT) and pairs high- against low-scored
answers of the same problem for DPO. ``mue-eval export`` does that from stored runs:

- **rft**: per problem, the answers that pass, exact and near-exact duplicates removed (text compared
  after NFKC, case folding and removing all white space), at most ``per_problem`` of them, best first.
  Rows are TRL's conversational ``messages`` or its ``prompt``/``completion`` pair.
- **dpo**: per problem, (chosen, rejected) pairs of a passing and a failing answer whose judge scores
  differ by at least ``margin`` (rule-graded runs: right against wrong), widest gap first, at most
  ``pairs_per_problem`` pairs and no answer in more than ``max_reuse`` of them. TRL's preference format
  (``prompt``, ``chosen``, ``rejected``; conversational or plain text); ``schema="openrlhf"`` adds the
  ``margin`` field that OpenRLHF's reward/DPO dataset reads (openrlhf/datasets/reward_dataset.py).
- **kto**: TRL's unpaired format (``prompt``, ``completion``, ``label``).

What decides a pass is said in the manifest: the judge (score >= ``min_score``), the rule grader (its
verdict against the reference), or both agreeing. Generation errors, truncated answers
(``finish_reason=length``), unparseable judgments and answers without a verdict are never positives; a
truncated answer with a failing verdict may still be a negative. Every export writes a manifest beside the
data: the runs with their fingerprints and judges, the selection, and counts kept and dropped per reason
and per category. The output is a pure function of the runs and the options: a rerun writes the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from ..__about__ import __version__
from ..errors import ConfigError, MueError
from ..records import Message
from ..store.guard import check_output, write_output
from ..store.jsonl import json_text
from .candidates import Candidate, Selection, assess
from .runs import RunParts, find_runs, iter_answers, read_manifest, run_directory_of

Format = Literal["rft", "dpo", "kto"]
FORMATS: tuple[Format, ...] = ("rft", "dpo", "kto")


def _unique(candidates: Iterable[Candidate], dropped: Counter[str], seen: set[str] | None = None) -> list[Candidate]:
    """First of each normalised text (callers sort best first); later copies count as duplicates."""
    seen = set() if seen is None else seen
    kept = []
    for c in candidates:
        if c.norm in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(c.norm)
        kept.append(c)
    return kept


def _best_first(c: Candidate) -> tuple[float, int]:
    return (-c.score, c.position)


def _worst_first(c: Candidate) -> tuple[float, int]:
    return (c.score, c.position)


def _prompt(sample_messages: Sequence[Message], chat: bool) -> Any:
    if chat:
        return [dict(m) for m in sample_messages]
    return "\n\n".join(m["content"] for m in sample_messages)


def _reply(text: str, chat: bool) -> Any:
    return [{"role": "assistant", "content": text}] if chat else text


def _tool_outputs(c: Candidate) -> dict[str, Any]:
    """A tool-integrated answer's program outputs in the exported text, as [start, end) character spans:
    the harness wrote them, so a trainer masks them out of the loss (a model trained on them learns to
    invent outputs)."""
    from ..errors import DataError
    from ..tir.protocol import ToolStep, harness_spans, replay

    generation = c.answer.generation
    if generation is None or not generation.steps:
        return {}
    try:
        steps = [ToolStep.from_json(step) for step in generation.steps]
    except DataError:
        return {"tool_output_spans": None}
    if replay(steps) != generation.text:  # a thought split off (--think strip): the spans would not line up
        return {"tool_output_spans": None}
    return {"tool_output_spans": [list(span) for span in harness_spans(steps)]}


def _meta(c: Candidate) -> dict[str, Any]:
    a = c.answer
    return {
        **_tool_outputs(c),
        "model": a.manifest.model,
        "task": a.manifest.task,
        "run_id": a.manifest.run_id,
        "sample_id": a.sample.id,
        "n_index": a.n_index,
        "category": a.group,
        "judge_score": c.judge_score,
        "rule_correct": c.rule_correct,
    }


class Export:
    """One export over several runs: decides, selects, and counts every answer's fate."""

    def __init__(self, fmt: Format, sel: Selection) -> None:
        self.fmt, self.sel = fmt, sel
        self.dropped: Counter[str] = Counter()
        self.rows: list[dict[str, Any]] = []
        self.used: set[tuple[str, str, int]] = set()
        self.per_category: dict[str, Counter[str]] = defaultdict(Counter)

    def _use(self, *candidates: Candidate) -> None:
        for c in candidates:
            self.used.add((str(c.answer.directory), c.answer.sample.id, c.answer.n_index))

    def _row(self, first: Candidate, fields: dict[str, Any], meta: dict[str, Any]) -> None:
        row = {**fields, "meta": meta} if self.sel.provenance else fields
        self.rows.append(row)
        self.per_category[first.answer.group]["rows"] += 1

    def problem(self, candidates: list[Candidate]) -> None:
        """Rows from the candidates of one problem (same task, sample and prompt)."""
        chat, messages = self.sel.chat, candidates[0].answer.sample.messages
        prompt = _prompt(messages, chat)
        before = len(self.rows)
        passing = sorted((c for c in candidates if c.passed), key=_best_first)
        failing = sorted((c for c in candidates if not c.passed), key=_worst_first)
        if self.fmt == "rft":
            self.dropped["did not pass"] += len(failing)
            kept = _unique(passing, self.dropped)
            self.dropped["over the per-problem cap"] += max(0, len(kept) - self.sel.per_problem)
            for c in kept[: self.sel.per_problem]:
                self._use(c)
                fields = (
                    {"messages": [*prompt, *_reply(c.text, True)]} if chat else {"prompt": prompt, "completion": c.text}
                )
                self._row(c, fields, _meta(c))
        else:
            chosen = _unique(passing, self.dropped)
            rejected = self._conflicts_removed(_unique(failing, self.dropped), chosen)
            if self.fmt == "dpo":
                self._pairs(prompt, chosen, rejected)
            else:
                for label, group in ((True, chosen), (False, rejected)):
                    self.dropped["over the per-problem cap"] += max(0, len(group) - self.sel.per_problem)
                    for c in group[: self.sel.per_problem]:
                        self._use(c)
                        self._row(c, {"prompt": prompt, "completion": _reply(c.text, chat), "label": label}, _meta(c))
        if len(self.rows) > before:
            self.per_category[candidates[0].answer.group]["problems"] += 1

    def _conflicts_removed(self, rejected: list[Candidate], chosen: list[Candidate]) -> list[Candidate]:
        """The same text cannot be both chosen and rejected (two runs judged it differently)."""
        passing = {c.norm for c in chosen}
        kept = [c for c in rejected if c.norm not in passing]
        self.dropped["same text judged both ways"] += len(rejected) - len(kept)
        return kept

    def _pairs(self, prompt: Any, chosen: list[Candidate], rejected: list[Candidate]) -> None:
        judged = self.sel.decide != "rule"
        options = sorted(
            (
                (c.score - r.score, i, j)
                for i, c in enumerate(chosen)
                for j, r in enumerate(rejected)
                if not judged or c.score - r.score >= self.sel.margin
            ),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        uses: Counter[int] = Counter()
        taken = 0
        for gap, i, j in options:
            if taken == self.sel.pairs_per_problem:
                break
            if uses[i] >= self.sel.max_reuse or uses[~j] >= self.sel.max_reuse:
                continue
            uses[i] += 1
            uses[~j] += 1
            taken += 1
            c, r = chosen[i], rejected[j]
            self._use(c, r)
            fields = {
                "prompt": prompt,
                "chosen": _reply(c.text, self.sel.chat),
                "rejected": _reply(r.text, self.sel.chat),
            }
            if self.sel.schema == "openrlhf":
                fields["margin"] = gap
            self._row(c, fields, {"chosen": _meta(c), "rejected": _meta(r), "margin": gap})
        unpaired = len(chosen) + len(rejected) - len(uses)  # chosen i counted as i, rejected j as ~j (< 0)
        self.dropped["no pair within the margin and caps"] += unpaired


def _judge_name(manifests: Sequence[Any], sel: Selection) -> str | None:
    if sel.judge is not None:
        return sel.judge
    for manifest in manifests:
        for name in manifest.graders:
            if name in manifest.judges:
                return str(name)
    return None


def _resolve(runs: Sequence[RunParts], sel: Selection) -> tuple[Selection, list[Any]]:
    """`sel` with its judge named and ``auto`` decided; every run must hold the grades that decide."""
    manifests = [read_manifest(parts) for parts in runs]
    judge = _judge_name(manifests, sel)
    decide = sel.decide if sel.decide != "auto" else ("judge" if judge else "rule")
    sel = dataclasses.replace(sel, judge=judge, decide=decide)
    needs = ([sel.judge] if decide in ("judge", "both") else []) + ([sel.rule] if decide in ("rule", "both") else [])
    for parts, manifest in zip(runs, manifests, strict=True):
        directory = run_directory_of(parts)
        for grader in needs:
            if grader is None:
                raise ConfigError("--decide judge needs judge grades: none of the runs was graded by an LLM judge")
            if grader not in manifest.graders:
                raise ConfigError(
                    f"{directory} has no {grader!r} grades (graded by {', '.join(manifest.graders) or 'nothing'}): "
                    f"grade it first, e.g. mue-eval grade {directory} --graders {grader},{sel.rule} --judge MODEL"
                )
    return sel, manifests


def _decided_by(sel: Selection) -> str:
    judge = f"judge {sel.judge} (score >= {sel.min_score:g})"
    rule = f"rule grader {sel.rule} (correct against the reference)"
    return {"judge": judge, "rule": rule, "both": f"{judge} and {rule} agreeing"}[sel.decide]


def export(
    paths: Sequence[Path], fmt: Format, out: Path, sel: Selection = Selection()
) -> tuple[Path, Path, dict[str, Any]]:
    """Write the training set and its manifest; returns (data file, manifest file, manifest)."""
    data_path, manifest_path = output_paths(out, fmt)
    for path in (data_path, manifest_path):  # refused before any run is read
        check_output(path)
    runs = [parts for p in paths for parts in find_runs(p)]
    if len({os.path.realpath(d) for parts in runs for d in parts}) != sum(map(len, runs)):
        raise ConfigError("a run was given twice: each run's answers would count double")
    sel, manifests = _resolve(runs, sel)
    job = Export(fmt, sel)
    problems: dict[tuple[str, str, str], list[Candidate]] = {}
    answers = 0
    used: list[tuple[RunParts, Any]] = []
    skipped: list[str] = []
    for parts, run_manifest in zip(runs, manifests, strict=True):
        try:  # a run with a record that cannot be read is left out whole, and said
            found, dropped, count = _assessed(parts, answers, sel)
        except MueError as exc:
            skipped.append(str(exc))
            print(f"mue-eval: warning: skipped a run: {exc}", file=sys.stderr)
            continue
        answers += count
        job.dropped.update(dropped)
        for key, verdict in found:
            problems.setdefault(key, []).append(verdict)
        used.append((parts, run_manifest))
    for candidates in problems.values():
        job.problem(candidates)
    # lone surrogates (a hostile stored answer) become "?" rather than invalid UTF-8
    data = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in job.rows).encode(
        "utf-8", "replace"
    )
    manifest = {
        "format": fmt,
        "layout": "conversational" if sel.chat else "text",
        "schema": sel.schema,
        "decided_by": _decided_by(sel),
        "selection": dataclasses.asdict(sel),
        "runs": [_run_entry(run_directory_of(parts), m) for parts, m in used],
        "skipped_runs": skipped,
        "counts": {
            "answers": answers,
            "rows": len(job.rows),
            "answers_used": len(job.used),
            "classes": _classes(fmt, job.rows),
            "problems": len(problems),
            "dropped": dict(sorted((k, v) for k, v in job.dropped.items() if v)),
        },
        "per_category": {k: dict(sorted(v.items())) for k, v in sorted(job.per_category.items())},
        "data_file": data_path.name,
        "data_sha256": hashlib.sha256(data).hexdigest(),
        "mathusereval_version": __version__,
    }
    write_output(data_path, data)
    write_output(manifest_path, json_text(manifest))
    return data_path, manifest_path, manifest


def _assessed(
    parts: RunParts, before: int, sel: Selection
) -> tuple[list[tuple[tuple[str, str, str], Candidate]], Counter[str], int]:
    """One run's candidates by problem key, its answers dropped by reason, and how many answers it has."""
    found: list[tuple[tuple[str, str, str], Candidate]] = []
    dropped: Counter[str] = Counter()
    count = 0
    for answer in iter_answers(parts):
        count += 1
        verdict = assess(answer, before + count, sel)
        if isinstance(verdict, str):
            dropped[verdict] += 1
            continue
        prompt = json.dumps(answer.sample.messages, ensure_ascii=False, sort_keys=True)
        found.append(((answer.manifest.task, answer.sample.id, hashlib.sha256(prompt.encode()).hexdigest()), verdict))
    return found, dropped, count


def _classes(fmt: Format, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Rows per class: passing/failing answers (KTO's labels; RFT rows all pass, DPO rows pair both)."""
    if fmt == "kto":
        return {"pass": sum(bool(r["label"]) for r in rows), "fail": sum(not r["label"] for r in rows)}
    if fmt == "dpo":
        return {"pairs": len(rows)}
    return {"pass": len(rows)}


def _run_entry(directory: Path, manifest: Any) -> dict[str, Any]:
    return {
        "directory": str(directory),
        "run_id": manifest.run_id,
        "model": manifest.model,
        "task": manifest.task,
        "task_version": manifest.task_version,
        "fingerprint": manifest.fingerprint,
        "data_sha256": manifest.data_sha256,
        "prompt_sha256": manifest.prompt_sha256,
        "params": manifest.params,
        "graders": list(manifest.graders),
        "judges": {
            name: {k: v for k, v in judge.items() if k in ("judge_model", "judge_backend", "style", "prompt_sha256")}
            for name, judge in manifest.judges.items()
        },
    }


def output_paths(out: Path, fmt: Format) -> tuple[Path, Path]:
    """``X.jsonl`` writes there with ``X.manifest.json`` beside it; anything else is a directory holding
    ``<format>.jsonl`` and ``<format>.manifest.json``."""
    if out.suffix == ".jsonl":
        return out, out.with_name(out.name.removesuffix(".jsonl") + ".manifest.json")
    return out / f"{fmt}.jsonl", out / f"{fmt}.manifest.json"
