"""How far two graders agree on the same answers: ``mue-eval agreement A B``.

This is how ChatGLM-Math validated Math-Critique (arXiv:2404.02893, §6.4, Table 5), and how a user
decides whether a cheaper judge can stand in for an expensive one. A and B are ``RUN_DIR[:GRADER]``: two
runs holding the same answers graded by different judges (copy a run and ``mue-eval grade`` the copy with
another ``--judge``), or one run and two of its graders (a judge against the answer grader).

Answers are matched by (sample id, answer index) and must have the same text; either side's missing or
failed grades are counted, not compared. Two judges are compared on their 1–10 scores (ordinal: exact,
within one point, quadratic-weighted Cohen's kappa, Spearman); a judge against a rule grader on the
pass/fail verdict (the judge's pass mark, score >= 7), where kappa is unweighted.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import ConfigError
from ..records import RunManifest
from ..store.guard import write_output
from ..store.jsonl import json_text
from .runs import RunParts, StoredAnswer, find_runs, iter_answers, read_manifest, run_directory_of, run_page_name


@dataclass(frozen=True)
class Side:
    parts: RunParts
    grader: str
    manifest: RunManifest

    @property
    def directory(self) -> Path:
        return run_directory_of(self.parts)

    @property
    def is_judge(self) -> bool:
        return self.grader in self.manifest.judges

    @property
    def label(self) -> str:
        judge = self.manifest.judges.get(self.grader, {}).get("judge_model")
        return f"{self.grader} ({judge})" if judge else self.grader


def parse_side(spec: str) -> Side:
    """``RUN_DIR`` (its primary grader) or ``RUN_DIR:GRADER``."""
    path, grader = Path(spec), None
    if not path.is_dir() and ":" in spec:
        head, _, grader = spec.rpartition(":")
        path = Path(head)
    runs = find_runs(path)
    if len(runs) != 1:
        raise ConfigError(f"{path} holds {len(runs)} runs; name one run directory")
    manifest = read_manifest(runs[0])
    grader = grader or (manifest.graders[0] if manifest.graders else None)
    if grader is None or grader not in manifest.graders:
        raise ConfigError(f"{path} has no grades by {grader!r} (graded by: {', '.join(manifest.graders) or 'none'})")
    return Side(runs[0], grader, manifest)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # ties share their average rank
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's correlation of the ranks (ties averaged); None when a side is constant."""
    ra, rb = _ranks(a), _ranks(b)
    n = len(ra)
    if n < 2:
        return None
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return None if va == 0 or vb == 0 else cov / math.sqrt(va * vb)


def cohen_kappa(a: Sequence[float], b: Sequence[float], weighted: bool) -> float | None:
    """Cohen's kappa over the values both sides used; quadratic weights (value distance squared, scaled to
    the range) when `weighted`. None when chance agreement is total (both sides constant and equal)."""
    n = len(a)
    if n == 0:
        return None
    values = sorted(set(a) | set(b))
    span = (values[-1] - values[0]) or 1.0

    def weight(x: float, y: float) -> float:
        return ((x - y) / span) ** 2 if weighted else float(x != y)

    observed = Counter(zip(a, b, strict=True))
    count_a, count_b = Counter(a), Counter(b)
    disagree_observed = sum(weight(x, y) * c for (x, y), c in observed.items()) / n
    disagree_expected = sum(weight(x, y) * count_a[x] * count_b[y] for x in values for y in values) / n**2
    return None if disagree_expected == 0 else 1 - disagree_observed / disagree_expected


def _stats(pairs: Sequence[tuple[float, float]], ordinal: bool) -> dict[str, Any]:
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    n = len(pairs)
    return {
        "n": n,
        "exact": sum(x == y for x, y in pairs) / n if n else None,
        "within_1": sum(abs(x - y) <= 1 for x, y in pairs) / n if n else None,
        "kappa": cohen_kappa(a, b, weighted=ordinal),
        "kappa_weights": "quadratic" if ordinal else "none",
        "spearman": spearman(a, b),
    }


def _value(answer: StoredAnswer, side: Side, ordinal: bool) -> float | None:
    grade = answer.grades.get(side.grader)
    if grade is None or grade.score is None:
        return None
    if ordinal:
        return grade.score
    return None if grade.correct is None else float(grade.correct)


def _text_id(answer: StoredAnswer) -> str | None:
    gen = answer.generation
    return None if gen is None or not gen.ok else hashlib.sha256(gen.text.encode()).hexdigest()


