"""Judging that streams beside generation: an answer goes to its judge as soon as it is stored and rule-graded.

One `JudgeQueue` per (task run, LLM grader). Each answer it is given becomes one small coroutine: the
grader's ``settle`` step on that item (a worker thread: the cascade may run the answer grader), then the
attempts of `mathusereval.run.judging.JudgeRole` (the cached reply, else one request on the role's lane of
the invocation's schedule, the parse, a retry at the retry temperature), then the grade. At most `window`
answers are being judged at once (their texts are in memory only then); the rest wait as keys and are read
back from the store when their turn comes, so memory stays flat however far the judge falls behind.
Identical prompts of one task share one call (the cache key says they are the same).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ..plugins.contracts import Item, JudgeGrader
from ..records import Generation, Grade, JudgeCall, JudgeUsage, Request, Sample
from ..store import RunStore
from .judging import JudgeRole, _Attempts, _Tally
from .schedule import Lane

Load = Callable[[Sample, int], Generation]


class JudgeQueue:
    """One LLM grader's judging of one task's answers, fed as answers arrive (`add`) until `close`."""

    def __init__(
        self,
        name: str,
        judge: JudgeGrader,
        role: JudgeRole,
        store: RunStore,
        record: Callable[[Grade], None],
        load: Load,
        origin: str,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.name, self.judge, self.role, self.store = name, judge, role, store
        self.record, self.load, self.origin, self.progress = record, load, origin, progress
        self.tally = _Tally()
        self.pending: deque[tuple[Sample, int]] = deque()
        self.active = 0
        self.on_lane = 0
        """Answers whose request waits in the lane or is in flight (the rest of `active` are being prepared)."""
        self.closed = False
        self.lane: Lane | None = None
        self.run_dir: Path | None = None
        self.window = 64
        self._sending: dict[str, asyncio.Future[Generation | None]] = {}
        self._said: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._batches_before = 0

    @property
    def role_name(self) -> str:
        return self.role.name

    def bind(self, lane: Lane, run_dir: Path | None) -> None:
        """Send through `lane`; a lane whose backend keeps run state (the Batch API) holds this task's calls
        until `close`, so they go as one batch, and takes every answer at once."""
        self.lane, self.run_dir = lane, run_dir
        self.window = max(64, 2 * lane.slots.capacity)
        self._batches_before = lane.backend.batches_created
        if lane.backend.keeps_run_state:
            self.window = 1 << 62
            lane.hold(self.origin)

    def add(self, sample: Sample, n_index: int) -> None:
        """An answer to judge (its grade missing or stale)."""
        if self.role.is_current(self.judge, self._stored_grade(sample, n_index)):
            return
        self.tally.counts["items"] += 1
        if self.on_add is not None:
            self.on_add()
        self.pending.append((sample, n_index))
        self._pump()

    def _stored_grade(self, sample: Sample, n_index: int) -> Grade | None:
        return self.stored_grades.get((sample.id, n_index, self.name)) if self.stored_grades else None

    on_add: Callable[[], None] | None = None
    observe: Callable[[Grade], None] | None = None
    """Sees every judge grade as it is decided (the run-health guards)."""
    stored_grades: dict[tuple[str, int, str], Grade] | None = None
    """The grades already stored (`Grading.grades`), so a current one is not judged again."""

    def close(self) -> None:
        """No more answers will come: a held batch may go once every answer's request is in it."""
        self.closed = True
        self._release()
        self._wake()

    def _release(self) -> None:
        """A batch lane cuts this task's batch when nothing more can join it: no more answers, and every
        answer being judged has its request in the lane (or is done)."""
        batching = self.lane is not None and self.lane.backend.keeps_run_state
        if batching and self.closed and not self.pending and self.active == self.on_lane:
            assert self.lane is not None
            self.lane.release(self.origin)

    @property
    def done(self) -> bool:
        if self._failure is not None:
            raise self._failure
        return self.closed and not self.pending and self.active == 0

    def usage(self) -> JudgeUsage:
        if self.lane is not None:
            self.tally.counts["batches"] += self.lane.backend.batches_created - self._batches_before
            self._batches_before = self.lane.backend.batches_created
        return self.tally.usage()

    def _wake(self) -> None:
        if self.lane is not None and self.lane.schedule is not None:
            self.lane.schedule.wake()

    def _pump(self) -> None:
        while self.pending and self.active < self.window:
            sample, n_index = self.pending.popleft()
            self.active += 1
            task = asyncio.ensure_future(self._judge(sample, n_index))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.active -= 1
        self._release()
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()
        self._pump()
        self._wake()

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _judge(self, sample: Sample, n_index: int) -> None:
        item: Item = (sample, self.load(sample, n_index))
        settled = await asyncio.to_thread(self.role.settle_one, self.judge, item, self.tally)
        if settled is not None:
            self._grade(settled)
            return
        state = _Attempts()
        for attempt in range(self.role.settings.parse_retries + 1):
            key, reply = await self._reply(item, attempt)
            grade = self.role.read(self.judge, item, attempt, key, reply, state, self.tally)
            if grade is not None:
                self._grade(grade)
                return

    def _grade(self, grade: Grade) -> None:
        self.record(grade)
        if self.observe is not None:
            self.observe(grade)
        if self.progress is not None:
            self.progress(1)

    async def _reply(self, item: Item, attempt: int) -> tuple[str | None, Generation | None]:
        """This attempt's reply: stored, shared with an identical prompt in flight, or asked on the lane.
        (None, None) when the budget let no call go."""
        sample, generation = item
        params = self.role.settings.params(attempt)
        messages = self.judge.messages(sample, generation)
        key = self.role.key(self.judge, messages, params, attempt)
        stored = self.store.stored_judge_call(key)
        if stored is not None:
            self.tally.counts["cached"] += 1
            return key, stored.generation
        if key in self._sending:
            return key, await asyncio.shield(self._sending[key])
        if self.role.budget.exhausted or self.lane is None:
            return None, None
        future: asyncio.Future[Generation | None] = asyncio.get_running_loop().create_future()
        self._sending[key] = future
        try:
            request = Request(Sample(f"judge/{self.judge.name}", key, messages, ""), attempt)
            self.on_lane += 1
            self._release()
            try:
                reply = await self.lane.call(request, params, origin=self.origin, run_dir=self.run_dir)
            finally:
                self.on_lane -= 1
                if self.lane.backend.keeps_run_state:  # a retry may follow: the next batch waits for it
                    self.lane.hold(self.origin)
            if reply is not None and not reply.ok:  # the first failure of each kind is said as it happens
                from .pipeline import say_first

                say_first(self._said, reply.error or "", self.store.dir, f"a {self.role.name} call")
            if reply is not None:
                self.store.add_judge_call(
                    JudgeCall(key, self.judge.name, sample.id, generation.n_index, attempt, reply)
                )
                self.tally.counts["calls"] += 1
                self.role.count(reply, self.tally)
            future.set_result(reply)
        finally:
            if not future.done():
                future.set_result(None)
            del self._sending[key]
        return (key, reply) if reply is not None else (None, None)


async def judge_items(
    role: JudgeRole,
    judge: JudgeGrader,
    items: list[Item],
    store: RunStore,
    on_grade: Callable[[Grade], None],
) -> JudgeUsage:
    """Judge `items` (texts in hand) with `role` on a schedule of their own (the lm-eval hooks' judge)."""
    from .schedule import Schedule

    schedule = Schedule()
    lane = schedule.lane(role.name, role.backend, role.budget)
    by_key = {(s.id, g.n_index): g for s, g in items}
    queue = JudgeQueue(judge.name, judge, role, store, on_grade, lambda s, n: by_key[(s.id, n)], judge.name)
    queue.bind(lane, store.dir)
    for sample, generation in items:
        queue.add(sample, generation.n_index)
    queue.close()
    try:
        await schedule.run(lambda: queue.done)
    finally:
        queue.cancel()
    return queue.usage()
