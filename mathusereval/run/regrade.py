"""``mue-eval grade RUN_DIR...``: a stored run graded again (missing rule grades, and judge grades that are
missing or came from another judge). `mathusereval.run.session.grade` runs all of them on one schedule, so
every run's judge calls share the judge roles' streams. Answers are never regenerated."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from pathlib import Path

from ..errors import ConfigError, DataError
from ..plugins import registry
from ..plugins.task import Task
from ..records import RunResult
from ..store import RunStore
from .grading import Grading, manifest_judges, resolve_graders
from .judging import JudgeRole
from .pipeline import RunOptions, finish_run
from .progress import Progress
from .schedule import Lane


class Regrade:
    """One stored run being graded again."""

    def __init__(self, directory: Path, options: RunOptions, roles: dict[str, JudgeRole]) -> None:
        self.directory, self.options, self.roles = directory, options, roles
        self.store = RunStore(directory)
        manifest = self.store.existing_manifest()
        if manifest is None:
            raise ConfigError(f"{directory} is not a run directory (no manifest.json)")
        self.task: Task = registry.lookup("tasks", manifest.task)
        samples = list(self.store.samples().values())
        if not samples:
            raise DataError(f"{directory}/samples.jsonl holds no samples")
        self.samples = samples[: options.limit] if options.limit is not None else samples
        self.n = int(manifest.params.get("n", 1))
        self.graders = resolve_graders(self.task, options.graders or manifest.graders or None)
        judges = {**manifest.judges, **manifest_judges(self.graders, roles)}
        self.manifest = dataclasses.replace(manifest, graders=tuple(self.graders), judges=judges)

    def open(self, stack: ExitStack, bars: Progress, lanes: dict[str, Lane]) -> None:
        self.manifest = stack.enter_context(self.store.writing(self.manifest))
        index = self.store.generation_index()
        grading = self.grading = Grading(self.graders, self.store, self.samples, index, self.n, self.roles)
        view = bars.view(self.directory.name)
        backlog = grading.rule_backlog()
        view.add("grade", len(backlog))
        grading.grade_backlog(backlog, view)
        self.queues = grading.judge_queues(view, str(self.directory))
        for queue in self.queues:
            queue.bind(lanes[queue.role_name], self.directory)
            for sample, k in grading.judge_backlog():
                queue.add(sample, k)
            queue.close()

    @property
    def done(self) -> bool:
        return all(queue.done for queue in self.queues)

    def finish(self) -> RunResult:
        for queue in self.queues:
            self.grading.usage[queue.name] = queue.usage()
        return finish_run(self.task, self.manifest, self.grading, self.options, len(self.samples) * self.n)
