"""The README's Self-Critique data round, end to end: the embedded model samples k answers per GSM8K train
problem at temperature > 0 (llama.cpp, for real), a scripted loopback judge plays Math-Critique with scores
from a hash of each answer, then export RFT / DPO / KTO and the agreement report. Expected exports are
computed here from the stored answers and the hash, apart from mathusereval's own selection code."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from mathusereval import results

from .conftest import run_cli
from .judge_server import ScriptedServer, judged_answer

SAMPLES = 4
pytestmark = pytest.mark.slow


def judge_score(answer: str) -> int:
    return 1 + int(hashlib.sha256(answer.encode()).hexdigest()[:8], 16) % 10


def _judge(body: dict[str, Any], _attempt: int) -> str:
    return f"先看最终答案，再看步骤。\n评分：[[{judge_score(judged_answer(body))}]]"


def _latest(path: Path, kind: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        key = (row["sample_id"], row["n_index"]) + ((row["grader"],) if kind == "grade" else ())
        out[key] = row
    return out


def _same(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


@pytest.fixture(scope="module")
def round_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Path, Path, str]:
    cwd = tmp_path_factory.mktemp("round")
    with ScriptedServer(_judge) as judge:
        command = (
            *("--tasks", "gsm8k-train", "--limit", "3", "--samples", str(SAMPLES), "--temperature", "0.9"),
            *("--max-tokens", "160", "--graders", "math-critique,answer", "--judge", "critic"),
            *("--judge-base-url", judge.url, "--data-dir", str(shared_data), "--quiet"),
        )
        first = run_cli(*command, cwd=cwd)
        assert first.returncode == 0, first.stderr
        run = next((cwd / "results").glob("*/gsm8k-train"))
        before = (run / "generations.jsonl").read_bytes(), (run / "grades.jsonl").read_bytes()
        again = run_cli(*command, cwd=cwd)  # the rerun reuses every answer and every judgment
        assert again.returncode == 0, again.stderr
        assert f"({3 * SAMPLES} reused)" in again.stderr
        assert ((run / "generations.jsonl").read_bytes(), (run / "grades.jsonl").read_bytes()) == before
    return cwd, run, first.stderr


def test_round_exports_what_an_independent_reading_expects(round_dir: tuple[Path, Path, str]) -> None:
    import datasets

    cwd, run, _ = round_dir
    gens = _latest(run / "generations.jsonl", "generation")
    grades = _latest(run / "grades.jsonl", "grade")
    assert len(gens) == 3 * SAMPLES
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == ["train-0000", "train-0001", "train-0002"]
    # the judge saw exactly the stored answers and scored them by hash
    for (sid, k), gen in gens.items():
        assert grades[(sid, k, "math-critique")]["score"] == judge_score(gen["text"])

    for fmt in ("rft", "dpo", "kto"):
        result = run_cli("export", str(run), "--format", fmt, "--out", f"{fmt}.jsonl", cwd=cwd)
        assert result.returncode in (0, 1), result.stderr
        first = (cwd / f"{fmt}.jsonl").read_bytes(), (cwd / f"{fmt}.manifest.json").read_bytes()
        assert run_cli("export", str(run), "--format", fmt, "--out", f"{fmt}.jsonl", cwd=cwd).returncode in (0, 1)
        assert ((cwd / f"{fmt}.jsonl").read_bytes(), (cwd / f"{fmt}.manifest.json").read_bytes()) == first
        manifest = json.loads(first[1])
        counts = manifest["counts"]
        assert counts["answers"] == 3 * SAMPLES
        assert counts["answers_used"] + sum(counts["dropped"].values()) == counts["answers"]  # every fate counted
        assert manifest["decided_by"] == "judge math-critique (score >= 7)"
        assert manifest["runs"][0]["judges"]["math-critique"]["judge_model"] == "critic"
        if counts["rows"]:
            loaded = datasets.load_dataset(
                "json", data_files=str(cwd / f"{fmt}.jsonl"), split="train", cache_dir=str(cwd / "c")
            )
            assert loaded.num_rows == counts["rows"]

    def answers_of(sample: dict[str, Any]) -> list[dict[str, Any]]:
        return [gens[(sample["id"], k)] for k in range(SAMPLES) if gens[(sample["id"], k)]["text"].strip()]

    expected_rft, expected_kto = [], []
    for sample in samples:
        answers = answers_of(sample)
        good = [a for a in answers if judge_score(a["text"]) >= 7 and a["finish_reason"] != "length"]
        good.sort(key=lambda a: -judge_score(a["text"]))  # stable: equal scores stay in answer order
        bad = sorted((a for a in answers if judge_score(a["text"]) < 7), key=lambda a: judge_score(a["text"]))
        seen: set[str] = set()
        good = [a for a in good if not (_same(a["text"]) in seen or seen.add(_same(a["text"])))]  # type: ignore[func-returns-value]
        bad = [a for a in bad if not (_same(a["text"]) in seen or seen.add(_same(a["text"])))]  # type: ignore[func-returns-value]
        prompt = sample["messages"]
        expected_rft += [{"messages": [*prompt, {"role": "assistant", "content": a["text"]}]} for a in good]
        expected_kto += [(a["text"], True) for a in good] + [(a["text"], False) for a in bad]

    rft = [json.loads(line) for line in (cwd / "rft.jsonl").read_text().splitlines()]
    assert [{"messages": r["messages"]} for r in rft] == expected_rft
    kto = [json.loads(line) for line in (cwd / "kto.jsonl").read_text().splitlines()]
    assert [(r["completion"][0]["content"], r["label"]) for r in kto] == expected_kto

    dpo = [json.loads(line) for line in (cwd / "dpo.jsonl").read_text().splitlines()]
    uses: dict[str, int] = {}
    for row in dpo:
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        assert judge_score(chosen) >= 7 and judge_score(chosen) - judge_score(rejected) >= 3
        for text in (chosen, rejected):
            uses[text] = uses.get(text, 0) + 1
    assert max(uses.values(), default=0) <= 2
    assert len({json.dumps([r["prompt"], r["chosen"], r["rejected"]]) for r in dpo}) == len(dpo)


def test_round_agreement_and_dataframes(round_dir: tuple[Path, Path, str]) -> None:
    cwd, run, _ = round_dir
    result = run_cli("agreement", f"{run}:math-critique", f"{run}:answer", "--out", "agree", cwd=cwd)
    report = json.loads((cwd / "agree" / "agreement.json").read_text())
    gens = _latest(run / "generations.jsonl", "generation")
    grades = _latest(run / "grades.jsonl", "grade")
    verdicts = [
        (judge_score(g["text"]) >= 7, grades[(sid, k, "answer")]["correct"])
        for (sid, k), g in gens.items()
        if grades[(sid, k, "answer")]["score"] is not None
    ]
    assert result.returncode == 0, result.stderr
    assert report["overall"]["n"] == len(verdicts)
    assert report["overall"]["exact"] == pytest.approx(sum(a == b for a, b in verdicts) / len(verdicts))

    frames = results.load(cwd / "results")
    items, runs = frames.items, frames.runs
    assert len(items) == 3 * SAMPLES and list(runs["task"]) == ["gsm8k-train"]
    assert list(items["math-critique.score"]) == [judge_score(t) for t in items["response"]]
    per_sample = items.groupby("sample_id")["math-critique.score"].mean()
    assert runs.loc[0, "avg_score"] == pytest.approx(per_sample.mean())
    assert runs.loc[0, "answer/accuracy"] == pytest.approx(items.groupby("sample_id")["answer.score"].mean().mean())
