"""``mue-eval compare``: paired deltas, CIs and exact p-values against hand computation; the leaderboard's
paired ties; checkpoint sweeps."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from mathusereval.plugins import registry
from mathusereval.records import Generation, GenerationParams, Grade, RunManifest, Sample
from mathusereval.results.compare import compare_runs
from mathusereval.store import RunStore

from .conftest import run_cli


def write_run(
    directory: Path,
    scores: dict[str, float],
    *,
    model: str,
    task: str = "gsm8k",
    grader: str = "answer",
    groups: dict[str, str] | None = None,
    data: str = "d" * 64,
) -> Path:
    """A stored run whose primary grades are exactly `scores` (sample id -> score), one answer per item."""
    store = RunStore(directory)
    judges = {} if grader == "answer" else {grader: {"judge_model": "j", "judge_backend": "openai"}}
    manifest = RunManifest(
        run_id=f"{model}/{task}",
        task=task,
        task_version="1",
        model=model,
        backend="openai",
        backend_config={},
        params=GenerationParams().to_json(),
        data_sha256=data,
        prompt_sha256="p" * 64,
        fingerprint=f"fp-{model}",
        mathusereval_version="test",
        started_at="2026-01-01T00:00:00+00:00",
        graders=(grader,),
        judges=judges,
    )
    with store.writing(manifest):
        for sid, score in scores.items():
            metadata = {"category": (groups or {}).get(sid, "all")}
            store.add_sample(Sample(task, sid, ({"role": "user", "content": f"q {sid}"},), "1", metadata))
            store.add_generation(Generation(sid, 0, model, text=f"answer {score}", finish_reason="stop"))
            correct = score >= (1 if grader == "answer" else 7)
            store.add_grade(Grade(sid, 0, grader, float(score), correct=correct))
    return directory


def mcnemar(a_only: int, b_only: int) -> float:
    """The exact two-sided McNemar p-value, computed here from the binomial pmf."""
    n, k = a_only + b_only, min(a_only, b_only)
    return min(1.0, 2 * sum(math.comb(n, i) * 0.5**n for i in range(k + 1)))


def test_pass_fail_runs_give_the_hand_computed_delta_and_exact_mcnemar(tmp_path: Path) -> None:
    a_right = [1] * 12 + [0] * 8 + [1, 0, 1, 0]
    b_right = [1] * 10 + [0, 0] + [1] * 7 + [0] + [1, 1, 1, 1]
    ids = [f"s{i:02d}" for i in range(len(a_right))]
    groups = {sid: "x" if i < 14 else "y" for i, sid in enumerate(ids)}
    a = write_run(tmp_path / "A" / "m-a" / "gsm8k", dict(zip(ids, a_right, strict=True)), model="m-a", groups=groups)
    b = write_run(tmp_path / "B" / "m-b" / "gsm8k", dict(zip(ids, b_right, strict=True)), model="m-b", groups=groups)
    result = run_cli("compare", str(a), str(b), "--json", "--out", "cmp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {r["category"]: r for r in json.loads(result.stdout)["comparisons"]}
    whole = rows[None]
    a_only = sum(x > y for x, y in zip(a_right, b_right, strict=True))
    b_only = sum(y > x for x, y in zip(a_right, b_right, strict=True))
    assert (a_only, b_only) == (2, 9)
    assert whole["metric"] == "accuracy" and whole["n"] == 24
    assert whole["a"] == pytest.approx(sum(a_right) / 24) and whole["b"] == pytest.approx(sum(b_right) / 24)
    assert whole["delta"] == pytest.approx((sum(b_right) - sum(a_right)) / 24)
    assert whole["p_value"] == pytest.approx(mcnemar(a_only, b_only)) and whole["test"] == "exact McNemar"
    assert (whole["wins"], whole["losses"], whole["ties"]) == (b_only, a_only, 24 - a_only - b_only)
    low, high = whole["ci95"]
    assert low < whole["delta"] < high
    x_a, x_b = a_right[:14], b_right[:14]
    assert rows["x"]["delta"] == pytest.approx((sum(x_b) - sum(x_a)) / 14) and rows["x"]["n"] == 14
    x_disc = (sum(p > q for p, q in zip(x_a, x_b, strict=True)), sum(q > p for p, q in zip(x_a, x_b, strict=True)))
    assert rows["x"]["p_value"] == pytest.approx(mcnemar(*x_disc))
    assert {c["sample_id"] for c in whole["changed"]} == {
        sid for sid, x, y in zip(ids, a_right, b_right, strict=True) if x != y
    }
    assert all(c["link"].startswith("runs/") and "#s-" in c["link"] for c in whole["changed"])
    assert {p.name for p in (tmp_path / "cmp").iterdir()} >= {"compare.json", "compare.md", "compare.html"}
    table = run_cli("compare", str(a), str(b), cwd=tmp_path)
    assert (
        table.returncode == 0
        and "exact McNemar" in table.stdout
        and "| gsm8k | answer | (all) | accuracy |" in table.stdout
    )


def test_judge_scores_use_an_exact_sign_flip_test(tmp_path: Path) -> None:
    a_scores = [5, 6, 7, 3, 8, 2, 9, 4]
    b_scores = [6, 6, 9, 3, 7, 5, 9, 6]
    ids = [f"q{i}" for i in range(len(a_scores))]
    a = write_run(tmp_path / "a", dict(zip(ids, a_scores, strict=True)), model="a", grader="math-critique")
    b = write_run(tmp_path / "b", dict(zip(ids, b_scores, strict=True)), model="b", grader="math-critique")
    [row] = compare_runs((a,), (b,))
    d = [y - x for x, y in zip(a_scores, b_scores, strict=True)]
    nonzero = [x for x in d if x]
    observed = abs(sum(d))
    flips = list(itertools.product((-1, 1), repeat=len(nonzero)))
    expected = sum(abs(sum(s * x for s, x in zip(signs, nonzero, strict=True))) >= observed for signs in flips) / len(
        flips
    )
    assert row.metric == "avg_score" and row.delta == pytest.approx(sum(d) / len(d))
    assert row.p_value == pytest.approx(expected) and row.test == "sign-flip permutation (exact)"
    assert (row.wins, row.losses, row.ties) == (4, 1, 3)


def test_a_non_mean_headline_is_permuted_through_the_tasks_aggregation(tmp_path: Path) -> None:
    """AlignBench's Overall averages category means: its delta is the aggregation's, not the item mean's."""
    from mathusereval.tasks import alignbench

    categories = alignbench.REASONING + alignbench.LANGUAGE
    ids = [f"i{k}" for k in range(32)]
    groups = {sid: categories[k % 8] if k < 24 else "数学计算" for k, sid in enumerate(ids)}
    a_scores = {sid: 5.0 + (k % 3) for k, sid in enumerate(ids)}
    b_scores = {sid: a_scores[sid] + (1.0 if groups[sid] == "数学计算" else 0.0) for sid in ids}
    a = write_run(tmp_path / "a", a_scores, model="a", task="alignbench", grader="alignbench-judge", groups=groups)
    b = write_run(tmp_path / "b", b_scores, model="b", task="alignbench", grader="alignbench-judge", groups=groups)
    rows = compare_runs((a,), (b,), resamples=400)
    whole = rows[0]
    task = registry.lookup("tasks", "alignbench")
    samples = [Sample("alignbench", sid, (), "", {"category": groups[sid]}) for sid in ids]

    def overall(scores: dict[str, float]) -> float:
        return task.aggregate(samples, [Grade(sid, 0, "j", s) for sid, s in scores.items()])[0].value

    assert whole.metric == "overall" and whole.delta == pytest.approx(overall(b_scores) - overall(a_scores))
    assert whole.delta == pytest.approx(1.0 / 4)  # 数学计算 carries a quarter of Overall
    assert whole.test == "paired permutation through the task's aggregation"
    assert whole.p_value is not None and whole.p_value < 0.05 and whole.ci95 is not None
    math_row = next(r for r in rows if r.category == "数学计算")
    assert math_row.delta == pytest.approx(1.0) and math_row.wins == 3 + 8


