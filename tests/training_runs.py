"""Runs written straight through `RunStore`, with every answer's text, finish reason and grades chosen by the
test: for export and agreement tests that need exact control over verdicts (no model, no judge)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mathusereval.records import Generation, GenerationParams, Grade, RunManifest, Sample
from mathusereval.store import RunStore


@dataclass(frozen=True)
class Answer:
    """One stored answer: `judge` is a score, "parse" (an unparseable judgment) or None (no judge grade);
    `correct` is the answer grader's verdict (None: no answer grade)."""

    sample: str
    n: int
    text: str
    judge: float | str | None = None
    correct: bool | None = None
    finish: str = "stop"
    error: str | None = None


def write_run(
    directory: Path,
    answers: list[Answer],
    *,
    model: str = "m",
    task: str = "gsm8k-train",
    n: int = 4,
    samples: tuple[str, ...] = ("p1", "p2"),
    graders: tuple[str, ...] = ("math-critique", "answer"),
    judge_model: str = "judge-x",
) -> Path:
    store = RunStore(directory)
    manifest = RunManifest(
        run_id=f"{model}/{task}",
        task=task,
        task_version="1",
        model=model,
        backend="openai",
        backend_config={},
        params=GenerationParams(temperature=0.8, n=n).to_json(),
        data_sha256="d" * 64,
        prompt_sha256="p" * 64,
        fingerprint=f"fp-{model}-{task}",
        mathusereval_version="test",
        started_at="2026-01-01T00:00:00+00:00",
        graders=graders,
        judges={g: {"judge_model": judge_model, "judge_backend": "openai"} for g in graders if g != "answer"},
    )
    store.write_manifest(manifest)
    store.open()
    try:
        for sid in samples:
            store.add_sample(
                Sample(task, sid, ({"role": "user", "content": f"question {sid}?"},), "42", {"category": f"cat-{sid}"})
            )
        for a in answers:
            store.add_generation(Generation(a.sample, a.n, model, text=a.text, finish_reason=a.finish, error=a.error))
            if a.judge == "parse":
                store.add_grade(
                    Grade(a.sample, a.n, "math-critique", None, details={"parse_failure": True}, error="unparseable")
                )
            elif a.judge is not None:
                store.add_grade(Grade(a.sample, a.n, "math-critique", float(a.judge), correct=float(a.judge) >= 7))
            if a.correct is not None:
                store.add_grade(Grade(a.sample, a.n, "answer", float(a.correct), correct=a.correct))
    finally:
        store.close()
    return directory
