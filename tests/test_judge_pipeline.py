"""Judges end to end over loopback: import the published GPT-4-1106 MathUserEval answers as a run, judge
them with a scripted judge server, and check the arithmetic, the cache, retries, parity, the cascade and
the budget. The scripted judge's scores are a hash of each answer, so every expectation below is computed
independently of the code under test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_cli
from .judge_server import ScriptedServer, judged_answer

ANSWERS = "mathusereval/model_answer/gpt-4-1106-preview.jsonl"
RUN = Path("results/gpt-4-1106-preview/mathusereval")


def score_of(answer: str) -> int:
    return 1 + int(hashlib.sha256(answer.encode()).hexdigest()[:8], 16) % 10


def fmt_of(answer: str) -> int:
    return int(hashlib.sha256(answer.encode()).hexdigest()[8:10], 16) % 4


def reply(score: int, fmt: int) -> str:
    """Four real-world output shapes; upstream parses shapes 0 and 2 and records -1 for 1 and 3."""
    return [
        f"与参考答案一致。\n{{'事实正确性': {score}, '满足用户需求': {score}, '综合得分': {score}}}",
        f'分析……\n{{"事实正确性": {score}, "综合得分": {score}}}',
        f"分析……\n{{\n  '事实正确性': {score},\n  '综合得分': {score}\n}}",
        f"综合得分：{score}",
    ][fmt]


def upstream_of(score: int, fmt: int) -> float:
    return float(score) if fmt in (0, 2) else -1.0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture()
def imported(tmp_path: Path, shared_data: Path) -> tuple[Path, list[str]]:
    """The 567 published answers imported as a run; returns (cwd, answers in sample order)."""
    result = run_cli(
        "import", str(shared_data / ANSWERS), "--task", "mathusereval", "--data-dir", str(shared_data), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "imported 567 answers of gpt-4-1106-preview" in result.stderr
    samples = read_jsonl(tmp_path / RUN / "samples.jsonl")
    answers = {g["sample_id"]: g["text"] for g in read_jsonl(tmp_path / RUN / "generations.jsonl")}
    assert len(samples) == 567 and len(answers) == 567
    return tmp_path, [answers[s["id"]] for s in samples]


def grade(cwd: Path, url: str, *extra: str, judge: str = "scripted-judge") -> Any:
    return run_cli("grade", str(RUN), "--judge", judge, "--judge-base-url", url, "--quiet", *extra, cwd=cwd)


def summary(cwd: Path) -> dict[str, Any]:
    data = json.loads((cwd / RUN / "summary.json").read_text(encoding="utf-8"))
    data["by_name"] = {m["name"]: m for m in data["metrics"]}
    return data


def test_import_then_judge_a_few_with_retries_failures_and_parity(imported: tuple[Path, list[str]]) -> None:
    cwd, answers = imported
    first = answers[:12]
    flaky, hopeless, out_of_range = first[3], first[7], first[10]

    def script(body: dict[str, Any], attempt: int) -> str | int:
        answer = judged_answer(body)
        if answer == hopeless or (answer == flaky and attempt == 0 and body["temperature"] == 0):
            return "抱歉，我无法给出评分。"
        if answer == out_of_range:
            return "{'综合得分': 11}"
        return reply(score_of(answer), fmt_of(answer))

    with ScriptedServer(script) as server:
        result = grade(cwd, server.url, "--limit", "12", "--judge-price", "2,4")
        assert result.returncode == 0, result.stderr
        bodies = list(server.bodies)
    # 12 first calls, then 1 retry for the flaky item and 2 each for the two that never parse
    assert len(bodies) == 17
    assert all(len(b["messages"]) == 1 and b["messages"][0]["role"] == "user" for b in bodies)
    assert all(b["model"] == "scripted-judge" for b in bodies)
    assert Counter(b["temperature"] for b in bodies) == {0.0: 12, 0.5: 5}  # retries sample, with new seeds
    assert len({(b["messages"][0]["content"], b["seed"]) for b in bodies}) == 17

    s = summary(cwd)
    good = [a for a in first if a not in (hopeless, out_of_range)]
    expected = [score_of(a) for a in good]
    assert s["by_name"]["overall"]["value"] == pytest.approx(sum(expected) / 10)
    assert s["by_name"]["overall"]["n"] == 10
    assert s["by_name"]["hard_split"]["value"] == pytest.approx(sum(v >= 7 for v in expected) / 10)
    assert s["counts"]["parse_failures"] == 2 and s["counts"]["graded"] == 10
    usage = s["judge_usage"]["alignbench-judge"]
    assert (usage["calls"], usage["retries"], usage["parse_failures"], usage["cached"]) == (17, 5, 2, 0)
    prompt_chars = sum(len(b["messages"][0]["content"]) for b in bodies)
    assert usage["prompt_tokens"] == prompt_chars
    assert usage["cost_usd"] == pytest.approx((2 * prompt_chars + 4 * usage["completion_tokens"]) / 1e6)

    grades = {g["sample_id"]: g for g in read_jsonl(cwd / RUN / "grades.jsonl")}
    assert len(grades) == 12
    failed = [g for g in grades.values() if g["error"]]
    assert sorted(g["error"] for g in failed) == [
        "unparseable judgment (no score found; no score found; no score found)",
        "unparseable judgment (score 11 is outside 1-10; score 11 is outside 1-10; score 11 is outside 1-10)",
    ]
    assert all(g["score"] is None and g["details"]["parse_failure"] for g in failed)
    retried = [g for g in grades.values() if g["details"].get("attempts") == 2]
    assert len(retried) == 1 and retried[0]["details"]["earlier_failures"] == ["no score found"]
    manifest = json.loads((cwd / RUN / "manifest.json").read_text(encoding="utf-8"))
    judge_entry = manifest["judges"]["alignbench-judge"]
    assert judge_entry["judge_model"] == "scripted-judge" and len(judge_entry["prompt_sha256"]) == 64
    assert judge_entry["params"]["temperature"] == 0.0

    # --parity upstream: the first reply through upstream's regexes, -1 included, failures counted
    upstream = []
    for a in first:
        if a in (hopeless, flaky):
            upstream.append(-1.0)
        elif a == out_of_range:
            upstream.append(11.0)
        else:
            upstream.append(upstream_of(score_of(a), fmt_of(a)))
    board = run_cli("leaderboard", "--parity", "upstream", "--markdown", "board.md", cwd=cwd)
    assert board.returncode == 0, board.stderr
    assert f"{sum(upstream) / 12:.2f}" in (cwd / "board.md").read_text() and "(n=12)" in (cwd / "board.md").read_text()


def test_all_567_judged_aggregate_like_the_published_tables(
    imported: tuple[Path, list[str]], shared_data: Path
) -> None:
    cwd, _ = imported
    with ScriptedServer(lambda body, _: reply(score_of(judged_answer(body)), 0)) as server:
        result = grade(cwd, server.url, "--judge-concurrency", "16")
        assert result.returncode == 0, result.stderr
        assert len(server.bodies) == 567
    rows = read_jsonl(shared_data / ANSWERS)
    score = {(r["source"], r["question_id"]): score_of(r["answer"]) for r in rows}
    by_sub: dict[str, list[int]] = {}
    by_cat: dict[str, list[int]] = {}
    for r in rows:
        by_sub.setdefault(r["subcategory"], []).append(score[(r["source"], r["question_id"])])
        by_cat.setdefault(r["category"], []).append(score[(r["source"], r["question_id"])])
    m = summary(cwd)["by_name"]
    # upstream show_result.py: per-item means; Overall over every row, the 22 交叉学科 included (design-notes §1)
    assert m["overall"]["value"] == pytest.approx(sum(score.values()) / 567) and m["overall"]["n"] == 567
    assert m["elementary"]["value"] == pytest.approx(sum(by_cat["初等数学"]) / 342)
    assert m["advanced"]["value"] == pytest.approx(sum(by_cat["高等数学"]) / 203)
    assert m["supplementary"]["value"] == pytest.approx(sum(by_cat["交叉学科"]) / 22)
    for sub in ("algebra", "calculate", "geometry", "trigonometry", "calculus", "discrete", "linear_algebra"):
        assert m[f"subcategory/{sub}"]["value"] == pytest.approx(sum(by_sub[sub]) / len(by_sub[sub]))
    assert m["hard_split"]["value"] == pytest.approx(sum(v >= 7 for v in score.values()) / 567)


def test_rejudging_reuses_stored_replies_and_a_new_judge_redoes_them(imported: tuple[Path, list[str]]) -> None:
    cwd, _ = imported
    with ScriptedServer(lambda body, _: reply(score_of(judged_answer(body)), 1)) as server:
        assert grade(cwd, server.url, "--limit", "5").returncode == 0
        before = summary(cwd)["by_name"]["overall"]["value"]
        assert grade(cwd, server.url, "--limit", "5").returncode == 0  # grades current: nothing sent
        assert len(server.bodies) == 5
        (cwd / RUN / "grades.jsonl").unlink()  # grades lost: rebuilt from judgments.jsonl, nothing sent
        assert grade(cwd, server.url, "--limit", "5").returncode == 0
        assert len(server.bodies) == 5 and summary(cwd)["by_name"]["overall"]["value"] == before
        assert summary(cwd)["judge_usage"]["alignbench-judge"]["cached"] == 5
        assert grade(cwd, server.url, "--limit", "5", judge="other-judge").returncode == 0
        assert len(server.bodies) == 10 and {b["model"] for b in server.bodies[5:]} == {"other-judge"}
        manifest = json.loads((cwd / RUN / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["judges"]["alignbench-judge"]["judge_model"] == "other-judge"
    generations = read_jsonl(cwd / RUN / "generations.jsonl")
    assert len(generations) == 567  # answers were never regenerated


def test_failed_calls_and_budget_stops_are_errors_that_the_next_run_redoes(imported: tuple[Path, list[str]]) -> None:
    cwd, answers = imported
    broken = answers[1]
    with ScriptedServer(lambda body, _: 400 if judged_answer(body) == broken else reply(5, 0)) as server:
        result = grade(cwd, server.url, "--limit", "6", "--judge-concurrency", "1", "--judge-token-budget", "4000")
        assert result.returncode == 1
        sent = len(server.bodies)
    grades = {g["sample_id"]: g for g in read_jsonl(cwd / RUN / "grades.jsonl")}
    errors = Counter(g["error"].split(":")[0] for g in grades.values() if g["error"])
    usage = summary(cwd)["judge_usage"]["alignbench-judge"]
    # each prompt is over 1,000 characters (= tokens here), so the 4,000-token budget stops the run early
    assert 2 <= sent < 6 and usage["budget_skipped"] == 6 - sent
    assert usage["prompt_tokens"] + usage["completion_tokens"] >= 4000
    assert errors["judge budget exhausted"] == 6 - sent and errors["judge call failed"] == 1
    assert "over budget" in result.stderr and "1 failed calls" in result.stderr
    with ScriptedServer(lambda body, _: reply(5, 0)) as server:
        result = grade(cwd, server.url, "--limit", "6")
        assert result.returncode == 0, result.stderr
        assert len(server.bodies) == 6 - sent + 1  # only the skipped and the failed items
    assert summary(cwd)["counts"]["graded"] == 6


def test_cascade_sends_only_unsettled_items(imported: tuple[Path, list[str]]) -> None:
    cwd, _ = imported
    with ScriptedServer(lambda body, _: reply(6, 0)) as server:
        result = grade(cwd, server.url, "--judge-cascade")
        assert result.returncode == 0, result.stderr
        settled = summary(cwd)["judge_usage"]["alignbench-judge"]["cascade_decided"]
        assert settled > 0 and len(server.bodies) == 567 - settled
        assert f"{settled} settled without a call" in result.stderr
        grades = read_jsonl(cwd / RUN / "grades.jsonl")
        cascade = [g for g in grades if g["details"].get("cascade")]
        assert len(cascade) == settled and {g["score"] for g in cascade} <= {8.0, 2.0}
        # without the cascade, exactly the settled items go to the judge
        assert grade(cwd, server.url).returncode == 0
        assert len(server.bodies) == 567


def test_math_critique_in_place_of_the_task_judge_with_the_answer_grader_beside_it(
    imported: tuple[Path, list[str]],
) -> None:
    cwd, answers = imported
    with ScriptedServer(lambda body, _: f"步骤正确。\n评分：[[{score_of(judged_answer(body))}]]") as server:
        result = grade(cwd, server.url, "--limit", "8", "--graders", "math-critique,answer")
        assert result.returncode == 0, result.stderr
        assert all("评分：[[分数]]" in b["messages"][0]["content"] for b in server.bodies)
    s = summary(cwd)
    expected = [score_of(a) for a in answers[:8]]
    assert s["graders"] == ["math-critique", "answer"]
    assert s["by_name"]["overall"]["value"] == pytest.approx(sum(expected) / 8)  # MathUserEval's own aggregation
    assert s["by_name"]["hard_split"]["value"] == pytest.approx(sum(v >= 7 for v in expected) / 8)
    assert s["by_name"]["answer/accuracy"]["n"] == 8
    grades = read_jsonl(cwd / RUN / "grades.jsonl")
    assert Counter(g["grader"] for g in grades) == {"math-critique": 8, "answer": 8}


def test_run_with_a_judge_generates_then_judges(tmp_path: Path, shared_data: Path) -> None:
    """``mue-eval run`` on a judged task: the model under test and the judge are both served models."""

    def script(body: dict[str, Any], _: int) -> str:
        if "[助手的答案开始]" in body["messages"][-1]["content"]:
            return reply(score_of(judged_answer(body)), 0)
        return f"解：答案是 {len(body['messages'][-1]['content'])}。"

    def evaluate(url: str) -> Any:
        return run_cli(
            "--model", "served", "--base-url", url, "--tasks", "mathusereval", "--limit", "4",
            "--data-dir", str(shared_data), "--judge", "judge", "--judge-base-url", url, "--quiet",
            cwd=tmp_path,
        )  # fmt: skip

    with ScriptedServer(script) as server:
        result = evaluate(server.url)
        assert result.returncode == 0, result.stderr
        assert [b["model"] for b in server.bodies].count("judge") == 4
    run = tmp_path / "results/served/mathusereval"
    texts = [g["text"] for g in read_jsonl(run / "generations.jsonl")]
    data = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    overall = next(m for m in data["metrics"] if m["name"] == "overall")
    assert overall["value"] == pytest.approx(sum(score_of(t) for t in texts) / 4)
    assert json.loads((run / "manifest.json").read_text())["judges"]["alignbench-judge"]["judge_model"] == "judge"
    # a second identical run reuses answers and judgments
    with ScriptedServer(script) as server:
        again = evaluate(server.url)
        assert again.returncode == 0 and server.bodies == []


def test_identical_answers_share_one_judge_call(tmp_path: Path, shared_data: Path) -> None:
    """Two generations of one sample with the same text make the same judge prompt: one call, both graded."""

    def script(body: dict[str, Any], _: int) -> str:
        if "[助手的答案开始]" in body["messages"][-1]["content"]:
            return reply(7, 0)
        return "答案是 2。"  # every generation the same text

    with ScriptedServer(script) as server:
        result = run_cli(
            "--model", "served", "--base-url", server.url, "--tasks", "mathusereval", "--limit", "2",
            "--samples", "2", "--data-dir", str(shared_data), "--judge", "judge", "--judge-base-url", server.url,
            "--quiet", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert [b["model"] for b in server.bodies].count("judge") == 2
    grades = read_jsonl(tmp_path / "results/served/mathusereval/grades.jsonl")
    assert sorted((g["sample_id"], g["n_index"], g["score"]) for g in grades) == sorted(
        (sid, k, 7.0) for sid in {g["sample_id"] for g in grades} for k in (0, 1)
    )
    assert len(grades) == 4 and all(g["error"] is None for g in grades)


def test_import_errors_name_the_line_and_write_nothing(tmp_path: Path, shared_data: Path) -> None:
    rows = read_jsonl(shared_data / ANSWERS)[:3]
    bad = tmp_path / "answers.jsonl"
    bad.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [*rows[:2], {**rows[2], "question_id": 99999}]))
    result = run_cli("import", str(bad), "--task", "mathusereval", "--data-dir", str(shared_data), cwd=tmp_path)
    assert result.returncode == 2
    assert "answers.jsonl:3: no mathusereval sample has the key 'matheval-99999'" in result.stderr
    bad.write_text(json.dumps({k: v for k, v in rows[0].items() if k != "source"}, ensure_ascii=False))
    result = run_cli("import", str(bad), "--task", "mathusereval", "--data-dir", str(shared_data), cwd=tmp_path)
    assert "answers.jsonl:1: missing required field 'source'" in result.stderr
    assert not (tmp_path / "results").exists()


def test_judge_options_are_checked(imported: tuple[Path, list[str]]) -> None:
    cwd, _ = imported
    no_judge = run_cli("grade", str(RUN), cwd=cwd)
    assert no_judge.returncode == 2 and "pass --judge MODEL" in no_judge.stderr
    budget = run_cli(
        "grade", str(RUN), "--judge", "j", "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-budget", "1", cwd=cwd
    )
    assert budget.returncode == 2 and "--judge-budget is in USD: also pass --judge-price" in budget.stderr
    price = run_cli(
        "grade", str(RUN), "--judge", "j", "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-price", "x", cwd=cwd
    )
    assert price.returncode == 2 and "--judge-price wants IN,OUT" in price.stderr
    down = run_cli("grade", str(RUN), "--judge", "j", "--judge-base-url", "http://127.0.0.1:9/v1", cwd=cwd)
    assert down.returncode == 2 and "cannot reach http://127.0.0.1:9/v1" in down.stderr
    assert (cwd / RUN / "grades.jsonl").read_text() == ""  # nothing graded, nothing lost
    shutil.rmtree(cwd / RUN)


def test_leaderboard_reference_rows_beside_a_judged_run(imported: tuple[Path, list[str]]) -> None:
    cwd, _ = imported
    with ScriptedServer(lambda body, _: reply(score_of(judged_answer(body)), 0)) as server:
        assert grade(cwd, server.url, "--limit", "20").returncode == 0  # the first 20 samples judged
    board = run_cli("leaderboard", "--reference", "--out", "board", "--scale", "10", cwd=cwd)
    assert board.returncode == 0, board.stderr
    assert "GPT-4-1106-Preview [published]" in board.stdout and "57.3" in board.stdout  # --scale in the terminal too
    assert "judge scores ×10" in board.stdout
    text = (cwd / "board" / "leaderboard.md").read_text(encoding="utf-8")
    assert "| GPT-4-1106-Preview [published] | 57.3 |" in text  # 5.73 x 10 to 1 dp as OpenCompass, no n
    assert "Judge scores are shown ×10" in text
    assert "- mathusereval [published]: ChatGLM-Math README leaderboard, judge gpt-4-1106-preview" in text
    assert "[published] | " in text and "GPT-4o" not in text  # no AlignBench rows without an AlignBench run
    rows = [line for line in text.splitlines() if line.startswith("| ") and "model" not in line]
    assert rows[0].startswith("| gpt-4-1106-preview |") and len(rows) == 1 + 12  # our run first, then 12 published


def test_a_mostly_unparseable_judge_gives_a_marked_partial_run(imported: tuple[Path, list[str]]) -> None:
    """561 of 567 judgments unparseable: the run is shown as partial 6/567 with the reason in every
    rendering and is not ranked among complete runs; --parity upstream keeps upstream's -1 convention."""
    cwd, answers = imported
    keep = set(answers[:6])

    def script(body: dict[str, Any], attempt: int) -> str:
        answer = judged_answer(body)
        return "{'综合得分': 9}" if answer in keep else "我无法给出分数。"

    with ScriptedServer(script) as server:
        graded = grade(cwd, server.url, "--judge-retries", "0")
    assert "561 unparseable" in graded.stderr
    assert "partial 6/567" in graded.stdout  # the table printed after grading
    board = run_cli("leaderboard", "results", "--out", "board", "--reference", cwd=cwd)
    assert board.returncode == 0, board.stderr
    assert "partial run, 6 of 567 answers scored (1%): 561 unparseable judgments" in board.stderr
    overview = (cwd / "board" / "leaderboard.md").read_text(encoding="utf-8")
    row = next(line for line in overview.splitlines() if line.startswith("| gpt-4-1106-preview |"))
    assert "[partial 6/567]" in row
    assert "partial 6/567" in (cwd / "board" / "index.html").read_text(encoding="utf-8")
    upstream = run_cli("leaderboard", "results", "--parity", "upstream", "--markdown", "up.md", cwd=cwd)
    assert upstream.returncode == 0 and "partial" not in (cwd / "up.md").read_text(encoding="utf-8")
    assert "partial run" not in upstream.stderr
