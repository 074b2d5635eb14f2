"""A simulated continuous-batching engine, as a backend plugin (``--include`` this file, ``--backend
simulated``): the stand-in for a GPU engine when measuring how well a scheduler keeps engines full.

The engine has `slots` sequences at once (vLLM's ``max_num_seqs``) shared by every call made to it, as a
real engine's batch is; a request holds a slot for its service time and then answers with the item's
reference in a box. Service times come from a hash of the item, so every run and every scheduler sees the
same workload: ``1 - long_share`` of the requests take `short` seconds, the rest `long_factor` times that
(the long tail of reasoning answers). The answer also says when the request reached the engine
(``arrived <unix time>``), so a benchmark can measure the span from the first request an engine saw to the
last answer stored.

``--model`` sets the engine: ``slots=16:short=0.05:long_factor=10:long_share=0.1`` (any subset; the
defaults are these), so the settings are part of the run's identity.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import mathusereval as mue


@dataclass(frozen=True)
class Workload:
    slots: int = 16
    short: float = 0.05
    long_factor: float = 10.0
    long_share: float = 0.1

    @classmethod
    def parse(cls, model: str) -> Workload:
        workload = cls()
        if model in ("", "simulated"):
            return workload
        known = {f.name: f.type for f in fields(cls)}
        for part in model.split(":"):
            name, _, value = part.partition("=")
            if name.strip() not in known or not value:
                raise mue.ConfigError(f"--model {model!r}: simulated engine settings are {', '.join(known)}")
            cast = int if name.strip() == "slots" else float
            workload = replace(workload, **{name.strip(): cast(value)})
        return workload

    def service_time(self, sample_id: str, n_index: int) -> float:
        """Seconds a request holds a slot: the same for every scheduler, by a hash of the item."""
        draw = int.from_bytes(hashlib.sha256(f"{sample_id}/{n_index}".encode()).digest()[:8], "big") / 2**64
        return self.short * (self.long_factor if draw < self.long_share else 1.0)


class SimulatedEngine:
    def __init__(self, spec: Any) -> None:
        self.model = spec.model
        self.workload = Workload.parse(spec.model)
        self.max_in_flight = self.workload.slots
        self.overlapping_calls = True  # every call shares the engine's slots, as a real engine's batch
        self._slots: asyncio.Semaphore | None = None

    def describe(self) -> dict[str, Any]:
        return {"simulated": True, "slots": self.workload.slots}

    async def _one(self, request: mue.Request) -> mue.Generation:
        if self._slots is None:  # made on the loop that runs the engine
            self._slots = asyncio.Semaphore(self.workload.slots)
        arrived = time.time()
        service = self.workload.service_time(request.sample.id, request.n_index)
        async with self._slots:
            started = time.perf_counter()
            await asyncio.sleep(service)
        answer = f"The answer is $\\boxed{{{request.sample.reference}}}$."
        text = f"Simulated (arrived {arrived:.6f}, service {service:.6f}). {answer}"
        usage = mue.Usage(prompt_tokens=1, completion_tokens=len(text) // 4)
        return mue.Generation(
            request.sample.id, request.n_index, self.model, text, "stop", usage, time.perf_counter() - started
        )

    async def generate(
        self, requests: Sequence[mue.Request], params: mue.GenerationParams
    ) -> AsyncIterator[mue.Generation]:
        tasks = [asyncio.ensure_future(self._one(r)) for r in requests]
        try:
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for task in tasks:
                task.cancel()

    async def aclose(self) -> None:
        pass


def arrival(text: str) -> float:
    """When the request of a simulated answer reached its engine (unix time)."""
    return float(text.split("(arrived ", 1)[1].split(",", 1)[0].split(")", 1)[0])


def service(text: str) -> float:
    """The seconds the request of a simulated answer held its slot."""
    return float(text.split(", service ", 1)[1].split(")", 1)[0])


def best_span(service_times: Sequence[float], slots: int) -> float:
    """The span of the longest-first list schedule of `service_times` on `slots` slots: the ideal a
    scheduler is measured against (within 4/3 of the optimum, and on this workload practically equal)."""
    import heapq

    free = [0.0] * slots
    for service in sorted(service_times, reverse=True):
        heapq.heapreplace(free, free[0] + service)
    return max(free)


mue.register("backends", "simulated", SimulatedEngine)
