"""``--ray ADDRESS``: replicas of an in-process engine as Ray actors across a cluster's nodes, kept full.

Ray is the existing engine for this (lm-eval and lighteval run vLLM data-parallel on Ray); we only place
replicas and feed them:

- ``--data-parallel-size N`` replicas of any in-process backend (llama.cpp, vLLM, a plugin's, loaded inside
  the replica from ``--include`` files or entry points), each an async Ray actor with the resources it needs:
  ``--threads`` CPUs for llama.cpp, ``--tensor-parallel-size`` GPUs in one placement-group bundle for vLLM
  (so a replica's GPUs sit on one node), 1 CPU otherwise; ``--ray-cpus-per-replica`` and
  ``--ray-gpus-per-replica`` override them. The request is checked against the cluster before anything
  starts: a replica no node can hold fails at once, naming what is missing.
- **Kept full.** A backend says how many requests it works on at once (``max_in_flight``: vLLM's
  ``max_num_seqs``, 1 for llama.cpp, `DEFAULT_IN_FLIGHT` when it says nothing). The driver keeps that many
  plus a margin in flight on every replica, in small hand-outs streamed back answer by answer (Ray
  streaming generators), and tops a replica up as each answer arrives: no replica waits for the slowest
  answer of a batch. Every answer is stored by this process as it arrives, so resume, budgets, grading and
  judges work unchanged.
- **Faults.** A replica (or its node) that dies, or that has requests in flight and answers nothing for
  ``--replica-timeout`` seconds (a stopped process, a hung engine), is killed and its requests in flight go
  to the others: nothing lost, nothing stored twice (a request is stored only when its answer arrives, and
  an answer that comes late from a replica given up on is dropped).
- Pitfalls designed around (lm-eval and Ray issue trackers): vLLM inside an actor must not start Ray
  placement groups of its own (it runs its tensor-parallel workers with multiprocessing), vLLM's
  data-parallel environment variables are cleared inside actors, and ``ray.init`` takes over SIGTERM, so
  ours (stop like Ctrl-C, exit 130) is put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..errors import BackendUnavailable, ConfigError
from ..plugins.contracts import BackendDefaults
from ..records import Generation, GenerationParams, Request, Sample
from .base import ModelSpec
from .options import BackendOptions, RayOptions, VLLMOptions

NAMESPACE = "mathusereval"
DEFAULT_IN_FLIGHT = 8
"""Requests in flight per replica for a backend that does not say (``max_in_flight``)."""
MARGIN = 0.25
"""Extra requests handed out beyond a replica's ``max_in_flight`` (at least one), so it never idles while
the next hand-out travels."""
_VLLM_DP_VARIABLES = ("VLLM_DP_RANK", "VLLM_DP_RANK_LOCAL", "VLLM_DP_SIZE", "VLLM_DP_MASTER_IP", "VLLM_DP_MASTER_PORT")


def _replica_class() -> Any:
    import ray

    @ray.remote
    class Replica:
        """One engine in one async actor. `generate` streams each answer back as it finishes; several hand-outs
        run at once on an engine that takes more than one request at a time."""

        def __init__(self, backend: str, model: str, options: BackendOptions, includes: Sequence[str]) -> None:
            for name in _VLLM_DP_VARIABLES:  # a replica is one engine, never part of a vLLM DP group
                os.environ.pop(name, None)
            if includes:
                from ..plugins.include import include

                include(includes)
            from . import make_backend

            self.engine = make_backend(ModelSpec(backend, model, options))
            self.in_flight = int(getattr(self.engine, "max_in_flight", DEFAULT_IN_FLIGHT) or DEFAULT_IN_FLIGHT)
            self.one_at_a_time = asyncio.Lock() if self.in_flight <= 1 else None

        def info(self) -> tuple[str, int, int]:
            """(node id, requests the engine works on at once, process id)."""
            return str(ray.get_runtime_context().get_node_id()), self.in_flight, os.getpid()

        async def generate(
            self, requests: list[dict[str, Any]], params: dict[str, Any]
        ) -> AsyncIterator[list[dict[str, Any]]]:
            """The hand-out's answers as they finish, in lists of those that finished together (one Ray
            object per list, not per answer: the driver's cost per answer stays small at hundreds a second)."""
            batch = [Request(Sample.from_json(r["sample"]), int(r["n_index"])) for r in requests]
            sampling = GenerationParams.from_json(params)
            ready: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

            async def work() -> None:
                # an engine of one request at a time never sees two hand-outs at once
                async with self.one_at_a_time or contextlib.nullcontext():
                    try:
                        async for generation in self.engine.generate(batch, sampling):
                            ready.put_nowait(generation.to_json())
                    except Exception as exc:  # noqa: BLE001 - the engine failed on this hand-out: its items fail
                        text = str(exc).splitlines()[-1][:300] if str(exc) else ""
                        for request in batch:
                            ready.put_nowait({"sample_id": request.sample.id, "n_index": request.n_index,
                                              "error": f"{exc.__class__.__name__}: {text}"})  # fmt: skip
                ready.put_nowait(None)

            worker = asyncio.ensure_future(work())
            try:
                finished = False
                while not finished:
                    answers = [await ready.get()]
                    while not ready.empty():
                        answers.append(ready.get_nowait())
                    finished = answers[-1] is None
                    if out := [a for a in answers if a is not None]:
                        yield out
            finally:
                worker.cancel()

    return Replica


