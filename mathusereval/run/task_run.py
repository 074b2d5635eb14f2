"""One task of an invocation while the schedule runs: its run directory and writer, what it still has to
generate, each answer stored, rule-graded and queued for its judges as it arrives, and its result at the end.

A `TaskRun` owns everything per task (store, selection, grading, judge queues, counts, progress bars); the
invocation's `mathusereval.run.schedule.Schedule` owns the backends' streams. `prepare` does every check
that can fail (data, identity, grading, lock) before the invocation sends anything; `start` queues the
task's requests; `finish` writes its manifest and summary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from ..backends import ModelSpec
from ..plugins.task import LoadedData, Task
from ..records import Generation, GenerationParams, Request, RunResult, Sample
from ..store import RunStore
from ..tir.chain import tool_chains, without_stop
from .budget import Budget
from .grading import Grading, StreamingRuleGrades, manifest_judges, resolve_graders
from .guards import GuardTripped, HealthWatch
from .judging import JudgeRole
from .pipeline import RunOptions, answered, build_manifest, finish_run, group_by_params, say_first, system_setting
from .placement import check_same_grading, place
from .postprocess import finalize, without_text
from .progress import Progress
from .schedule import Lane
from .selection import select_samples


class TaskRun:
    """One task on one model within an invocation (`mathusereval.run.session.evaluate`)."""

    def __init__(
        self,
        task: Task,
        spec: ModelSpec,
        describe: dict[str, Any],
        options: RunOptions,
        roles: dict[str, JudgeRole],
        loaded: LoadedData,
        index: int,
    ) -> None:
        """Build the manifest, choose the directory and check it may be written (nothing is written yet)."""
        from .pipeline import with_system_prompt

        self.task, self.spec, self.options, self.roles, self.index = task, spec, options, roles, index
        samples = select_samples(task, loaded, options.limit, options.limit_order, options.sample_ids)
        # the system turn goes on the selected items only (a 50 MB turn on every item of a task took 23 GB)
        selected = with_system_prompt(dataclasses.replace(loaded, samples=samples), options.system_prompt)
        if options.system_prompt is not None:  # what the fingerprint sees: the task's own turns, then this one
            loaded = dataclasses.replace(loaded, samples=[_without_system(s) for s in loaded.samples])
        self.overrides = options.overrides_for(task.name)
        self.params = dataclasses.replace(task.params, **self.overrides)
        self.graders = resolve_graders(task, options.graders)
        settings = {"think": options.think, **system_setting(options.system_prompt)}
        manifest = build_manifest(task, spec, describe, self.params, loaded, settings, options.system_prompt)
        manifest = dataclasses.replace(
            manifest,
            graders=tuple(self.graders),
            judges=manifest_judges(self.graders, roles),
            name=options.name,
            overrides={k: list(v) if isinstance(v, tuple) else v for k, v in self.overrides.items()},
            config=options.config,
        )
        self.directory, self.samples, self.manifest = place(
            task, spec, options.out, options.name, options.shard, selected.samples, manifest
        )
        check_same_grading(self.directory, self.manifest)
        self.store = RunStore(self.directory)
        self.store.check_compatible(self.manifest)  # a refused resume fails before any task sends anything
        self.label = self.manifest.run_id  # the directory it is written to: checkpoints told apart
        self.health = HealthWatch(options.guards, self.label) if options.guards.active else None
        self.generating = 0
        self.stopped: str | None = None
        self.said: set[str] = set()

    def open(self, stack: ExitStack, bars: Progress) -> None:
        """Become the run's writer, store new samples, and find what is left to generate and grade."""
        self.manifest = stack.enter_context(self.store.writing(self.manifest))
        generations = self.store.generation_index()  # outcomes only: texts stay on disk until a grader needs one
        stored = self.store.samples()
        for sample in self.samples:
            if sample.id not in stored:
                self.store.add_sample(sample)
        # the run is every item it holds: a smaller --limit than before generates nothing more, and the summary
        # still describes the whole stored run (a subset would not match its seal, and read as edited)
        everything = [*stored.values(), *(s for s in self.samples if s.id not in stored)]
        self.grading = Grading(self.graders, self.store, everything, generations, self.params.n, self.roles)
        self.todo = [
            Request(s, k) for s in self.samples for k in range(self.params.n) if not answered(generations, s.id, k)
        ]
        self.bars = bars.view(self.label)
        self.bars.add("generate", len(self.todo))
        backlog = self.grading.rule_backlog()
        self.bars.add("grade", len(self.todo) + len(backlog))
        self.grading.grade_backlog(backlog, self.bars)
        self.rule_grades = stack.enter_context(StreamingRuleGrades(self.grading, self.bars, self.judge_after_rules))
        self.judges = self.grading.judge_queues(self.bars, self.label)
        if self.health is not None:
            for queue in self.judges:
                queue.observe = self.health.judged

    def start(self, model: Lane, judge_lanes: dict[str, Lane], budget: Budget | None) -> None:
        """Queue every request of the task on the model's lane, and every stored answer whose judge grade is
        missing on its judge's lane; answers are handled as they arrive (`_on_answer`)."""
        self.model_lane, self.budget = model, budget
        for queue in self.judges:
            queue.bind(judge_lanes[queue.role_name], self.directory)
            for sample, k in self.grading.judge_backlog():  # a resumed run: stored answers still to judge
                queue.add(sample, k)
        groups = group_by_params(self.todo, self.params, self.overrides)
        self.chains = chains = tool_chains(self) if self.task.tir else None  # TIR (issue 33): tir/chain.py
        for params, group in groups.items():
            for position, request in enumerate(group):
                self.generating += 1
                if chains is not None:  # the whole trajectory is the answer: not cut at the stop sequence
                    chains.start(model, request, params, self._answer_with(without_stop(params)), position)
                    continue
                model.submit(
                    request,
                    params,
                    self._answer_with(params),
                    origin=self.label,
                    order=(position, self.index),
                    run_dir=self.directory,
                )
        if not self.generating:
            self._generation_ended()

    def _answer_with(self, params: GenerationParams) -> Callable[[Generation | None], None]:
        def answer(raw: Generation | None) -> None:
            self._on_answer(raw, params)

        return answer

    def _on_answer(self, raw: Generation | None, params: GenerationParams) -> None:
        self.generating -= 1
        if raw is None:  # not sent: a spent budget (the next run with a larger one generates it)
            if self.budget is not None and self.budget.exhausted:
                self.stopped = self.budget.message()
        else:
            # a chain's trajectory is split by `tir.chain.split_trajectory`, on the model's own text only
            generation = finalize(raw, "keep" if self.task.tir else self.options.think, params.stop)
            self.store.add_generation(generation)
            if self.health is not None:
                self._guarded(self.health.answered, generation)
            self.grading.generations[(generation.sample_id, generation.n_index)] = without_text(generation)
            self.bars.advance("generate")
            if generation.ok:
                self.rule_grades.submit(self.grading.by_id[generation.sample_id], generation)
            else:
                self.bars.advance("grade")
                say_first(self.said, generation.error or "", self.store.dir)
        if self.generating == 0:
            self._generation_ended()
        # a chain answers from its own coroutine, after the schedule last looked: this task may be done now
        self.model_lane.wake()

    def judge_after_rules(self, sample: Sample, n_index: int) -> None:
        """Called on the event loop once an answer's rule grades are stored: its judges may take it now."""
        if self.health is not None and self.grading.rules:
            primary = next(iter(self.grading.rules))
            grade = self.grading.grades.get((sample.id, n_index, primary))
            stored = self.grading.generations.get((sample.id, n_index))
            truncated = stored is not None and stored.finish_reason == "length"
            self._guarded(self.health.rule_graded, grade, f"{sample.id}#{n_index}", truncated)
        for queue in self.judges:
            queue.add(sample, n_index)
        self.model_lane.wake()  # this task may be done now

    def _guarded(self, check: Callable[..., None], *args: Any) -> None:
        """A tripped guard ends the whole invocation (`Schedule.fail`); what is stored stays."""
        try:
            check(*args)
        except GuardTripped as exc:
            self.model_lane.wake()
            assert self.model_lane.schedule is not None
            self.model_lane.schedule.fail(exc)

    def _generation_ended(self) -> None:
        """No more answers: once the last ones are rule-graded (and handed to the judges), the judges close."""

        def close() -> None:
            for queue in self.judges:
                queue.close()

        self.rule_grades.when_drained(close)

    @property
    def done(self) -> bool:
        return self.generating == 0 and self.rule_grades.drained and all(q.done for q in self.judges)

    def finish(self) -> RunResult:
        self.rule_grades.check()
        for queue in self.judges:
            self.grading.usage[queue.name] = queue.usage()
        reused = len(self.samples) * self.params.n - len(self.todo)
        return finish_run(self.task, self.manifest, self.grading, self.options, reused, self.budget, self.stopped)


def _without_system(sample: Sample) -> Sample:
    """`sample` without its own system turn (``--system-prompt`` replaces it)."""
    if not any(m.get("role") == "system" for m in sample.messages):
        return sample
    return dataclasses.replace(sample, messages=tuple(m for m in sample.messages if m.get("role") != "system"))