def test_runs_of_other_items_are_refused_naming_the_difference(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"s1": 1, "s2": 0}, model="a")
    b = write_run(tmp_path / "b", {"s1": 1, "s2": 1}, model="b", data="e" * 64)
    result = run_cli("compare", str(a), str(b), cwd=tmp_path)
    assert result.returncode == 2 and "not runs of the same items" in result.stderr and "data_sha256" in result.stderr


def test_leaderboard_ties_use_the_paired_test_when_runs_share_items(tmp_path: Path) -> None:
    """B is right wherever A is, and on 6 more of 40: a z-test calls that a tie, the paired test does not."""
    from mathusereval.leaderboard.layout import indistinguishable
    from mathusereval.results import collect_runs

    ids = [f"s{i:02d}" for i in range(40)]
    a_right = {sid: float(i < 20) for i, sid in enumerate(ids)}
    b_right = {sid: float(i < 26) for i, sid in enumerate(ids)}
    write_run(tmp_path / "results" / "a" / "gsm8k", a_right, model="a")
    write_run(tmp_path / "results" / "b" / "gsm8k", b_right, model="b")
    runs, _ = collect_runs(tmp_path / "results")
    by_model = {r.manifest.model: r.metrics[0] for r in runs}
    assert indistinguishable(by_model["b"], by_model["a"])  # what the unpaired test said
    assert mcnemar(0, 6) < 0.05
    result = run_cli("leaderboard", "results", "--out", "board", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    overview = (
        (tmp_path / "board" / "index.html").read_text(encoding="utf-8").split('id="overview"')[1].split("</table>")[0]
    )
    assert "≈" not in overview

    close = {sid: float(i < 21) for i, sid in enumerate(ids)}  # one item apart: no difference a test can tell
    write_run(tmp_path / "close" / "a" / "gsm8k", a_right, model="a")
    write_run(tmp_path / "close" / "c" / "gsm8k", close, model="c")
    result = run_cli("leaderboard", "close", "--out", "board2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    overview = (tmp_path / "board2" / "index.html").read_text(encoding="utf-8").split('id="overview"')[1]
    assert 'title="not significantly different from c"' in overview.split("</table>")[0]


@pytest.mark.slow
def test_a_sweep_of_three_checkpoints_is_evaluated_in_turn_and_drawn(tmp_path: Path) -> None:
    from mathusereval.backends.base import embedded_gguf_path

    for step in (1200, 300, 50):  # made out of order: the sweep orders by the step in the name
        path = tmp_path / "ckpts" / f"checkpoint-{step}" / "model.gguf"
        path.parent.mkdir(parents=True)
        path.symlink_to(embedded_gguf_path())
    result = run_cli(
        "--model", "ckpts/checkpoint-*/model.gguf", "--tasks", "demo", "--limit", "3", "--max-tokens", "16", "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    order = [line.split(":")[0] for line in result.stderr.splitlines() if "/demo:" in line and "answers" in line]
    assert (
        len(order) == 3
        and len({p.parent.parent.name for p in (tmp_path / "results").glob("*/demo/manifest.json")}) == 3
    )
    (tmp_path / "loss.csv").write_text(
        "model,pretraining loss\ncheckpoint-50/model,2.9\ncheckpoint-300/model,2.4\ncheckpoint-1200/model,2.1\n"
    )
    board = run_cli("leaderboard", "results", "--out", "board", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    table = (tmp_path / "board" / "sweeps" / "demo.md").read_text(encoding="utf-8")
    steps = [line.split(" | ")[1] for line in table.splitlines() if line.startswith("| checkpoint-")]
    assert steps == ["50", "300", "1200"]
    png = (tmp_path / "board" / "plots" / "sweep-demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in table.splitlines() if line.startswith("| checkpoint-")]
    assert "| 1 |" in rows[1] or "≈" in rows[1]  # the same weights: no change a paired test can tell
    by_loss = run_cli("leaderboard", "results", "--out", "board-loss", "--sweep-x", "loss.csv", cwd=tmp_path)
    assert by_loss.returncode == 0, by_loss.stderr
    loss_table = (tmp_path / "board-loss" / "sweeps" / "demo.md").read_text(encoding="utf-8")
    assert "x: pretraining loss" in loss_table
    xs = [line.split(" | ")[2] for line in loss_table.splitlines() if line.startswith("| checkpoint-")]
    assert xs == ["2.9", "2.4", "2.1"]  # in training order (the change is later minus earlier), x beside
