"""Answer grader vs Math-Verify 0.9.0, side by side in one run (issue: answer grader).

    python benchmarks/grader_bench.py --data-dir ../shared/data [--misses] [--skip-throughput]

Prints, for both graders:
1. accuracy / TPR / TNR on grader_pairs/upstream_pairs.jsonl (label_kind == "math"; all rows too);
2. agreement with GSM8K example_model_solutions `is_correct` labels (5276 solutions);
3. MATH self-consistency: each of the 5000 test solutions against its own boxed answer(s), and
   MATH-500's curated `answer` against its solution;
4. throughput in pairs/s on the MATH-5000 workload: single process, and our batch API on all cores;
5. throughput on long reasoning: 20 KB answers (other MATH solutions as the reasoning before the item's
   own solution, its boxed answer at the end), the shape of a reasoning model's reply;
6. per answer class as real models write them (Chinese exam keys, plain-text math, text answers and blanks,
   stray golds, percent, tool output and <think>, hedged answers, code and tool output, the forms of issue 34):
   the cases of tests/test_answer_formats.py; then choice hedges and truncated replies
   (tests/test_hedges_and_no_answer.py);
7. self-consistency, per task with local data: "So the final answer is $\\boxed{REF}$." graded against REF
   (ours: the task's own rule grader, the answer grader for judged tasks; items whose reference is empty are
   left out when the task loads and counted).

``--verdicts FILE`` writes our verdict on every pair of every section as JSON, to check that a change to the
grader keeps them identical (``--compare-verdicts FILE``).

Math-Verify is wrapped the most accurate way we found ("mv_wrap_both"): gold and extracted answers
inside ``\\boxed{}``, responses parsed with its default LaTeX + expression extraction, in the main
thread so its own 5 s timeouts work. It needs ``pip install "math-verify[antlr4_13_2]==0.9.0"``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mathusereval.graders.answer import answer_pool, extract_reference, grade_answer, grade_many

Grader = Callable[[str, str, bool], bool]


def ours(gold: str, pred: str, is_response: bool) -> bool:
    return grade_answer(gold, pred, is_response=is_response).correct


def math_verify(gold: str, pred: str, is_response: bool) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    if not any(d in gold for d in ("$", "\\boxed", "\\(", "\\[")):
        gold = f"\\boxed{{{gold}}}"
    if not is_response and not any(d in pred for d in ("$", "\\boxed", "\\(", "\\[")):
        pred = f"\\boxed{{{pred}}}"
    try:
        gold_parsed = parse(gold, [LatexExtractionConfig(), ExprExtractionConfig()])
        pred_parsed = parse(pred, [LatexExtractionConfig(), ExprExtractionConfig()])
        return bool(verify(gold_parsed, pred_parsed))
    except Exception:  # noqa: BLE001 - a crash is a "no" for the anchor, as in its own metric
        return False


GRADERS: dict[str, Grader] = {"mathusereval": ours, "math-verify 0.9.0": math_verify}


ROWS: int | None = None
"""``--tiny``: read only this many rows of each file (a smoke test of the script, not a measurement)."""


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()][:ROWS]


def pair_accuracy(rows: list[dict], grader: Grader, misses: list[str] | None) -> dict[str, float]:
    tp = tn = fp = fn = 0
    for row in rows:
        verdict = grader(row["gold"], row["pred"], row["pred_type"] == "response")
        if row["label"]:
            tp, fn = tp + verdict, fn + (not verdict)
        else:
            tn, fp = tn + (not verdict), fp + verdict
        if misses is not None and verdict != row["label"]:
            misses.append(f"  {row['id']}: label={row['label']} gold={row['gold'][:70]!r} pred={row['pred'][-90:]!r}")
    n = tp + tn + fp + fn
    return {"n": n, "acc": (tp + tn) / n, "tpr": tp / max(tp + fn, 1), "tnr": tn / max(tn + fp, 1)}


def gsm8k_agreement(rows: list[dict], grader: Grader) -> tuple[int, int]:
    agree = total = 0
    for row in rows:
        gold = row["ground_truth"].rsplit("A:", 1)[-1].strip()
        for key in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            if key in row:
                total += 1
                agree += grader(gold, row[key]["solution"], True) == row[key]["is_correct"]
    return agree, total


LONG_CHARS = 20_000


def long_answers(math_rows: list[dict], count: int = 1000) -> list[tuple[str, str]]:
    """(gold, ~20 KB response): solutions of the following items as reasoning, the item's own at the end."""
    pairs = []
    for i, row in enumerate(math_rows[:count]):
        reasoning, j = [], i + 1  # with few rows (--tiny) the reasoning repeats them; still ~20 KB
        while sum(map(len, reasoning)) < LONG_CHARS - len(row["solution"]):
            reasoning.append(math_rows[j % len(math_rows)]["solution"].replace("\\boxed", "\\mathbf"))
            j += 1
        text = "\n\n".join([*reasoning, "So, putting it together:", row["solution"]])
        pairs.append((extract_reference(row["solution"]), text[-LONG_CHARS:]))
    return pairs