@dataclasses.dataclass
class _Slot:
    """What the driver knows of one replica."""

    index: int
    actor: Any
    node: str = ""
    capacity: int = DEFAULT_IN_FLIGHT
    in_flight: dict[tuple[str, int], Request] = dataclasses.field(default_factory=dict)
    answered: int = 0
    last_progress: float = 0.0
    alive: bool = True

    @property
    def target(self) -> int:
        return self.capacity + max(1, int(self.capacity * MARGIN))


def resources(options: RayOptions) -> dict[str, float]:
    """What one replica asks of the cluster (`RayOptions.cpus`/`gpus` override the engine's defaults)."""
    inner = options.engine_options
    if isinstance(inner, VLLMOptions):
        need = {"CPU": 1.0, "GPU": float(inner.tensor_parallel_size or 1)}
    else:
        need = {"CPU": float(getattr(inner, "threads", None) or 1)}
    if options.cpus is not None:
        need["CPU"] = options.cpus
    if options.gpus is not None:
        need["GPU"] = options.gpus
    return {k: v for k, v in need.items() if v > 0}


class RayReplicas(BackendDefaults):
    """Generations from `replicas` copies of an in-process engine on a Ray cluster."""

    def __init__(self, spec: ModelSpec) -> None:
        o = spec.options
        if not isinstance(o, RayOptions):
            raise ConfigError(f"the ray backend takes RayOptions, not {type(o).__name__}")
        if o.engine in ("openai", "ray"):
            raise ConfigError("--ray runs in-process engines (llama.cpp, vLLM, a plugin's), not a served model")
        self.model = spec.model
        self.options = o
        self.engine = o.engine
        self.replicas = o.replicas
        self.need = resources(o)
        inner = o.engine_options
        if isinstance(inner, VLLMOptions):  # no nested Ray placement groups inside an actor; one engine each
            inner = dataclasses.replace(inner, distributed_executor_backend="mp", data_parallel_size=None)
        self.inner_options = inner
        self.timeout_s = float(o.replica_timeout)
        self.slots: list[_Slot] = []
        self.groups: list[Any] = []
        self._draining = False
        self._started_local = False
        self.max_in_flight = 0

    def describe(self) -> dict[str, Any]:
        return {
            "ray": "local" if self.options.address == "local" else "cluster",
            "engine": self.engine,
            "replicas": self.replicas,
            "per_replica": self.need,
            "replica_timeout_s": self.timeout_s,
            "dispatch": self.options.dispatch,
        }

    def _connect(self) -> None:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if ray.is_initialized():
            return
        ours = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False, "include_dashboard": False}
        if self.options.address == "local":  # a new instance on this machine, even when a cluster runs here
            self._started_local = True
            ray.init(address="local", **kwargs)
        else:
            try:
                ray.init(address=self.options.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.options.address
                raise BackendUnavailable(f"--ray {where}: cannot connect to a Ray cluster ({exc})") from exc
        for sig, handler in ours.items():  # ray.init installs its own (exit 15 with a C++ stack)
            if handler is not None:
                signal.signal(sig, handler)

    def _check_fits(self) -> None:
        """Fail now, naming what is missing, when the cluster cannot hold the replicas."""
        import ray

        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]

        def fits(node: dict[str, float]) -> int:
            return int(min(node.get(r, 0.0) // amount for r, amount in self.need.items() if amount))

        per_node = [fits(node) for node in nodes]
        want = ", ".join(f"{amount:g} {r}" for r, amount in self.need.items())
        have = "; ".join(", ".join(f"{node.get(r, 0):g} {r}" for r in self.need) for node in nodes) or "no nodes"
        if not any(per_node):
            raise BackendUnavailable(f"--ray: no node can hold one replica ({want}); the nodes have: {have}")
        if sum(per_node) < self.replicas:
            raise BackendUnavailable(
                f"--ray: {self.replicas} replicas of {want} each do not fit; the cluster holds {sum(per_node)} "
                f"(nodes: {have}); lower --data-parallel-size or add nodes"
            )

    async def check_reachable(self) -> None:
        """Connect, check the resources, start the replicas and wait until each has loaded its model."""
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self._connect()
        self._check_fits()
        replica = _replica_class()
        for index in range(self.replicas):
            group = placement_group([self.need], strategy="STRICT_PACK")
            self.groups.append(group)
            try:
                await asyncio.wait_for(asyncio.wrap_future(group.ready().future()), timeout=60)
            except asyncio.TimeoutError:
                raise BackendUnavailable(f"--ray: replica {index} ({self.need}) could not be placed in 60 s") from None
            strategy = PlacementGroupSchedulingStrategy(placement_group=group)
            options = {"num_cpus": self.need.get("CPU", 0), "num_gpus": self.need.get("GPU", 0)}
            actor = replica.options(
                name=f"mue-replica-{index}", scheduling_strategy=strategy, max_restarts=0, max_concurrency=1000,
                **options,
            ).remote(self.engine, self.model, self.inner_options, list(self.options.includes))  # fmt: skip
            self.slots.append(_Slot(index, actor))
        try:
            infos = await asyncio.gather(*(asyncio.wrap_future(s.actor.info.remote().future()) for s in self.slots))
        except ray.exceptions.RayError as exc:
            raise BackendUnavailable(f"--ray: a replica failed to start: {exc}") from exc
        for slot, (node, capacity, _) in zip(self.slots, infos, strict=True):
            slot.node, slot.capacity = node, capacity
        self.max_in_flight = sum(s.target for s in self.slots)

    def stop_sending(self) -> bool:
        self._draining = True
        return True

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        """Keep every replica at its target in flight; each answer is yielded as it arrives."""
        if not self.slots:
            await self.check_reachable()
        self._draining = False
        queue: deque[Request] = deque(requests)
        wire = params.to_json()
        answers: asyncio.Queue[tuple[_Slot, Any]] = asyncio.Queue()
        streams: set[asyncio.Task[None]] = set()

        async def pump(slot: _Slot, hand_out: list[Request]) -> None:
            """One hand-out's answers onto `answers`; then its keys (the end) or the failure that ended it."""
            try:
                wired = [{"sample": r.sample.to_json(), "n_index": r.n_index} for r in hand_out]
                async for ref in slot.actor.generate.options(num_returns="streaming").remote(wired, wire):
                    for answer in await ref:
                        answers.put_nowait((slot, answer))
                answers.put_nowait((slot, [(r.sample.id, r.n_index) for r in hand_out]))
            except Exception as exc:  # noqa: BLE001 - the actor or its node died: handled by the driver loop
                answers.put_nowait((slot, exc))

        def top_up(slot: _Slot) -> None:
            if not slot.alive or not queue or self._draining:
                return
            if self.options.dispatch == "batch":  # 0.2's scheme, kept to measure against: one batch at a time
                size = 0 if slot.in_flight else slot.capacity
            else:  # hand-outs of at least half the margin, so each one is worth a Ray call
                room = slot.target - len(slot.in_flight)
                size = room if room >= max(1, (slot.target - slot.capacity) // 2) else 0
            if size:
                hand_out = [queue.popleft() for _ in range(min(size, len(queue)))]
                for request in hand_out:
                    slot.in_flight[(request.sample.id, request.n_index)] = request
                slot.last_progress = time.monotonic()
                task = asyncio.ensure_future(pump(slot, hand_out))
                streams.add(task)
                task.add_done_callback(streams.discard)

        def give_up(slot: _Slot, why: str) -> None:
            import ray

            slot.alive = False
            with contextlib.suppress(ray.exceptions.RayError):
                ray.kill(slot.actor)
            queue.extendleft(reversed(list(slot.in_flight.values())))
            print(f"mue-eval: warning: replica {slot.index} {why}; its {len(slot.in_flight)} requests in flight go "
                  f"to the others ({sum(s.alive for s in self.slots)} left)", file=sys.stderr)  # fmt: skip
            slot.in_flight.clear()
            for live in self.slots:
                top_up(live)

        def check_stuck() -> None:
            now = time.monotonic()
            for stuck in [s for s in self.slots if s.alive and s.in_flight]:
                if now - stuck.last_progress > self.timeout_s:
                    give_up(stuck, f"answered nothing for {self.timeout_s:g} s (--replica-timeout)")

        try:
            for slot in self.slots:
                top_up(slot)
            checked = time.monotonic()
            while any(s.in_flight for s in self.slots if s.alive) or (queue and not self._draining):
                if queue and not any(s.alive for s in self.slots):
                    raise BackendUnavailable("--ray: every replica has died; the unanswered items are left for a rerun")
                if time.monotonic() - checked > 1.0:  # a hung replica is found even while the others answer
                    check_stuck()
                    checked = time.monotonic()
                try:
                    slot, answer = await asyncio.wait_for(answers.get(), timeout=1.0)
                except asyncio.TimeoutError:
                    continue
                if not slot.alive:
                    continue  # a late answer from a replica given up on: its request was handed out again
                if isinstance(answer, BaseException):
                    give_up(slot, f"died ({answer.__class__.__name__})")
                elif isinstance(answer, list):  # a hand-out's end: an item its engine never answered fails
                    for key in answer:
                        if (request := slot.in_flight.pop(key, None)) is not None:
                            yield self._failed(request, f"replica {slot.index}: the engine gave no answer")
                else:
                    key = (str(answer.get("sample_id")), int(answer.get("n_index", -1)))
                    request = slot.in_flight.pop(key, None)
                    if request is not None:
                        slot.answered += 1
                        slot.last_progress = time.monotonic()
                        if "model" in answer:
                            yield Generation.from_json(answer)
                        else:
                            yield self._failed(request, f"replica {slot.index}: {answer['error']}")
                top_up(slot)
        finally:
            for task in list(streams):
                task.cancel()

    def _failed(self, request: Request, message: str) -> Generation:
        return Generation(request.sample.id, request.n_index, self.model, error=message)

    def report(self) -> str:
        parts = [f"replica {s.index} (node {s.node[:8]}) answered {s.answered}" for s in self.slots]
        return "ray: " + "; ".join(parts)

    async def aclose(self) -> None:
        import ray

        if self.slots:
            print(f"mue-eval: {self.report()}", file=sys.stderr)
        for slot in self.slots:
            with contextlib.suppress(ray.exceptions.RayError):  # already dead
                ray.kill(slot.actor)
        self.slots = []
        from ray.util.placement_group import remove_placement_group

        for group in self.groups:
            with contextlib.suppress(Exception):
                remove_placement_group(group)
        self.groups = []
        if self._started_local:
            ray.shutdown()
