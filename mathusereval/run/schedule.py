"""One invocation, one schedule: every request of every task, judge round and retry goes through a `Lane` of
its backend, and a lane keeps its backend as full as it can take until the invocation's last request.

Why: a run that waits for one task's slowest answer before starting the next (or judges only after the
last answer) leaves the engine idle at every task's tail; with long-tailed reasoning models that was 10.9x
the ideal span on the math suite. lm-eval sends every task's requests as one list (``evaluator.py``, one
``generate_until`` call over all tasks); we keep one stream per backend as well, and judge calls and
continuations join it as they become due.

- **Capacity.** A lane has ``max_in_flight`` slots (the backend's own number, else its concurrency). Lanes of
  backends that serve from one place (the judge on the model's server: `Slots.key`) share their slots, so
  the server sees at most its concurrency, and judge calls go first when both wait: a judge call is the
  second link of a chain the span waits on, and judge calls only exist behind answers, so generation is
  never starved.
- **Order.** Waiting requests go out by priority (`Job.priority`): longest expected work first (a larger
  ``max_tokens``), then round robin over the tasks in item order, so every task progresses and its judge
  calls start early.
- **Calls.** A backend that takes overlapping ``generate`` calls (`Backend.overlapping_calls`) gets one
  call per freed slot (requests of one task and parameter set share a call when several slots are free);
  one that does not gets one call at a time holding every waiting request of the first request's parameter
  set, across tasks (one task's, for a backend keeping run state: the Batch API). When a call holds requests
  of several tasks, their ids are prefixed with their task so that they are unique in the call, and each
  answer is routed back to its task by it.
- **Budgets.** A request is sent only when its worst case fits the lane's budget (`Budget.fits`), waiting for
  replies in flight to settle their reservations first; a budget that cannot take the next request refuses
  every waiting request of its lanes (their callbacks get None): nothing more is sent, what is in flight
  finishes and is stored.
- **Faults.** A failed request is its item's error (the backend yields it as such); an exception out of
  ``generate`` (a refused key, a dead engine) ends the schedule and is raised by `Schedule.run`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import sys
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from ..backends.base import generation_stream
from ..plugins.contracts import Backend
from ..records import Generation, GenerationParams, Request, Usage
from .budget import Budget, worst_case
from .postprocess import checked

DEFAULT_SLOTS = 64
"""Slots of a backend that does not say how many requests it works on at once."""
Answer = Callable[[Generation | None], None]
"""Called with a request's raw answer, or None when the request was not sent (a spent budget)."""


@dataclasses.dataclass(order=True)
class Job:
    """One request waiting in a lane. `priority` orders the lane (smaller first); `origin` names the task
    (or judge round) it came from; `run_dir` is where a backend keeping run state keeps it."""

    priority: tuple[Any, ...]
    seq: int
    request: Request = dataclasses.field(compare=False)
    params: GenerationParams = dataclasses.field(compare=False)
    answer: Answer = dataclasses.field(compare=False)
    origin: str = dataclasses.field(default="", compare=False)
    run_dir: Path | None = dataclasses.field(default=None, compare=False)
    reserved: Any = dataclasses.field(default=None, compare=False)


