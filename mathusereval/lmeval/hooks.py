"""What lm-eval calls from our task YAMLs (``!function mathusereval.lmeval.hooks.NAME``).

Docs are our `Sample`s flattened to strings (lm-eval keeps them in a ``datasets.Dataset``); every hook turns
them back into records and runs the same task loader, grader or aggregation as ``mue-eval``, so a number
from lm-eval and one from ``mue-eval`` mean the same thing.

- rule-graded tasks: `process_results` grades each response with the task's own grader (``accuracy``).
- judge-scored tasks: `JudgeFilter` judges every response of the task at once, concurrently, through our
  judge role (the only lm-eval hook that sees all responses together; docs/design-notes.md §6), with the judge
  named by ``mue-eval lm-eval --judge MODEL [--judge-base-url URL]`` (or ``$MUE_JUDGE*``) and its replies
  cached in ``$MUE_JUDGE_CACHE`` (default ``~/.cache/mathusereval/lm-eval-judge``); `official_score`
  aggregates them the task's official way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_eval.api.filter import Filter

from ..__about__ import __version__
from ..backends.base import completion_prompt
from ..data.files import resolve_data_dir
from ..errors import ConfigError
from ..plugins import registry
from ..plugins.task import Task, load_task
from ..records import Generation, GenerationParams, Grade, RunManifest, Sample
from ..run.grading import safe_grade
from ..run.judge_stream import judge_items
from ..run.judging import JudgeSettings, role_for
from ..run.pipeline import now
from ..run.postprocess import finalize
from ..run.role_settings import GradingOptions, judge_settings
from ..run.roles import JUDGE_ROLE
from ..run.session import judge_roles
from ..store import RunStore

MODEL = "lm-eval"


def load(task: str, data_dir: str | None = None, **_: Any) -> dict[str, Any]:
    """``custom_dataset``: our task's samples as the "test" split. The data directory comes from
    ``--metadata '{"data_dir": ...}'`` or ``$MUE_DATA_DIR``, else the pinned official download."""
    import datasets

    loaded = load_task(registry.lookup("tasks", task), resolve_data_dir(data_dir))
    return {"test": datasets.Dataset.from_list([to_doc(sample) for sample in loaded.samples])}


def to_doc(sample: Sample) -> dict[str, str]:
    return {
        "id": sample.id,
        "task": sample.task,
        "prompt": completion_prompt(sample.messages),
        "user": sample.messages[-1]["content"],  # the question alone, for tasks whose YAML has the system turn
        "messages": json.dumps(list(sample.messages), ensure_ascii=False),
        "reference": sample.reference,
        "metadata": json.dumps(sample.metadata, ensure_ascii=False),
    }


def to_sample(doc: dict[str, Any]) -> Sample:
    messages = tuple(json.loads(doc["messages"]))
    return Sample(doc["task"], doc["id"], messages, doc["reference"], json.loads(doc["metadata"]))


def _answer(sample: Sample, text: str) -> Generation:
    """lm-eval's response as a generation, post-processed as every backend's is (``</think>`` stripped)."""
    return finalize(Generation(sample_id=sample.id, n_index=0, model=MODEL, text=text, finish_reason="stop"))


def process_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, float]:
    """Rule-graded tasks: the task's primary grader on the (first) response. A grader error scores 0 here,
    where ``mue-eval`` leaves it out and counts it; both record why."""
    sample = to_sample(doc)
    task: Task = registry.lookup("tasks", sample.task)
    name = task.graders[0]
    grade = safe_grade(name, registry.rule_grader(name), sample, _answer(sample, results[0]))
    return {"accuracy": grade.score if grade.score is not None else 0.0}


def _judges() -> dict[str, JudgeSettings]:
    """The judge of the judged tasks, from ``mue-eval lm-eval --judge*`` (``$MUE_JUDGE*``)."""
    judges = judge_settings(GradingOptions.from_env())
    if JUDGE_ROLE not in judges:
        raise ConfigError(
            "this task is scored by an LLM judge: run it with `mue-eval lm-eval --judge MODEL "
            "[--judge-base-url URL] ...`, or set MUE_JUDGE (and MUE_JUDGE_BASE_URL)"
        )
    return judges


def _cache_store(task: Task) -> RunStore:
    """The judge cache of lm-eval runs: a run directory per task, written through the locked writer (one
    lm-eval process at a time per task; a second one is refused with the holder's name)."""
    cache = Path(os.environ.get("MUE_JUDGE_CACHE") or Path.home() / ".cache" / "mathusereval" / "lm-eval-judge")
    return RunStore(cache / task.name)


def _cache_manifest(task: Task) -> RunManifest:
    """What the cache directory holds: judge replies for `task`, keyed by judge and prompt (the replies'
    keys carry the judge's identity, so one cache serves every judge)."""
    identity = hashlib.sha256(f"lm-eval judge cache\0{task.name}\0{task.version}".encode()).hexdigest()
    return RunManifest(
        run_id=f"lm-eval-judge/{task.name}",
        task=task.name,
        task_version=task.version,
        model=MODEL,
        backend=MODEL,
        backend_config={},
        params=GenerationParams().to_json(),
        data_sha256="",
        prompt_sha256="",
        fingerprint=identity,
        mathusereval_version=__version__,
        started_at=now(),
    )


async def _judge_all(task: Task, items: list[tuple[Sample, Generation]]) -> dict[str, Grade]:
    judges = _judges()
    judge = registry.judge_grader(task.graders[0])
    store = _cache_store(task)
    grades: dict[str, Grade] = {}
    with store.writing(_cache_manifest(task)):  # the lock first: a second lm-eval process sends nothing
        async with judge_roles(judges) as roles:
            role = role_for(roles, judge)
            assert role is not None
            await judge_items(role, judge, items, store, lambda g: grades.__setitem__(g.sample_id, g))
    return grades


class JudgeFilter(Filter):  # type: ignore[misc]
    """All responses of a judge-scored task to the judge at once; each becomes a JSON verdict string."""

    def apply(self, resps: Sequence[Sequence[str]], docs: Sequence[dict[str, Any]]) -> list[list[str]]:
        samples = [to_sample(doc) for doc in docs]
        if not samples:
            return []
        task: Task = registry.lookup("tasks", samples[0].task)
        items = [(s, _answer(s, r[0] if r else "")) for s, r in zip(samples, resps, strict=True)]
        grades = asyncio.run(_judge_all(task, items))
        return [[json.dumps(_verdict(grades[s.id]), ensure_ascii=False)] for s in samples]


def _verdict(grade: Grade) -> dict[str, Any]:
    return {"score": grade.score, "error": grade.error, "parse_failure": bool(grade.details.get("parse_failure"))}


def process_judged(doc: dict[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """Judge-scored tasks: the judge's score travels with the doc to `official_score`; coverage beside it
    (``scored``: the judge gave a score; ``unparseable``: no reply could be read after the retries)."""
    verdict = json.loads(results[0])
    return {
        "score": (json.dumps(doc, ensure_ascii=False), verdict["score"]),
        "scored": float(verdict["score"] is not None),
        "unparseable": float(bool(verdict.get("parse_failure"))),
    }


def official_score(items: Sequence[tuple[str, float | None]]) -> float:
    """The task's official aggregate (MathUserEval / AlignBench overall) of the judged items; unparseable
    judgments are left out, as ``mue-eval`` does."""
    samples = [to_sample(json.loads(doc)) for doc, _ in items]
    grades = [
        Grade(sample_id=s.id, n_index=0, grader="judge", score=score)
        for s, (_, score) in zip(samples, items, strict=True)
        if score is not None
    ]
    if not grades:  # nothing could be scored: say so rather than report a number
        return float("nan")
    task: Task = registry.lookup("tasks", samples[0].task)
    return float(task.aggregate(samples, grades)[0].value)
