"""What a benchmark is: a frozen `Task` record that a task module builds and registers by name."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import GenerationParams, Grade, MetricValue, Sample


@dataclass(frozen=True, slots=True)
class LeftOut:
    """An item of a task's data file that is left out of the score: a data defect (an empty reference), never
    generated nor graded."""

    line: int
    sample_id: str
    reason: str


@dataclass(frozen=True)
class LoadedData:
    """The samples of a task plus the provenance the manifest records.

    `left_out`: items of the file that are not in `samples` because their data is defective; the loader
    reports them when the task loads, and a score over `samples` says how many it leaves out."""

    samples: list[Sample]
    sha256: str
    source: str
    left_out: tuple[LeftOut, ...] = ()


EMPTY_REFERENCE = "empty reference"


def report_left_out(task: str, source: str, left_out: Sequence[LeftOut]) -> None:
    """One warning line when a task loads with defective items: how many, and the first few by line and id."""
    shown = ", ".join(f"line {x.line} (id {x.sample_id}): {x.reason}" for x in left_out[:5])
    print(
        f"mue-eval: warning: {source}: {len(left_out)} items of {task!r} are left out of the score, a data defect: "
        f"{shown}{' ...' if len(left_out) > 5 else ''}",
        file=sys.stderr,
    )


BOXED_COT = "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
"""Zero-shot chain of thought with a boxed final answer: the de-facto chat prompt for GSM8K/MATH/AIME
(the Qwen2.5-Math and DeepSeek-Math evaluation scripts use this wording)."""

Loader = Callable[[Path | None], LoadedData]
Aggregator = Callable[[Sequence[Sample], Sequence[Grade]], list[MetricValue]]


@dataclass(frozen=True)
class Task:
    """One benchmark: where its data comes from, how it is prompted, graded and aggregated.

    Attributes:
        name: registry name, also the results sub-directory.
        version: bump when data handling or scoring change, so stored runs are not mixed (a prompt change
            needs no bump: the prompts actually rendered are fingerprinted, `prompt_fingerprint`).
        load: data directory (or None for the official source) -> samples with provenance.
        graders: registered grader names; the first one is primary and feeds `aggregate`.
        aggregate: grades of the primary grader -> metrics; the first metric is the headline number.
        params: default generation settings (the CLI may override them).
        description: one line for `mue-eval tasks`.
        row_key: upstream data row -> sample id; also reads answer files that copy the question fields
            (``mue-eval import``). None: the task cannot import answers.
        tir: tool-integrated reasoning: the model's programs run in the sandbox and their output is fed
            back (`mathusereval.tir.chain`); the ``<task>-tir`` variants (``tasks/tir.py``).
    """

    name: str
    version: str
    load: Loader
    graders: tuple[str, ...]
    aggregate: Aggregator
    params: GenerationParams = GenerationParams()
    description: str = ""
    row_key: Callable[[dict[str, Any]], str] | None = None
    tir: bool = False


@dataclass(frozen=True)
class TaskGroup:
    """Tasks run and reported together (``--tasks NAME`` runs them all): the headline is the unweighted mean
    of its parts' accuracies (the macro average benchmark reports use), each part the pooled items of its
    tasks (one published column can span several files, as the Qwen2.5-Math report's GaoKao does).

    Attributes:
        name: registry name, also the leaderboard column.
        parts: (label, task names) pairs; a part's score pools its tasks' graded answers.
        description: one line for `mue-eval tasks`.
    """

    name: str
    parts: tuple[tuple[str, tuple[str, ...]], ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.parts or not all(label and tasks for label, tasks in self.parts):
            raise ValueError(f"group {self.name!r}: every part needs a label and at least one task")

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every member task, in part order, each once."""
        return tuple(dict.fromkeys(t for _, tasks in self.parts for t in tasks))


def prompt_fingerprint(samples: Sequence[Sample], stop: Sequence[str]) -> str:
    """sha256 of what is sent: every loaded sample's messages (and its own temperature, where a task sets
    one per item, as AlignBench does) and the stop sequences. Any prompt change changes it, so a stored run
    with other prompts is refused rather than mixed."""
    digest = hashlib.sha256(json.dumps(list(stop), ensure_ascii=False).encode())
    for sample in samples:
        item = [list(sample.messages), sample.metadata.get("temperature")]
        digest.update(json.dumps(item, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def jsonl_loader(
    relative: str | Path,
    to_sample: Callable[[dict[str, Any]], Sample | None] | None = None,
    required: Sequence[str] = (),
    numbers: Sequence[str] = (),
    *,
    prepare: Callable[[Path | None], Callable[[dict[str, Any]], Sample | None]] | None = None,
    task: str | None = None,
    reference_required: bool = True,
) -> Loader:
    """A task's loader for one JSONL file: ``<data dir>/<relative>``, its pinned download
    (`mathusereval.pinned_source`) when no data directory is given, or a fixed `Path` (data shipped with
    the task). Rows are checked (`required` fields are text; `numbers` may also be numbers) and each
    becomes a `Sample` through `to_sample` (None leaves the row out). `prepare(data_dir)` returns that
    function instead, for tasks that need the data directory first (few-shot exemplars). A ``ValueError``
    or ``KeyError`` from it becomes a `DataError` naming file:line. A sample with an empty reference is a
    data defect (an answer cannot be right or wrong against nothing): it is left out, counted in
    `LoadedData.left_out` and reported, unless `reference_required` is False (a reference-free judge)."""
    if (to_sample is None) == (prepare is None):
        raise TypeError("jsonl_loader takes one of to_sample and prepare")
    name = task or (relative.stem if isinstance(relative, Path) else str(relative).split("/", 1)[0])

    def load(data_dir: Path | None) -> LoadedData:
        from ..data.files import find_data_file, read_jsonl, sha256_file
        from ..errors import DataError

        path = relative if isinstance(relative, Path) else find_data_file(data_dir, relative, name)
        convert = prepare(data_dir) if prepare is not None else to_sample
        assert convert is not None
        samples, left_out = [], []
        for lineno, row in read_jsonl(path, required, numbers):
            try:
                sample = convert(row)
            except (DataError, ValueError, KeyError) as exc:
                raise DataError(f"{path}:{lineno}: {exc}") from exc
            if sample is not None and reference_required and not sample.reference.strip():
                left_out.append(LeftOut(lineno, sample.id, EMPTY_REFERENCE))
            elif sample is not None:
                samples.append(sample)
        if left_out:
            report_left_out(name, str(path), left_out)
        return LoadedData(samples, sha256_file(path), str(path), tuple(left_out))

    return load


def user_turn(text: str) -> tuple[dict[str, str], ...]:
    """A single user message, the protocol of every built-in zero-shot task."""
    return ({"role": "user", "content": text},)


def boxed_answer(solution: str) -> str | None:
    """The final boxed answer of a worked solution, read as the answer grader reads a response: several
    boxes that end a solution together ("the answers are \\boxed{-2} and \\boxed{1}") give "-2, 1"."""
    from ..graders.extract import last_box_group

    found = last_box_group(solution)
    return None if found is None else found[1]


def pinned_rows(data_dir: Path | None, relative: str, task: str, fields: Sequence[str] = ()) -> list[dict[str, Any]]:
    """All rows of a pinned data file (`mathusereval.pinned_source`), refused when its digest is not the pin:
    for few-shot exemplars, whose prompt would change with another version of the file."""
    from ..data.files import find_data_file, read_jsonl, sha256_file
    from ..data.sources import pinned_sha256
    from ..errors import DataError

    pin = pinned_sha256(relative)
    if pin is None:
        raise DataError(f"task {task!r}: {relative} has no pinned sha256 (declare it with pinned_source)")
    path = find_data_file(data_dir, relative, task)
    digest = sha256_file(path)
    if digest != pin:
        raise DataError(
            f"{path}: sha256 {digest} is not the pinned {pin}; task {task!r} takes its few-shot exemplars "
            "from this file, so another version would change the prompt"
        )
    return [row for _, row in read_jsonl(path, required=fields)]


def load_task(task: Task, data_dir: Path | None) -> LoadedData:
    """``task.load(data_dir)``, checked: a plugin's loader that returns something else than `LoadedData` with
    a list of `Sample`s is a one-line error naming the task, never a traceback later."""
    from ..errors import ConfigError

    loaded = task.load(data_dir)
    if not isinstance(loaded, LoadedData):
        raise ConfigError(
            f"task {task.name!r}: its loader returned {type(loaded).__name__}, not mathusereval.LoadedData"
        )
    if not isinstance(loaded.samples, (list, tuple)):
        raise ConfigError(
            f"task {task.name!r}: LoadedData.samples is a {type(loaded.samples).__name__}; give a list of Samples"
        )
    for k, sample in enumerate(loaded.samples):
        if not isinstance(sample, Sample) or not isinstance(sample.id, str) or not isinstance(sample.messages, tuple):
            raise ConfigError(
                f"task {task.name!r}: sample {k} is not a mathusereval.Sample with a text id and messages"
            )
    return loaded if isinstance(loaded.samples, list) else dataclasses.replace(loaded, samples=list(loaded.samples))
