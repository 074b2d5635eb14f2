"""``--ray ADDRESS``: model replicas as Ray actors across a cluster's nodes, fed work by this process.

Ray is the existing engine for this (lm-eval and lighteval run vLLM data-parallel on Ray, Ray Data LLM runs
batch inference over many nodes); we only place replicas and hand out work:

- ``--data-parallel-size N`` replicas of an in-process engine (llama.cpp on CPU nodes, vLLM on GPU nodes),
  each a Ray actor with the resources it needs: ``--threads`` CPUs for llama.cpp; for vLLM
  ``--tensor-parallel-size`` GPUs in one placement-group bundle, so a replica's GPUs sit on one node.
- Before anything starts, the request is checked against the cluster's nodes: a replica no node can hold,
  or more replicas than the cluster fits, fails at once naming what is missing (an unsatisfiable Ray
  request would otherwise wait forever).
- Work is handed out dynamically, a few requests at a time, to whichever replica is free; every answer
  comes back to this process, which stores it in the one run store as it arrives, so resume, budgets,
  grading and judges work unchanged.
- A replica (or its node) that dies has its in-flight requests handed to the others; nothing is lost, and
  nothing is stored twice (a request is stored only when its answer arrives).
- Pitfalls designed around (lm-eval and Ray issue trackers): vLLM inside an actor must not start Ray
  placement groups of its own (it runs its tensor-parallel workers with multiprocessing), vLLM's
  data-parallel environment variables are cleared inside actors, and ``--max-model-len`` bounds each engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..errors import BackendUnavailable, ConfigError
from ..records import Generation, GenerationParams, Request, Sample
from .base import ModelSpec
from .options import BackendOptions, RayOptions, VLLMOptions

NAMESPACE = "mathusereval"
BATCH = {"llamacpp": 2, "vllm": 64}
"""Requests per hand-out: small for a sequential engine (balance), larger for a batching one (throughput)."""
_VLLM_DP_VARIABLES = ("VLLM_DP_RANK", "VLLM_DP_RANK_LOCAL", "VLLM_DP_SIZE", "VLLM_DP_MASTER_IP", "VLLM_DP_MASTER_PORT")


def _replica_class() -> Any:
    import ray

    @ray.remote
    class Replica:
        """One engine in one actor; `generate` answers a batch and returns plain records."""

        def __init__(self, backend: str, model: str, options: BackendOptions) -> None:
            for name in _VLLM_DP_VARIABLES:  # a replica is one engine, never part of a vLLM DP group
                os.environ.pop(name, None)
            from . import make_backend

            self.engine = make_backend(ModelSpec(backend, model, options))

        def node(self) -> str:
            return str(ray.get_runtime_context().get_node_id())

        def generate(self, requests: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
            batch = [Request(Sample.from_json(r["sample"]), int(r["n_index"])) for r in requests]

            async def collect() -> list[dict[str, Any]]:
                return [g.to_json() async for g in self.engine.generate(batch, GenerationParams.from_json(params))]

            return asyncio.run(collect())

    return Replica


class RayReplicas:
    """Generations from `replicas` copies of an in-process engine on a Ray cluster."""

    def __init__(self, spec: ModelSpec) -> None:
        o = spec.options
        if not isinstance(o, RayOptions):
            raise ConfigError(f"the ray backend takes RayOptions, not {type(o).__name__}")
        self.model = spec.model
        self.address = o.address
        self.engine = o.engine
        if self.engine not in BATCH:
            raise ConfigError(f"--ray runs llama.cpp or vLLM replicas, not {self.engine!r}")
        self.replicas = o.replicas
        inner = o.engine_options
        if isinstance(inner, VLLMOptions):
            self.need = {"CPU": 1.0, "GPU": float(inner.tensor_parallel_size or 1)}
            # no nested Ray placement groups inside an actor; one engine per replica
            inner = dataclasses.replace(inner, distributed_executor_backend="mp", data_parallel_size=None)
        else:
            self.need = {"CPU": float(getattr(inner, "threads", None) or 1)}
        self.inner_options = inner
        self.actors: list[Any] = []
        self.groups: list[Any] = []
        self.nodes: list[str] = []
        self.answered: list[int] = []
        self._draining = False
        self._started_local = False

    def describe(self) -> dict[str, Any]:
        return {
            "ray": "local" if self.address == "local" else "cluster",
            "engine": self.engine,
            "replicas": self.replicas,
            "per_replica": self.need,
        }

    def _connect(self) -> None:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False, "include_dashboard": False}
        if self.address == "local":  # a new instance on this machine, even when a cluster runs here
            self._started_local = True
            ray.init(address="local", **kwargs)
        else:
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BackendUnavailable(f"--ray {self.address}: cannot connect to a Ray cluster ({exc})") from exc

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
                name=f"mue-replica-{index}", scheduling_strategy=strategy, max_restarts=0, **options
            ).remote(self.engine, self.model, self.inner_options)
            self.actors.append(actor)
        try:
            self.nodes = [str(n) for n in await asyncio.gather(*(self._call(a.node.remote()) for a in self.actors))]
        except ray.exceptions.RayError as exc:
            raise BackendUnavailable(f"--ray: a replica failed to start: {exc}") from exc
        self.answered = [0] * len(self.actors)

    @staticmethod
    async def _call(ref: Any) -> Any:
        return await asyncio.wrap_future(ref.future())

    def stop_sending(self) -> None:
        self._draining = True

    async def generate(self, requests: Sequence[Request], params: GenerationParams) -> AsyncIterator[Generation]:
        """Hand out batches to free replicas; a dead replica's batch goes back to the queue."""
        import ray

        if not self.actors:
            await self.check_reachable()
        self._draining = False
        size = BATCH[self.engine]
        wire: list[dict[str, Any]] = [{"sample": r.sample.to_json(), "n_index": r.n_index} for r in requests]
        queue = deque(wire[i : i + size] for i in range(0, len(wire), size))
        alive = set(range(len(self.actors)))
        running: dict[asyncio.Future[Any], tuple[int, list[dict[str, Any]]]] = {}
        wire_params = params.to_json()
        while queue or running:
            busy = {index for index, _ in running.values()}
            for index in sorted(alive - busy):
                if not queue or self._draining:
                    break
                batch = queue.popleft()
                future = asyncio.ensure_future(self._call(self.actors[index].generate.remote(batch, wire_params)))
                running[future] = (index, batch)
            if not running:
                if queue and not alive:
                    raise BackendUnavailable("--ray: every replica has died; the unanswered items are left for a rerun")
                break
            done, _ = await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                index, batch = running.pop(future)
                try:
                    answers = future.result()
                except ray.exceptions.RayTaskError as exc:  # the engine raised on this batch: its items fail
                    self.answered[index] += len(batch)
                    for item in batch:
                        yield Generation(
                            sample_id=item["sample"]["id"],
                            n_index=int(item["n_index"]),
                            model=self.model,
                            error=f"replica {index}: {str(exc).splitlines()[-1][:300]}",
                        )
                    continue
                except ray.exceptions.RayError as exc:  # the actor or its node died: others take its work
                    alive.discard(index)
                    queue.appendleft(batch)
                    print(f"mue-eval: warning: replica {index} died ({exc.__class__.__name__}); its work goes to "
                          f"the others ({len(alive)} left)", file=sys.stderr)  # fmt: skip
                    continue
                self.answered[index] += len(answers)
                for answer in answers:
                    yield Generation.from_json(answer)

    def report(self) -> str:
        pairs = enumerate(zip(self.nodes, self.answered, strict=True))
        parts = [f"replica {i} (node {n[:8]}) answered {a}" for i, (n, a) in pairs]
        return "ray: " + "; ".join(parts)

    async def aclose(self) -> None:
        import ray

        if self.actors:
            print(f"mue-eval: {self.report()}", file=sys.stderr)
        for actor in self.actors:
            with contextlib.suppress(ray.exceptions.RayError):  # already dead
                ray.kill(actor)
        self.actors = []
        from ray.util.placement_group import remove_placement_group

        for group in self.groups:
            remove_placement_group(group)
        self.groups = []
        if self._started_local:
            ray.shutdown()
