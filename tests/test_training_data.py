"""mue-eval export (RFT / DPO / KTO) and mue-eval agreement on runs whose verdicts the test chooses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathusereval.errors import ConfigError
from mathusereval.results.agreement import cohen_kappa, compare, parse_side, spearman, to_markdown
from mathusereval.results.candidates import Selection
from mathusereval.results.training_data import export

from .conftest import run_cli
from .training_runs import Answer, write_run

TRUNCATED = "a long derivation that ends with 42 but was cut"
RUN_A = [
    Answer("p1", 0, "Answer is 42. \\boxed{42}", judge=9, correct=True),
    Answer("p1", 1, "answer IS 42.   \\BOXED{42}", judge=8, correct=True),  # same text but for case and spaces
    Answer("p1", 2, "I think 41", judge=2, correct=False),
    Answer("p1", 3, TRUNCATED, judge=9, correct=True, finish="length"),
    Answer("p2", 0, "", error="HTTP 500"),
    Answer("p2", 1, "p2 answer 42", judge="parse", correct=True),
    Answer("p2", 2, "p2 wrong 7", judge=3, correct=False),
    Answer("p2", 3, "p2 right 42", judge=7, correct=False),  # the judge passes it, the answer grader does not
]
RUN_B = [  # another model on the same problems, pooled with A
    Answer("p1", 0, "m2 solution \\boxed{42}", judge=10, correct=True),
    Answer("p1", 1, "m2 wrong 40", judge=1, correct=False),
    Answer("p1", 2, "i  think 41", judge=2, correct=False),  # A's p1#2 again
]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _texts(rows: list[dict], field: str) -> list[str]:
    return [r[field][-1]["content"] for r in rows]


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path]:
    return write_run(tmp_path / "a", RUN_A), write_run(tmp_path / "b", RUN_B, model="m2", n=3)


def test_rft_keeps_passing_answers_once_and_counts_every_drop(runs: tuple[Path, Path], tmp_path: Path) -> None:
    data, manifest_path, manifest = export([runs[0]], "rft", tmp_path / "out")
    rows = _rows(data)
    assert [r["messages"][-1]["content"] for r in rows] == ["Answer is 42. \\boxed{42}", "p2 right 42"]
    assert rows[0]["messages"][0] == {"role": "user", "content": "question p1?"}
    assert rows[0]["meta"] == {
        "category": "cat-p1",
        "judge_score": 9.0,
        "model": "m",
        "n_index": 0,
        "rule_correct": True,
        "run_id": "m/gsm8k-train",
        "sample_id": "p1",
        "task": "gsm8k-train",
    }
    assert manifest["decided_by"] == "judge math-critique (score >= 7)"
    assert manifest["counts"] == {
        "answers": 8,
        "answers_used": 2,
        "classes": {"pass": 2},
        "dropped": {
            "did not pass": 2,
            "duplicate": 1,
            "generation error": 1,
            "truncated": 1,
            "unparseable judgment": 1,
        },
        "problems": 2,
        "rows": 2,
    }
    assert manifest["per_category"] == {"cat-p1": {"problems": 1, "rows": 1}, "cat-p2": {"problems": 1, "rows": 1}}
    assert manifest["runs"][0]["fingerprint"] == "fp-m-gsm8k-train"
    assert manifest["runs"][0]["judges"] == {"math-critique": {"judge_backend": "openai", "judge_model": "judge-x"}}
    assert json.loads(manifest_path.read_text()) == manifest


def test_rft_decided_by_the_rule_grader_or_by_both(runs: tuple[Path, Path], tmp_path: Path) -> None:
    data, _, manifest = export([runs[0]], "rft", tmp_path / "rule.jsonl", Selection(decide="rule"))
    assert [r["messages"][-1]["content"] for r in _rows(data)] == ["Answer is 42. \\boxed{42}", "p2 answer 42"]
    assert manifest["decided_by"].startswith("rule grader answer")
    data, _, manifest = export([runs[0]], "rft", tmp_path / "both.jsonl", Selection(decide="both"))
    assert [r["messages"][-1]["content"] for r in _rows(data)] == ["Answer is 42. \\boxed{42}"]
    assert manifest["counts"]["dropped"]["judge and rule grader disagree"] == 1
    assert manifest["counts"]["dropped"]["unparseable judgment"] == 1


def test_rft_text_layout_and_cap_across_pooled_runs(runs: tuple[Path, Path], tmp_path: Path) -> None:
    sel = Selection(per_problem=1, chat=False, provenance=False)
    data, _, manifest = export(list(runs), "rft", tmp_path / "pooled.jsonl", sel)
    assert _rows(data) == [
        {"prompt": "question p1?", "completion": "m2 solution \\boxed{42}"},  # the best of both runs
        {"prompt": "question p2?", "completion": "p2 right 42"},
    ]
    assert manifest["counts"]["dropped"]["over the per-problem cap"] == 1
    assert [r["model"] for r in manifest["runs"]] == ["m", "m2"]


def test_dpo_pairs_by_margin_with_caps_and_no_duplicates(runs: tuple[Path, Path], tmp_path: Path) -> None:
    data, _, manifest = export(list(runs), "dpo", tmp_path / "dpo.jsonl")
    rows = _rows(data)
    pairs = list(zip(_texts(rows, "chosen"), _texts(rows, "rejected"), strict=True))
    # p1 pooled: chosen 10, 9; rejected 1, 2 (B's "i think 41" repeats A's); widest gap first, each used twice
    assert pairs == [
        ("m2 solution \\boxed{42}", "m2 wrong 40"),
        ("m2 solution \\boxed{42}", "I think 41"),
        ("Answer is 42. \\boxed{42}", "m2 wrong 40"),
        ("Answer is 42. \\boxed{42}", "I think 41"),
        ("p2 right 42", "p2 wrong 7"),
    ]
    assert [r["meta"]["margin"] for r in rows] == [9.0, 8.0, 8.0, 7.0, 4.0]
    assert rows[0]["prompt"] == [{"role": "user", "content": "question p1?"}]
    assert len({json.dumps([r["prompt"], r["chosen"], r["rejected"]]) for r in rows}) == len(rows)
    assert "margin" not in rows[0]
    assert manifest["counts"]["rows"] == 5

    sel = Selection(max_reuse=1, margin=5, schema="openrlhf")
    data, _, manifest = export(list(runs), "dpo", tmp_path / "dpo-1.jsonl", sel)
    rows = _rows(data)
    assert list(zip(_texts(rows, "chosen"), _texts(rows, "rejected"), strict=True)) == [
        ("m2 solution \\boxed{42}", "m2 wrong 40"),
        ("Answer is 42. \\boxed{42}", "I think 41"),
    ]
    assert [r["margin"] for r in rows] == [9.0, 7.0]  # OpenRLHF's field
    assert manifest["counts"]["dropped"]["no pair within the margin and caps"] == 2  # p2's gap of 4 < 5


def test_dpo_from_rule_verdicts_and_kto_labels(runs: tuple[Path, Path], tmp_path: Path) -> None:
    data, _, _ = export([runs[0]], "dpo", tmp_path / "rule-dpo.jsonl", Selection(decide="rule", chat=False))
    rows = _rows(data)
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in rows] == [
        ("question p1?", "Answer is 42. \\boxed{42}", "I think 41"),
        ("question p2?", "p2 answer 42", "p2 wrong 7"),
        ("question p2?", "p2 answer 42", "p2 right 42"),
    ]
    data, _, manifest = export([runs[0]], "kto", tmp_path / "kto.jsonl")
    rows = _rows(data)
    assert [(r["completion"][0]["content"], r["label"]) for r in rows] == [
        ("Answer is 42. \\boxed{42}", True),
        ("I think 41", False),
        ("p2 right 42", True),
        ("p2 wrong 7", False),
    ]
    assert manifest["counts"]["answers_used"] == 4


def test_exports_load_with_datasets_and_a_rerun_writes_the_same_bytes(runs: tuple[Path, Path], tmp_path: Path) -> None:
    import datasets

    for fmt in ("rft", "dpo", "kto"):
        for sel in (Selection(), Selection(chat=False, schema="openrlhf")):
            out = tmp_path / f"{fmt}-{sel.chat}"
            data, manifest_path, _ = export(list(runs), fmt, out, sel)
            first = data.read_bytes(), manifest_path.read_bytes()
            loaded = datasets.load_dataset("json", data_files=str(data), split="train", cache_dir=str(tmp_path / "c"))
            assert loaded.num_rows == len(_rows(data)) > 0
            export(list(runs), fmt, out, sel)
            assert (data.read_bytes(), manifest_path.read_bytes()) == first


def test_export_refuses_runs_without_the_deciding_grades(tmp_path: Path) -> None:
    rule_only = write_run(tmp_path / "r", RUN_A[:3], graders=("answer",))
    with pytest.raises(ConfigError, match="none of the runs was graded by an LLM judge"):
        export([rule_only], "rft", tmp_path / "x", Selection(decide="judge"))
    judged = write_run(tmp_path / "j", RUN_A[:3])
    with pytest.raises(ConfigError, match=r"has no 'math-critique' grades"):
        export([judged, rule_only], "rft", tmp_path / "x", Selection(decide="judge"))
    with pytest.raises(ConfigError, match="given twice"):
        export([judged, tmp_path / "j"], "rft", tmp_path / "x")
    result = run_cli("export", str(rule_only), "--format", "dpo", "--decide", "judge", "--out", "x", cwd=tmp_path)
    assert result.returncode == 2 and "none of the runs was graded by an LLM judge" in result.stderr
    assert not (tmp_path / "x").exists()


def test_agreement_of_a_judge_and_the_answer_grader(runs: tuple[Path, Path], tmp_path: Path) -> None:
    report = compare(parse_side(f"{runs[0]}:math-critique"), parse_side(f"{runs[0]}:answer"))
    # pass/fail: judge >= 7 against the answer grader on the 6 answers both scored; p2#3 is the disagreement
    overall = report["overall"]
    assert overall["n"] == 6 and overall["exact"] == pytest.approx(5 / 6)
    # p_o = 5/6; A passes 4 of 6, B 3 of 6: p_e = (4*3 + 2*3) / 36 = 1/2; kappa = (5/6 - 1/2) / (1/2)
    assert overall["kappa"] == pytest.approx(2 / 3)
    assert report["counts"] == {"answers": 8, "no answer": 1, "no score from math-critique": 1}
    assert report["confusion"] == {"0": {"0": 2}, "1": {"0": 1, "1": 3}}
    assert [(d["sample_id"], d["n_index"]) for d in report["largest_disagreements"]] == [("p2", 3)]
    assert report["largest_disagreements"][0]["link"].endswith(".html#s-p2%233")
    text = to_markdown(report)  # plain words: no Python dicts, no "within 1 point" for pass/fail verdicts
    assert "{" not in text and "within 1" not in text and "same verdict" in text
    assert "not compared: 1 no answer, 1 no score from math-critique." in text


def test_agreement_of_two_judges_on_the_same_answers(tmp_path: Path) -> None:
    import pandas as pd

    other = [9, 6, 2, 8, None, 5, 7, 7]  # another judge's scores for RUN_A's answers
    b_answers = [
        Answer(a.sample, a.n, a.text, judge=s, correct=a.correct, finish=a.finish, error=a.error)
        for a, s in zip(RUN_A, other, strict=True)
    ]
    a = write_run(tmp_path / "a", RUN_A)
    b = write_run(tmp_path / "b", b_answers, judge_model="judge-y")
    with (tmp_path / "b" / "generations.jsonl").open("a") as fh:  # B holds another answer for p1#2
        fh.write(json.dumps({"sample_id": "p1", "n_index": 2, "model": "m", "text": "changed"}) + "\n")
    result = run_cli("agreement", str(a), str(b), "--out", "agree", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "agree" / "agreement.json").read_text())
    pairs = [(9, 9), (8, 6), (9, 8), (3, 7), (7, 7)]  # p1#2's text differs in B; p2#0 failed; p2#1 unparseable in A
    xa, xb = [float(p[0]) for p in pairs], [float(p[1]) for p in pairs]
    assert report["counts"]["different answer text"] == 1
    overall = report["overall"]
    assert (
        overall["n"] == 5 and overall["exact"] == pytest.approx(2 / 5) and overall["within_1"] == pytest.approx(3 / 5)
    )
    assert overall["spearman"] == pytest.approx(pd.Series(xa).corr(pd.Series(xb), method="spearman"))
    assert overall["kappa"] == pytest.approx(cohen_kappa(xa, xb, weighted=True))
    assert report["largest_disagreements"][0]["sample_id"] == "p2"  # 3 vs 7
    assert "judge-y" in report["b"]["label"]
    assert "| overall | 5 | 0.400 | 0.600 |" in (tmp_path / "agree" / "agreement.md").read_text()


def test_kappa_and_spearman_on_textbook_cases() -> None:
    assert cohen_kappa([1, 2, 3], [1, 2, 3], weighted=True) == pytest.approx(1.0)
    # quadratic weights over values 1..3 (span 2): observed disagreement 1/4 * (1/4) on one of 4 items
    a, b = [1.0, 2.0, 3.0, 3.0], [1.0, 2.0, 3.0, 2.0]
    observed = (0.5**2) / 4
    counts_a, counts_b = {1: 1, 2: 1, 3: 2}, {1: 1, 2: 2, 3: 1}
    expected = sum(((x - y) / 2) ** 2 * counts_a[x] * counts_b[y] for x in (1, 2, 3) for y in (1, 2, 3)) / 16
    assert cohen_kappa(a, b, weighted=True) == pytest.approx(1 - observed / expected)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_an_export_of_one_class_or_nothing_warns(tmp_path: Path) -> None:
    good = [Answer("p1", 0, "right 42", judge=9, correct=True), Answer("p2", 0, "also 42", judge=8, correct=True)]
    run = write_run(tmp_path / "run", good, n=1)
    one_class = run_cli("export", str(run), "--format", "kto", "--out", "kto.jsonl", cwd=tmp_path)
    assert one_class.returncode == 0 and "one class only (2 passing, 0 failing answers)" in one_class.stderr
    empty = run_cli("export", str(run), "--format", "dpo", "--out", "dpo.jsonl", cwd=tmp_path)
    assert empty.returncode == 1 and "nothing passed the selection" in empty.stderr
