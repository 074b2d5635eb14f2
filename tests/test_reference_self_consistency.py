"""Every reference graded right against itself, on every task with local data (issue 34 §1): a perfect model
that boxes the task's own reference must score 100 %. An empty reference is a data defect: reported when
the task loads, left out of the score with a count, never graded (upstream's exact-string rule would call an
empty answer right; any answer was wrong on it here before)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathusereval.graders import grade_answer, grade_many
from mathusereval.graders.extract import MAX_ANSWER_CHARS, extract_reference
from mathusereval.plugins import registry
from mathusereval.plugins.contracts import is_judge
from mathusereval.plugins.metrics import accuracy
from mathusereval.plugins.task import EMPTY_REFERENCE, LeftOut, jsonl_loader, load_task, user_turn
from mathusereval.records import Generation, Sample

from .conftest import run_cli
from .judge_server import ScriptedServer

# a tool-integrated variant (``<task>-tir``) has its base's data, references and graders
TASKS = sorted(name for name in registry.names("tasks") if not registry.lookup("tasks", name).tir)


def _boxed(reference: str) -> str:
    return f"So the final answer is $\\boxed{{{reference}}}$."


def _primary(name: str) -> tuple[str, bool]:
    """(the task's primary grader, whether it is an LLM judge)."""
    grader = registry.lookup("tasks", name).graders[0]
    return grader, is_judge(registry.lookup("graders", grader))


@pytest.mark.parametrize("name", TASKS)
def test_every_reference_is_right_against_itself(name: str, shared_data: Path) -> None:
    """Rule-graded tasks through their own grader, as a run calls it. A judged task's score comes from its
    judge; the answer grader offered beside it (``--graders JUDGE,answer``) is held to the same promise for
    every reference it reads as an answer (up to MAX_ANSWER_CHARS; a longer box is never graded)."""
    loaded = load_task(registry.lookup("tasks", name), shared_data)
    grader_name, judged = _primary(name)
    if judged:
        samples = [s for s in loaded.samples if len(s.reference.strip()) <= MAX_ANSWER_CHARS]
        assert len(samples) >= len(loaded.samples) - 1, "only a rare essay-length reference is out of bounds"
        verdicts = grade_many([(s.reference, _boxed(s.reference)) for s in samples], workers=1)
        wrong = [(s.id, v.reason, s.reference[:80]) for s, v in zip(samples, verdicts, strict=True) if not v.correct]
    else:
        grader = registry.rule_grader(grader_name)
        grades = [(s, grader(s, Generation(s.id, 0, "oracle", _boxed(s.reference), "stop"))) for s in loaded.samples]
        wrong = [(s.id, g.details.get("reason"), s.reference[:80]) for s, g in grades if not g.correct]
    assert loaded.samples and not wrong, wrong[:10]


def test_the_empty_references_of_gaokao2023en_are_left_out_when_it_loads(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file has 385 rows; two have an empty ``answer``: left out, counted, named on stderr."""
    loaded = registry.lookup("tasks", "gaokao2023en").load(shared_data)
    assert len(loaded.samples) == 383
    assert [(x.sample_id, x.reason) for x in loaded.left_out] == [
        ("HMMT2023General_9", EMPTY_REFERENCE),
        ("052023SATS4_11", EMPTY_REFERENCE),
    ]
    assert all(s.reference.strip() for s in loaded.samples)
    err = capsys.readouterr().err
    assert "2 items of 'gaokao2023en' are left out of the score" in err and "line 168 (id HMMT2023General_9)" in err


def test_every_other_task_loads_without_defects(shared_data: Path) -> None:
    defective = {name: registry.lookup("tasks", name).load(shared_data).left_out for name in TASKS}
    assert {name for name, left in defective.items() if left} == {"gaokao2023en"}


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_loader_leaves_empty_references_out_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(
        tmp_path / "items.jsonl",
        [{"id": "a", "q": "1+1?", "a": "2"}, {"id": "b", "q": "?", "a": "  "}, {"id": "c", "q": "2+2?", "a": "4"}],
    )

    def to_sample(row: dict[str, str]) -> Sample:
        return Sample("t", row["id"], user_turn(row["q"]), row["a"], {})

    loaded = jsonl_loader(data, to_sample, required=("id", "q", "a"), task="t")(None)
    assert [s.id for s in loaded.samples] == ["a", "c"]
    assert loaded.left_out == (LeftOut(2, "b", EMPTY_REFERENCE),)
    assert f"{data}: 1 items of 't' are left out of the score, a data defect: line 2 (id b)" in capsys.readouterr().err
    # a reference-free judge's task keeps every item
    kept = jsonl_loader(data, to_sample, task="t", reference_required=False)(None)
    assert [s.id for s in kept.samples] == ["a", "b", "c"] and kept.left_out == ()


@pytest.mark.parametrize("grader_name", ["answer", "choice"])
@pytest.mark.parametrize("answer", ["", "42", "\\boxed{}", "So the final answer is $\\boxed{A}$."])
def test_an_empty_reference_is_never_graded(grader_name: str, answer: str) -> None:
    """Not right (upstream's string rule: "" == ""), not wrong either: no score, the defect named."""
    sample = Sample("t", "1", user_turn("q"), " ", {})
    grade = registry.rule_grader(grader_name)(sample, Generation("1", 0, "m", answer, "stop"))
    assert grade.score is None and grade.correct is None
    assert grade.error is not None and EMPTY_REFERENCE in grade.error
    assert accuracy([sample], [grade])[0].n == 0  # out of the score
    assert grade_answer("", answer).reason == EMPTY_REFERENCE


# (reference, what the grader reads as its answer): a long reference that states no answer in words is read
# whole, not reduced to its last number (a derivation's last number is a coefficient, not the answer)
REFERENCES = [
    ("x=0 or x=2", "x=0 or x=2"),  # was "x = 2": "\boxed{x=2}" passed for a two-solution reference
    ("x=-\\frac{13}{8} or x=\\frac{53}{8}", "x=-\\frac{13}{8} or x=\\frac{53}{8}"),
    (
        "\\mathbf{y}=c_{1}\\left[\\begin{array}{l}1 \\\\ 1\\end{array}\\right] e^{-t}+c_{2}\\left[\\begin{array}{l}"
        "1 \\\\ 0\\end{array}\\right] e^{2 t} for arbitrary constants",
        "\\mathbf{y}=c_{1}\\left[\\begin{array}{l}1 \\\\ 1\\end{array}\\right] e^{-t}+c_{2}\\left[\\begin{array}{l}"
        "1 \\\\ 0\\end{array}\\right] e^{2 t} for arbitrary constants",
    ),  # was "2"
    # College Math: a determinant, a dot product, "So the area is 9.": the value the last clause states
    ("In this case two rows were switched and so the resulting determinant is -1 times the first.", "-1"),
    ("\\left|\\begin{array}{lll}\n1 & 2 & 1 \\\\\n2 & 1 & 3 \\\\\n2 & 1 & 1\n\\end{array}\\right|=6", "6"),
    ("We compute the product of the two matrices first and then the trace. So the trace is 9.", "9"),
    ("The general solution is x = 1 + s and y = 2 - s, where s is any real number (a line).", None),
]


@pytest.mark.parametrize(("reference", "expected"), REFERENCES)
def test_long_references_are_read_whole_unless_they_state_a_value(reference: str, expected: str | None) -> None:
    assert extract_reference(reference) == (reference if expected is None else expected)


def test_a_reference_read_whole_does_not_match_its_last_number() -> None:
    reference = REFERENCES[2][0]
    assert not grade_answer(reference, "\\boxed{2}").correct
    assert grade_answer(reference, _boxed(reference)).correct
    assert not grade_answer("x=0 or x=2", "\\boxed{x = 2}").correct
    assert grade_answer("x=0 or x=2", "\\boxed{x = 2 \\text{ or } x = 0}").correct


PLUGIN = """
from pathlib import Path
import mathusereval as mue

def to_sample(row):
    return mue.Sample("defects", row["id"], mue.user_turn(row["q"]), row["a"], {})

mue.register("tasks", "defects", mue.Task(
    name="defects", version="1", graders=("answer",), aggregate=mue.accuracy,
    load=mue.jsonl_loader(Path(__file__).with_name("items.jsonl"), to_sample, task="defects"),
))
"""


def test_a_run_never_asks_nor_grades_an_item_without_reference(tmp_path: Path) -> None:
    """The whole path: the warning when the task loads, the item never generated, the score over the rest."""
    (tmp_path / "defects.py").write_text(PLUGIN, encoding="utf-8")
    rows = [{"id": "a", "q": "1+1?", "a": "2"}, {"id": "b", "q": "2+2?", "a": ""}, {"id": "c", "q": "3+3?", "a": "6"}]
    _write(tmp_path / "items.jsonl", rows)
    answers = {"1+1?": "\\boxed{2}", "2+2?": "\\boxed{4}", "3+3?": "\\boxed{6}"}
    with ScriptedServer(lambda body, _: answers[body["messages"][-1]["content"]]) as server:
        args = ("--include", "defects.py", "--tasks", "defects", "--base-url", server.url, "--model", "m")
        result = run_cli(*args, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 items of 'defects' are left out of the score, a data defect: line 2 (id b): empty reference" in (
        result.stderr
    )
    run = tmp_path / "results" / "m" / "defects"
    asked = [json.loads(line)["sample_id"] for line in (run / "generations.jsonl").read_text().splitlines()]
    assert sorted(asked) == ["a", "c"]
    headline = json.loads((run / "summary.json").read_text())["metrics"][0]
    assert (headline["name"], headline["value"], headline["n"]) == ("accuracy", 1.0, 2)