def rate(grader: Grader, pairs: list[tuple[str, str]]) -> float:
    grader(*pairs[0], True)  # warm imports and workers
    start = time.perf_counter()
    for gold, response in pairs:
        grader(gold, response, True)
    return len(pairs) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("MUE_DATA_DIR", "../shared/data")))
    parser.add_argument("--misses", action="store_true", help="list the pairs each grader gets wrong")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--only", choices=["pairs", "gsm8k", "math", "speed", "long", "classes", "self"], action="append"
    )
    parser.add_argument("--verdicts", type=Path, help="write our verdict on every pair here (JSON)")
    parser.add_argument("--compare-verdicts", type=Path, help="report verdicts that differ from this file's")
    parser.add_argument("--tiny", action="store_true", help="40 rows of each file: seconds, a smoke test")
    args = parser.parse_args()
    if args.tiny:
        global ROWS
        ROWS = 40
    sections = set(args.only or ["pairs", "gsm8k", "math", "speed", "long", "classes", "self"])
    if args.verdicts or args.compare_verdicts:
        return verdicts(args.data_dir, args.verdicts, args.compare_verdicts)
    if args.skip_throughput:
        sections.discard("speed")
    data = args.data_dir
    math_rows = read_jsonl(data / "math" / "test.jsonl")
    # The gold is what the math task stores: the solution's final boxed answer(s), several boxes joined.
    math_pairs = [(extract_reference(r["solution"]), r["solution"]) for r in math_rows]

    if "pairs" in sections:
        pairs = read_jsonl(data / "grader_pairs" / "upstream_pairs.jsonl")
        math_kind = [r for r in pairs if r["label_kind"] == "math"]
        print(f"\n## 1. grader_pairs (label_kind == math: {len(math_kind)} of {len(pairs)})")
        print(f"{'grader':<20} {'acc':>6} {'TPR':>6} {'TNR':>6} {'acc(all rows)':>14}")
        for name, grader in GRADERS.items():
            misses: list[str] | None = [] if args.misses else None
            m = pair_accuracy(math_kind, grader, misses)
            a = pair_accuracy(pairs, grader, None)
            print(f"{name:<20} {m['acc']:6.3f} {m['tpr']:6.3f} {m['tnr']:6.3f} {a['acc']:14.3f}")
            if misses:
                print("\n".join(misses))

    if "gsm8k" in sections:
        rows = read_jsonl(data / "gsm8k" / "example_model_solutions.jsonl")
        print("\n## 2. GSM8K example_model_solutions: agreement with is_correct")
        for name, grader in GRADERS.items():
            agree, total = gsm8k_agreement(rows, grader)
            print(f"{name:<20} {agree}/{total} = {agree / total:.4f}")

    if "math" in sections:
        m500 = read_jsonl(data / "math" / "math500_test.jsonl")
        print("\n## 3. MATH self-consistency (solution graded against its own answer)")
        for name, grader in GRADERS.items():
            full = [i for i, (g, s) in enumerate(math_pairs) if not grader(g, s, True)]
            curated = [r["unique_id"] for r in m500 if not grader(r["answer"], r["solution"], True)]
            print(f"{name:<20} MATH {len(math_pairs) - len(full)}/{len(math_pairs)}   "
                  f"MATH-500 answer field {len(m500) - len(curated)}/{len(m500)}")  # fmt: skip
            if args.misses and (full or curated):
                print("  misses:", [math_rows[i]["unique_id"] for i in full][:20], curated[:20])

    if "speed" in sections:
        print("\n## 4. Throughput on MATH-5000 (gold answer vs full solution), pairs/s")
        rates: dict[str, float] = {}
        for name, grader in GRADERS.items():
            grader(*math_pairs[0], True)  # warm imports and workers
            start = time.perf_counter()
            for gold, solution in math_pairs:
                grader(gold, solution, True)
            rates[name] = len(math_pairs) / (time.perf_counter() - start)
        cores = os.cpu_count() or 1
        for workers in sorted({1, 2, cores}):
            with answer_pool(workers) as pool:
                grade_many(math_pairs[: workers * 8], pool=pool)  # start the workers outside the clock
                start = time.perf_counter()
                grade_many(math_pairs, pool=pool)
                rates[f"mathusereval grade_many x{workers}"] = len(math_pairs) / (time.perf_counter() - start)
        anchor = rates["math-verify 0.9.0"]
        for name, value in rates.items():
            print(f"{name:<32} {value:9.0f} pairs/s   {value / anchor:5.2f}x math-verify")

    if "long" in sections:
        pairs = long_answers(math_rows)
        print(f"\n## 5. Throughput on {len(pairs)} long reasoning answers (~20 KB, boxed at the end), one core")
        long_rates = {name: rate(grader, pairs) for name, grader in GRADERS.items()}
        checked = pairs[:200]
        agree = sum(ours(g, r, True) == math_verify(g, r, True) for g, r in checked)
        for name, value in long_rates.items():
            print(f"{name:<32} {value:9.0f} pairs/s   {value / long_rates['math-verify 0.9.0']:5.2f}x math-verify")
        print(f"goal: >= 8x math-verify and >= 2000 pairs/s; verdicts agree with math-verify on {agree}/{len(checked)}")

    if "classes" in sections:
        print("\n## 6. Answer classes as real models write them (tests/test_answer_formats.py), right/total")
        print(f"{'class':<20} " + " ".join(f"{name:>20}" for name in GRADERS) + "   false positives (ours / mv)")
        for kind, cases in answer_classes().items():
            right = {n: sum(g(ref, resp, True) == ok for ref, resp, ok in cases) for n, g in GRADERS.items()}
            wrong_yes = {n: sum(g(ref, resp, True) and not ok for ref, resp, ok in cases) for n, g in GRADERS.items()}
            cells = " ".join(f"{right[n]:>16}/{len(cases):<3}" for n in GRADERS)
            print(f"{kind:<20} {cells}   {' / '.join(str(v) for v in wrong_yes.values())}")
        for kind, rows in extra_classes().items():
            right = {n: sum(g(*case) == ok for *case, ok in rows) for n, g in EXTRA_GRADERS[kind].items()}
            wrong_yes = {n: sum(g(*case) and not ok for *case, ok in rows) for n, g in EXTRA_GRADERS[kind].items()}
            cells = " ".join(f"{right[n]:>16}/{len(rows):<3}" for n in right)
            print(f"{kind:<20} {cells}   {' / '.join(str(v) for v in wrong_yes.values())}")

    if "self" in sections:
        print("\n## 7. Self-consistency: the reference boxed verbatim, per task with local data, right/total")
        print(f"{'task':<24} {'grader':<18} " + " ".join(f"{name:>20}" for name in GRADERS) + "   left out")
        totals = dict.fromkeys(GRADERS, 0)
        items = 0
        for task, grader_name, pairs, left_out in self_pairs(data):
            ours_right = sum(self_verdicts(task, grader_name, pairs))
            mv_right = sum(math_verify(ref, response, True) for ref, response in pairs)
            for name, got in zip(GRADERS, (ours_right, mv_right), strict=True):
                totals[name] += got
            items += len(pairs)
            cells = " ".join(f"{v:>14}/{len(pairs):<5}" for v in (ours_right, mv_right))
            print(f"{task:<24} {grader_name:<18} {cells}   {left_out}")
        print(f"{'all':<24} {'':<18} " + " ".join(f"{v:>14}/{items:<5}" for v in totals.values()))
    return 0


