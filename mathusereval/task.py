"""What a benchmark is: a frozen `Task` record that a task module builds and registers by name."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import GenerationParams, Grade, MetricValue, Sample


@dataclass(frozen=True)
class LoadedData:
    """The samples of a task plus the provenance the manifest records."""

    samples: list[Sample]
    sha256: str
    source: str


Loader = Callable[[Path | None], LoadedData]
Aggregator = Callable[[Sequence[Sample], Sequence[Grade]], list[MetricValue]]


@dataclass(frozen=True)
class Task:
    """One benchmark: where its data comes from, how it is prompted, graded and aggregated.

    Attributes:
        name: registry name, also the results sub-directory.
        version: bump when prompts, data handling or scoring change, so stored runs are not mixed.
        load: data directory (or None for the official source) -> samples with provenance.
        prompt_template: the text that turns a row into messages; hashed into the manifest.
        graders: registered grader names; the first one is primary and feeds `aggregate`.
        aggregate: grades of the primary grader -> metrics; the first metric is the headline number.
        params: default generation settings (the CLI may override them).
        description: one line for `mue-eval tasks`.
        row_key: upstream data row -> sample id; also reads answer files that copy the question fields
            (``mue-eval import``). None: the task cannot import answers.
    """

    name: str
    version: str
    load: Loader
    prompt_template: str
    graders: tuple[str, ...]
    aggregate: Aggregator
    params: GenerationParams = GenerationParams()
    description: str = ""
    row_key: Callable[[dict[str, Any]], str] | None = None

    @property
    def prompt_sha256(self) -> str:
        return hashlib.sha256(self.prompt_template.encode()).hexdigest()


def user_turn(text: str) -> tuple[dict[str, str], ...]:
    """A single user message, the protocol of every built-in zero-shot task."""
    return ({"role": "user", "content": text},)