class Slots:
    """Requests in flight on one server (or engine) at most; shared by the lanes that talk to it. Its capacity
    is the largest of theirs (the model's ``--concurrency``, say); each lane keeps its own too (a judge lane of
    ``--judge-concurrency 1`` has one request in flight, and never lowers what the model may send)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.used = 0


class Lane:
    """One backend's stream of requests. `urgent` lanes (judge roles) go first where slots are shared."""

    def __init__(
        self, name: str, backend: Backend, slots: Slots, budget: Budget | None = None, urgent: bool = False
    ) -> None:
        self.name, self.backend, self.slots, self.budget, self.urgent = name, backend, slots, budget, urgent
        self.waiting: list[Job] = []
        self.in_flight = 0
        self.calls_running = 0
        self.held: set[str] = set()
        """Origins whose jobs wait until `release` (a batch is cut when its task's generation ends)."""
        self.capacity = slots.capacity
        """This lane's own most requests in flight (within its server's shared `slots`)."""
        self.unpriced = False
        """A reply came without usage: replies are charged at their worst case from then on (said once)."""
        self._seq = itertools.count()
        self.schedule: Schedule | None = None

    def submit(
        self,
        request: Request,
        params: GenerationParams,
        answer: Answer,
        *,
        origin: str = "",
        order: tuple[Any, ...] = (),
        run_dir: Path | None = None,
    ) -> None:
        """Queue `request`; `answer` is called with its raw answer (or None if it is never sent)."""
        priority = (-params.max_tokens, *order)
        heapq.heappush(self.waiting, Job(priority, next(self._seq), request, params, answer, origin, run_dir))
        if self.schedule is not None:
            self.schedule.wake()

    async def call(self, request: Request, params: GenerationParams, **where: Any) -> Generation | None:
        """`submit`, awaiting the answer."""
        future: asyncio.Future[Generation | None] = asyncio.get_running_loop().create_future()

        def answer(generation: Generation | None) -> None:
            if not future.done():
                future.set_result(generation)

        self.submit(request, params, answer, **where)
        return await future

    def wake(self) -> None:
        """Have the schedule look again (a producer's state changed: a task may be done)."""
        if self.schedule is not None:
            self.schedule.wake()

    def hold(self, origin: str) -> None:
        """Keep `origin`'s requests waiting until `release` (a batch lane cuts its batch then)."""
        self.held.add(origin)

    def release(self, origin: str) -> None:
        self.held.discard(origin)
        if self.schedule is not None:
            self.schedule.wake()

    def ready(self) -> bool:
        """Whether some waiting job may go now (a held origin's jobs wait)."""
        if not self.held or not self.waiting:
            return bool(self.waiting)
        return any(j.origin not in self.held for j in self.waiting)

    def group(self, job: Job) -> tuple[Any, ...]:
        """Jobs that may share one call: one parameter set, and one task unless the backend takes one call at
        a time (then a call spans tasks, so that it holds every waiting request) and keeps no run state."""
        one_task = self.backend.overlapping_calls or self.backend.keeps_run_state
        return (job.params, job.origin if one_task else None)

    def refuse_all(self) -> None:
        """A spent budget: nothing waiting is sent."""
        waiting, self.waiting = self.waiting, []
        for job in waiting:
            job.answer(None)