def _choice_ours(response: str, gold: str) -> bool:
    from mathusereval.graders import choice_grader
    from mathusereval.records import Generation, Sample

    sample = Sample("bench", "1", ({"role": "user", "content": "q"},), gold, {})
    return bool(choice_grader(sample, Generation("1", 0, "bench", response, "stop")).correct)


def _choice_mv(response: str, gold: str) -> bool:
    from math_verify import StringExtractionConfig, parse, verify

    config = [StringExtractionConfig(strings=tuple("ABCDE"))]
    return bool(verify(parse(gold, config), parse(response, config)))


EXTRA_GRADERS: dict[str, dict[str, Callable[..., bool]]] = {
    "choice hedges": {"mathusereval": _choice_ours, "math-verify 0.9.0": _choice_mv},
    "truncated replies": {
        "mathusereval": lambda ref, resp: grade_answer(ref, resp, truncated=True).correct,
        "math-verify 0.9.0": lambda ref, resp: math_verify(ref, resp, True),  # it cannot know of the cut
    },
}


def extra_classes() -> dict[str, list[tuple[str, str, bool]]]:
    """Choice hedges (response, gold, correct) and truncated replies (reference, response, correct when cut)."""
    from mathusereval.plugins.include import module_of

    module = module_of(Path(__file__).resolve().parents[1] / "tests" / "test_hedges_and_no_answer.py")
    truncated = [(ref, response, cut) for ref, response, cut, _ in module.TRUNCATED]
    return {"choice hedges": list(module.CHOICE_HEDGES), "truncated replies": truncated}