def _anchor(answer: StoredAnswer) -> str:
    """The item's anchor on its run page (leaderboard/audit.py): ``s-<id>``, ``#<n>`` after the first answer."""
    return f"s-{answer.sample.id}" + (f"#{answer.n_index}" if answer.n_index else "")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def compare(a: Side, b: Side, top: int = 20) -> dict[str, Any]:
    """The agreement report of two graders on the answers both hold."""
    ordinal = a.is_judge and b.is_judge
    answers_b = {(x.sample.id, x.n_index): x for x in iter_answers(b.parts)}
    counts: Counter[str] = Counter()
    pairs: list[tuple[float, float]] = []
    by_group: dict[str, list[tuple[float, float]]] = defaultdict(list)
    rows: list[dict[str, Any]] = []
    for x in iter_answers(a.parts):
        counts["answers"] += 1
        y = answers_b.get((x.sample.id, x.n_index))
        if y is None or _text_id(x) is None:
            counts["not in both runs" if y is None else "no answer"] += 1
            continue
        if _text_id(x) != _text_id(y):
            counts["different answer text"] += 1
            continue
        va, vb = _value(x, a, ordinal), _value(y, b, ordinal)
        if va is None or vb is None:
            counts[f"no score from {a.grader if va is None else b.grader}"] += 1
            continue
        pairs.append((va, vb))
        by_group[x.group].append((va, vb))
        rows.append(
            {
                "sample_id": x.sample.id,
                "n_index": x.n_index,
                "category": x.group,
                "a": va,
                "b": vb,
                "link": f"runs/{run_page_name(a.manifest, a.directory)}.html#{quote(_anchor(x), safe='')}",
            }
        )
    confusion: dict[str, dict[str, int]] = defaultdict(dict)
    for (va, vb), c in sorted(Counter(pairs).items()):
        confusion[f"{va:g}"][f"{vb:g}"] = c
    worst = sorted((r for r in rows if r["a"] != r["b"]), key=lambda r: -abs(r["a"] - r["b"]))[:top]
    return {
        "a": {"run": str(a.directory), "grader": a.grader, "label": a.label},
        "b": {"run": str(b.directory), "grader": b.grader, "label": b.label},
        "scale": "judge scores 1-10" if ordinal else "pass/fail verdicts (judge: score >= its pass mark)",
        "counts": dict(counts),
        "overall": _stats(pairs, ordinal),
        "per_category": {g: _stats(p, ordinal) for g, p in sorted(by_group.items())},
        "confusion": confusion,
        "largest_disagreements": worst,
    }


def to_markdown(report: dict[str, Any]) -> str:
    a, b, o = report["a"], report["b"], report["overall"]
    ordinal = o["kappa_weights"] == "quadratic"  # two judges' 1-10 scores; else pass/fail verdicts
    head = ["", "n", "same score" if ordinal else "same verdict", *(["within 1 point"] if ordinal else [])]
    head += ["Cohen's kappa" + (" (quadratic weights)" if ordinal else ""), "Spearman"]
    lines = [
        f"# Agreement: {a['label']} vs {b['label']}",
        "",
        f"A: `{a['run']}` · B: `{b['run']}` · compared on {report['scale']}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, s in [("overall", o), *report["per_category"].items()]:
        cells = [name, str(s["n"]), _fmt(s["exact"]), *([_fmt(s["within_1"])] if ordinal else [])]
        lines.append("| " + " | ".join([*cells, _fmt(s["kappa"]), _fmt(s["spearman"])]) + " |")
    columns = sorted({v for row in report["confusion"].values() for v in row}, key=float)
    lines += ["", "## Confusion (rows: A, columns: B)", "", "| A \\ B | " + " | ".join(columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    for va, row in report["confusion"].items():
        lines.append(f"| {va} | " + " | ".join(str(row.get(c, 0)) for c in columns) + " |")
    lines += ["", "## Largest disagreements", "", "| item | category | A | B |", "|---|---|---|---|"]
    for r in report["largest_disagreements"]:
        item = f"{r['sample_id']}" + (f"#{r['n_index']}" if r["n_index"] else "")
        lines.append(f"| [{item}]({r['link']}) | {r['category']} | {r['a']:g} | {r['b']:g} |")
    skipped = ", ".join(f"{v} {k}" for k, v in sorted(report["counts"].items()) if k != "answers") or "none"
    lines += ["", f"Answers in A: {report['counts'].get('answers', 0)}; not compared: {skipped}."]
    lines.append("Links point into the run pages of `mue-eval leaderboard RESULTS --out DIR` (relative to DIR).")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    paths = [out / "agreement.json", out / "agreement.md"]
    write_output(paths[0], json_text(report))
    write_output(paths[1], to_markdown(report).encode())
    return paths
