"""One tool-integrated answer as a chain of requests on the invocation's schedule (issue 33).

A `TaskRun` of a TIR task (``Task.tir``) hands each request to `ToolChains.start` instead of the lane: the
chain asks the model (``await lane.call``, as a judge attempt does in `mathusereval.run.judge_stream`), and
when the reply ends in a program (`protocol.next_action`) runs it in the sandbox (`Sandbox.run`: the bounded
executor pool beside the loop), appends the output as upstream formats it, and asks again with the reply
so far as the assistant turn to continue. A continuation is a new request of the same item in the same lane
(it waits for a free slot like any request; no slot is held while a program runs), at most
`protocol.MAX_FUNC_CALLS` programs per answer (QwenLM/Qwen2.5-Math @a45202bd ``evaluation/math_eval.py``).

Each step that ran a program is stored as it completes (``steps.jsonl``: text, code, output, exit status,
seconds, and that request's tokens), so a run killed mid-chain resumes from its last stored step and no
step is asked or run twice. The final `Generation` holds the whole trajectory as its text (what upstream
grades: the last ``\\boxed{}`` anywhere in it, a program's output included), every step in ``steps``, and
the tokens and seconds of every request.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, MueError, one_line
from ..records import Generation, GenerationParams, Request, Sample, Usage
from ..records.fields import from_json_fields
from .protocol import MAX_FUNC_CALLS, ToolStep, continue_reply, model_spans, next_action, replay
from .sandbox import Sandbox, SandboxError

Answer = Callable[[Generation | None], None]


@dataclass(frozen=True)
class StepRecord:
    """One line of ``steps.jsonl``: the `index`-th step (0-based) of answer (`sample_id`, `n_index`)."""

    sample_id: str
    n_index: int
    index: int
    step: ToolStep
    model: str
    usage: Usage = Usage()
    latency_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tool_step",
            "sample_id": self.sample_id,
            "n_index": self.n_index,
            "index": self.index,
            "step": self.step.to_json(),
            "model": self.model,
            "usage": {"prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens},
            "latency_s": self.latency_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        """From a stored line (hostile: a wrong field is a `TypeError` the store turns into file:line)."""
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        head = from_json_fields(_Head, data)
        if head.index < 0 or head.index >= MAX_FUNC_CALLS:
            raise TypeError(f"field 'index' is {head.index}, not 0 to {MAX_FUNC_CALLS - 1}")
        try:
            step = ToolStep.from_json(data.get("step"))
        except DataError as exc:
            raise TypeError(str(exc)) from None
        if step.code is None:
            raise TypeError("a stored step ran no program (only steps that did are stored)")
        usage = from_json_fields(Usage, data.get("usage", {}))
        if min(usage.prompt_tokens, usage.completion_tokens) < 0 or head.latency_s < 0:
            raise TypeError("a negative token count or latency")
        return cls(head.sample_id, head.n_index, head.index, step, head.model, usage, head.latency_s)


@dataclass(frozen=True, slots=True)
class _Head:
    sample_id: str
    n_index: int
    index: int
    model: str = ""
    latency_s: float = 0.0


def continuation(sample: Sample, reply: str) -> Sample:
    """The item with the reply so far as an assistant turn to continue (every backend continues a trailing
    assistant turn rather than answering it: `mathusereval.backends.base.continues`)."""
    return dataclasses.replace(sample, messages=(*sample.messages, {"role": "assistant", "content": reply}))


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(a.prompt_tokens + b.prompt_tokens, a.completion_tokens + b.completion_tokens)


class ToolChains:
    """The chains of one TIR task run: started per request, each its own coroutine on the event loop."""

    def __init__(
        self, store: Any, sandbox: Sandbox, origin: str, run_dir: Path, order: int, think: str = "strip"
    ) -> None:
        self.store, self.sandbox, self.origin, self.run_dir, self.order = store, sandbox, origin, run_dir, order
        self.think = think
        """``--think``: applied here to the model's own text only (`split_trajectory`), not to the outputs."""
        self.resumed: dict[tuple[str, int], list[StepRecord]] = {}
        for record in store.stored_steps(StepRecord.from_json):
            steps = self.resumed.setdefault((record.sample_id, record.n_index), [])
            del steps[record.index :]  # a step stored again (after a crash between two writes) replaces it
            if record.index == len(steps):
                steps.append(record)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, lane: Any, request: Request, params: GenerationParams, answer: Answer, position: int) -> None:
        task = asyncio.ensure_future(self._guarded(lane, request, params, answer, position))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _guarded(
        self, lane: Any, request: Request, params: GenerationParams, answer: Answer, position: int
    ) -> None:
        try:
            generation = await self._chain(lane, request, params, position)
        except asyncio.CancelledError:
            raise
        except (MueError, OSError) as exc:  # the sandbox or the store failed for this item: its error, retried
            kind = "sandbox" if isinstance(exc, SandboxError) else exc.__class__.__name__
            model = getattr(lane.backend, "model", "")
            generation = Generation(
                request.sample.id, request.n_index, str(model), error=f"{kind}: {one_line(str(exc))}"
            )
        answer(generation)

    async def _chain(self, lane: Any, request: Request, params: GenerationParams, position: int) -> Generation | None:
        from ..run.postprocess import finalize

        key = (request.sample.id, request.n_index)
        stored = self.resumed.pop(key, [])
        steps = [r.step for r in stored]
        usage, latency = Usage(), 0.0
        for record in stored:
            usage, latency = _add(usage, record.usage), latency + record.latency_s
        reply = replay(steps)
        model, finish = (stored[-1].model if stored else ""), None
        while len(steps) < MAX_FUNC_CALLS:
            sample = continuation(request.sample, reply) if reply else request.sample
            # a continuation goes before fresh items of its task: the second link of a chain the span waits on
            order = (-1 if reply else position, self.order)
            raw = await lane.call(
                Request(sample, request.n_index), params, origin=self.origin, order=order, run_dir=self.run_dir
            )
            if raw is None:  # not sent (a spent budget): the stored steps wait for the next run
                return None
            got = finalize(raw, "keep", params.stop)
            usage, latency, model, finish = (
                _add(usage, got.usage),
                latency + got.latency_s,
                got.model,
                got.finish_reason,
            )
            if not got.ok:
                return dataclasses.replace(got, usage=usage, latency_s=latency, steps=_json(steps))
            segment = got.text
            reply += segment.rstrip()
            code = next_action(reply, segment)
            if code is None:
                steps.append(ToolStep(segment))
                break
            result = await self.sandbox.run(code)
            step = ToolStep.of(segment, code, result)
            self.store.add_step(StepRecord(key[0], key[1], len(steps), step, model, got.usage, got.latency_s).to_json())
            steps.append(step)
            reply = continue_reply(reply, result, len(steps))
        text, reasoning = split_trajectory(reply, steps) if self.think == "strip" else (reply, None)
        return Generation(
            sample_id=key[0],
            n_index=key[1],
            model=model,
            text=text,
            reasoning=reasoning,
            finish_reason=finish or "stop",
            usage=usage,
            latency_s=latency,
            steps=_json(steps),
        )