class Schedule:
    """Runs lanes until every job is answered and no producer can add more (`run`'s `until`)."""

    def __init__(self) -> None:
        self.lanes: list[Lane] = []
        self._slots: dict[Hashable, Slots] = {}
        self._wake = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None

    def lane(self, name: str, backend: Backend, budget: Budget | None = None, *, urgent: bool = False) -> Lane:
        """A lane for `backend`, sharing slots with the lanes of backends served at the same URLs."""
        capacity = backend.max_in_flight or DEFAULT_SLOTS
        key = ("served", tuple(backend.served_at)) if backend.served_at else None
        slots = self._slots.setdefault(key, Slots(capacity)) if key is not None else Slots(capacity)
        slots.capacity = max(slots.capacity, capacity)
        lane = Lane(name, backend, slots, budget, urgent)
        lane.capacity = max(1, capacity)
        lane.schedule = self
        self.lanes.append(lane)
        return lane

    def wake(self) -> None:
        self._wake.set()

    def fail(self, exc: BaseException) -> None:
        """End the schedule with `exc` (raised by `run`): a producer found the run must stop."""
        if self.failure is None:
            self.failure = exc
        self.wake()

    def _launchable(self, lane: Lane) -> bool:
        if not lane.ready() or lane.slots.used >= lane.slots.capacity or lane.in_flight >= lane.capacity:
            return False
        return lane.backend.overlapping_calls or lane.calls_running == 0

    def _admit(self, lane: Lane, job: Job, chosen: int) -> bool | None:
        """Reserve `job`'s worst case: True (go), False (wait for replies in flight, or for the `chosen`
        jobs of this call to go first), None (refused)."""
        budget = lane.budget
        if budget is None or not budget.capped:
            return True
        if budget.fits():
            job.reserved = worst_case(job.request, job.params)
            budget.reserve(job.reserved)
            return True
        sharing = [la for la in self.lanes if la.budget is not None and la.budget.spend is budget.spend]
        # a batch is priced before it is submitted: what does not fit into it is not sent (its reservations
        # are released only when the whole batch is back); a direct call waits for replies in flight instead
        batch = lane.backend.keeps_run_state and chosen
        if not batch and (chosen or any(la.in_flight for la in sharing)):
            return False
        budget.spend.refused += 1
        for other in sharing:  # one spend: every lane it caps stops sending
            other.refuse_all()
        return None

    def _launch(self, lane: Lane) -> bool:
        """Start one call on `lane` with the jobs that may share it; False when none may go now."""
        room = min(lane.slots.capacity - lane.slots.used, lane.capacity - lane.in_flight)
        limit = room if lane.backend.overlapping_calls else len(lane.waiting)
        jobs: list[Job] = []
        skipped: list[Job] = []
        group: tuple[Any, ...] | None = None
        while lane.waiting and len(jobs) < limit:
            job = heapq.heappop(lane.waiting)
            if job.origin in lane.held or (group is not None and lane.group(job) != group):
                skipped.append(job)
                if lane.backend.overlapping_calls and len(skipped) > 64:
                    break  # the rest go in later calls
                continue
            admitted = self._admit(lane, job, len(jobs))
            if admitted is None:  # refused: the lane was emptied; these jobs are not sent either
                for refused in (job, *skipped):
                    refused.answer(None)
                skipped = []
                break
            if not admitted:
                heapq.heappush(lane.waiting, job)
                break
            group = lane.group(job)
            jobs.append(job)
        for job in skipped:
            heapq.heappush(lane.waiting, job)
        if jobs:
            self._start(lane, jobs)
        return bool(jobs)

    def _start(self, lane: Lane, jobs: list[Job]) -> None:
        # an overlapping backend frees a slot per answer; one call at a time holds its slots to the end
        held = len(jobs) if lane.backend.overlapping_calls else min(len(jobs), lane.slots.capacity)
        lane.slots.used += held
        lane.in_flight += len(jobs)
        lane.calls_running += 1
        task = asyncio.ensure_future(self._call(lane, jobs, held))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _call(self, lane: Lane, jobs: list[Job], held: int) -> None:
        """One ``generate`` call: answers routed back to their jobs by their lane-unique keys."""
        # requests of several tasks in one call may share ids: then each is made unique by its origin
        mixed = len({j.origin for j in jobs}) > 1
        by_key = {
            (f"{j.origin}\x1f{j.request.sample.id}" if mixed else j.request.sample.id, j.request.n_index): j
            for j in jobs
        }
        asked = set(by_key)
        requests = [
            Request(dataclasses.replace(j.request.sample, id=key[0]), j.request.n_index) for key, j in by_key.items()
        ]
        try:
            if lane.backend.keeps_run_state and jobs[0].run_dir is not None:
                lane.backend.bind_run(jobs[0].run_dir)
            async with generation_stream(lane.backend, requests, jobs[0].params) as stream:
                async for raw in stream:
                    generation = checked(raw, lane.backend.kind, asked)
                    job = by_key.pop((generation.sample_id, generation.n_index), None)
                    if job is None:  # answered twice: the first answer stands
                        continue
                    self._settle(lane, job, generation)
                    if lane.backend.overlapping_calls:
                        lane.slots.used -= 1
                        held -= 1
                    job.answer(dataclasses.replace(generation, sample_id=job.request.sample.id))
                    self.wake()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - ends the schedule; `run` raises it
            if self.failure is None:
                self.failure = exc
        finally:
            lane.slots.used -= held
            lane.calls_running -= 1
            for job in by_key.values():  # not answered: the call failed or was cut short
                self._settle(lane, job, None)
                job.answer(None)
            self.wake()

    @staticmethod
    def _settle(lane: Lane, job: Job, generation: Generation | None) -> None:
        """The job is out of flight; its reply is charged against the lane's budget (its reservation freed). A
        reply without token usage (a server that does not say, or says nonsense) is charged its worst case under
        a cap, so a cap never stops nothing."""
        lane.in_flight -= 1
        if lane.budget is None or (generation is None and job.reserved is None):
            return
        usage = generation.usage if generation is not None else Usage()
        if generation is not None and generation.ok and not usage.total_tokens and job.reserved is not None:
            if not lane.unpriced:
                lane.unpriced = True
                print(
                    f"mue-eval: warning: {lane.name}: a reply without token usage; under the budget each such reply "
                    "counts as its worst case (prompt bytes + max_tokens)",
                    file=sys.stderr,
                )
            usage = job.reserved
        lane.budget.charge(usage, job.reserved)

    async def run(self, until: Callable[[], bool]) -> None:
        """Dispatch until `until()` says no more work can come and nothing waits or is in flight."""
        try:
            while self.failure is None:
                self._wake.clear()
                progressed = True
                while progressed and self.failure is None:
                    progressed = False
                    # judge lanes first where slots are shared: the second link of a chain
                    for lane in sorted(self.lanes, key=lambda la: not la.urgent):
                        while self._launchable(lane) and self._launch(lane):
                            progressed = True
                finished = until()  # called at every wake: a run that is done is finished at once
                if finished and not any(lane.in_flight or lane.ready() for lane in self.lanes):
                    break
                await self._wake.wait()
        finally:
            for task in list(self._calls):
                task.cancel()
            if self._calls:
                await asyncio.gather(*self._calls, return_exceptions=True)
        if self.failure is not None:
            raise self.failure