def self_pairs(data: Path) -> list[tuple[str, str, list[tuple[str, str]], int]]:
    """(task, grader, [(reference, response boxing it)], items left out) for every task with local data."""
    import contextlib
    import io

    import mathusereval.tasks  # noqa: F401 - registers the tasks
    from mathusereval.graders.extract import MAX_ANSWER_CHARS
    from mathusereval.plugins import registry
    from mathusereval.plugins.contracts import is_judge
    from mathusereval.plugins.task import load_task

    found = []
    for name in sorted(registry.names("tasks")):
        task = registry.lookup("tasks", name)
        with contextlib.redirect_stderr(io.StringIO()):  # the left-out warning: counted in the table instead
            loaded = load_task(task, data)
        grader = task.graders[0]
        samples = loaded.samples
        if is_judge(registry.lookup("graders", grader)):  # the answer grader offered beside the judge
            grader, samples = "answer (judged)", [s for s in samples if len(s.reference) <= MAX_ANSWER_CHARS]
        pairs = [(s.reference, f"So the final answer is $\\boxed{{{s.reference}}}$.") for s in samples[:ROWS]]
        found.append((name, grader, pairs, len(loaded.left_out)))
    return found


def self_verdicts(task: str, grader_name: str, pairs: list[tuple[str, str]]) -> list[bool]:
    """Our verdicts on one task's self-consistency pairs, through its own rule grader as a run calls it."""
    from mathusereval.plugins import registry
    from mathusereval.records import Generation, Sample

    if grader_name.startswith("answer"):
        return [v.correct for v in grade_many(pairs, workers=os.cpu_count())]
    grader = registry.rule_grader(grader_name)
    verdicts = []
    for i, (reference, response) in enumerate(pairs):
        grade = grader(Sample(task, str(i), (), reference, {}), Generation(str(i), 0, "oracle", response, "stop"))
        verdicts.append(bool(grade.correct))
    return verdicts


def answer_classes() -> dict[str, list[tuple[str, str, bool]]]:
    """The per-class cases the tests hold (one table per class, written for this project)."""
    from mathusereval.plugins.include import module_of

    module = module_of(Path(__file__).resolve().parents[1] / "tests" / "test_answer_formats.py")
    return dict(module.CLASSES)


def verdicts(data: Path, out: Path | None, compare: Path | None) -> int:
    """Our verdict on every pair of every section, written or compared with an earlier file."""
    math_rows = read_jsonl(data / "math" / "test.jsonl")
    sets: dict[str, list[tuple[str, str, bool]]] = {
        "pairs": [(r["gold"], r["pred"], r["pred_type"] == "response")
                  for r in read_jsonl(data / "grader_pairs" / "upstream_pairs.jsonl")],
        "math": [(extract_reference(r["solution"]), r["solution"], True) for r in math_rows],
        "math500": [(r["answer"], r["solution"], True) for r in read_jsonl(data / "math" / "math500_test.jsonl")],
        "long": [(g, r, True) for g, r in long_answers(math_rows)],
    }  # fmt: skip
    gsm = sets["gsm8k"] = []
    for row in read_jsonl(data / "gsm8k" / "example_model_solutions.jsonl"):
        gold = row["ground_truth"].rsplit("A:", 1)[-1].strip()
        gsm += [(gold, row[k]["solution"], True) for k in ("6b_finetuning", "6b_verification") if k in row]
    got = {name: [ours(*pair) for pair in pairs] for name, pairs in sets.items()}
    got["self"] = [v for task, grader, pairs, _ in self_pairs(data) for v in self_verdicts(task, grader, pairs)]
    if out is not None:
        out.write_text(json.dumps(got))
    if compare is not None:
        before = json.loads(compare.read_text())
        for name, values in got.items():
            if len(before.get(name, ())) != len(values):
                print(f"{name:<8} {len(values):>6} verdicts, not in the earlier file (or another count): not compared")
                continue
            changed = [i for i, (a, b) in enumerate(zip(before[name], values, strict=True)) if a != b]
            print(f"{name:<8} {len(values):>6} verdicts, {len(changed)} changed {changed[:10]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