def split_trajectory(reply: str, steps: list[ToolStep]) -> tuple[str, str | None]:
    """`mathusereval.run.postprocess.split_reasoning` of a chain's whole reply, where only the model's own
    text can close its thinking: a ``</think>`` a program printed is output shown to the model, and may not
    move what is graded."""
    from ..run.postprocess import THINK_CLOSE, THINK_OPEN

    closes = [i for start, end in model_spans(steps) if (i := reply.rfind(THINK_CLOSE, start, end)) >= 0]
    if closes:
        cut = max(closes)
        return reply[cut + len(THINK_CLOSE) :].strip(), reply[:cut].replace(THINK_OPEN, "", 1).strip()
    head, opened, rest = reply.partition(THINK_OPEN)
    if opened and not head.strip():  # a thought the model opened and never closed: no answer
        return "", rest.strip()
    return reply, None


def _json(steps: list[ToolStep]) -> tuple[dict[str, Any], ...]:
    return tuple(step.to_json() for step in steps)


def read_steps(generation: Generation) -> list[ToolStep]:
    """A stored answer's chain, each step checked (hostile records: a bad one is a `DataError`)."""
    return [ToolStep.from_json(step) for step in generation.steps]


_SANDBOXES: dict[str, Sandbox] = {}


def shared_sandbox(isolation: str) -> Sandbox:
    """One executor pool per invocation and isolation mode, shared by its TIR tasks (bounded together)."""
    if isolation not in _SANDBOXES:
        _SANDBOXES[isolation] = Sandbox(isolation="unisolated" if isolation == "unisolated" else "isolated")
    return _SANDBOXES[isolation]


def tool_chains(run: Any) -> ToolChains:
    """The chains of a `mathusereval.run.task_run.TaskRun` of a TIR task (its store, label and order)."""
    sandbox = shared_sandbox(getattr(run.options, "sandbox", "isolated"))
    return ToolChains(run.store, sandbox, run.label, run.directory, run.index, run.options.think)


def without_stop(params: GenerationParams) -> GenerationParams:
    """The settings a finished chain is post-processed with: its text holds the stop sequence on purpose."""
    return dataclasses.replace(params, stop=())


def require_sandbox(isolation: str) -> None:
    """Refuse a TIR run where programs cannot run as asked (no namespaces and no ``--sandbox unisolated``);
    say on stderr how they will run."""
    import sys

    probe = shared_sandbox(isolation).require()
    print(f"mue-eval: tool-integrated reasoning: programs run sandboxed ({probe.detail})", file=sys.stderr)
