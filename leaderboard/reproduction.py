"""Does a run reproduce a published row (``leaderboard --reference``)?

A run matches a published row of its task when its model's name is the row's (case and a leading
organisation folded: ``Qwen/Qwen2.5-Math-7B-Instruct`` is ``Qwen2.5-Math-7B-Instruct``), or when
``--reference-name`` names the row. The verdict compares the published headline with the run's 95% interval
(Wilson's for accuracies, `MetricValue.ci95`): inside it the run reproduces the row; outside, it misses by
the distance to the interval. Beside it: the settings of the run that differ from the published protocol
(max tokens, prompt, samples, temperature), as far as the reference records them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from mathusereval.records import MetricValue, RunResult

from .layout import is_share, plain_text
from .reference import MARK, TABLES, PublishedTable


@dataclass(frozen=True)
class Verdict:
    row: str
    published: str
    metric: str
    run_value: float
    published_value: float
    interval: tuple[float, float] | None
    differences: tuple[str, ...]

    @property
    def reproduces(self) -> bool | None:
        if self.interval is None:
            return None
        return self.interval[0] - 1e-12 <= self.published_value <= self.interval[1] + 1e-12

    @property
    def miss(self) -> float:
        """How far the published value lies outside the run's interval (0 inside it)."""
        if self.interval is None:
            return abs(self.published_value - self.run_value)
        low, high = self.interval
        return max(low - self.published_value, self.published_value - high, 0.0)

    def text(self) -> str:
        metric = MetricValue(self.metric, self.run_value, 1)
        factor, unit, places = (100.0, " points", 1) if is_share(metric) else (1.0, "", 2)

        def f(x: float) -> str:
            return f"{x * factor:.{places}f}"

        head = f"{self.row} vs {self.published} {MARK}: {self.metric} {f(self.run_value)}"
        if self.interval is not None:
            head += f" (95% CI {f(self.interval[0])}–{f(self.interval[1])})"
        head += f", published {f(self.published_value)}: "
        if self.reproduces is None:
            head += "no interval (n < 2), not decided"
        elif self.reproduces:
            head += "reproduces it (the published value is inside the run's 95% CI)"
        else:
            side = "below" if self.published_value < self.run_value else "above"
            head += f"does not reproduce it: the published value is {f(self.miss)}{unit} {side} the run's 95% CI"
        if self.differences:
            head += "; settings that differ from the published protocol: " + "; ".join(self.differences)
        else:
            head += "; the run's recorded settings match the published protocol"
        return head


def _folded(name: str) -> str:
    return PurePosixPath(name.strip().rstrip("/")).name.casefold()


def _matching(run: RunResult, table: PublishedTable, reference_name: str | None) -> str | None:
    wanted = {_folded(reference_name)} if reference_name else {_folded(run.manifest.model), _folded(run.row)}
    return next((model for model in table.rows if _folded(model) in wanted), None)


def protocol_differences(run: RunResult, protocol: Mapping[str, Any]) -> tuple[str, ...]:
    """The run's settings that differ from what the published protocol records (keys it leaves out are not
    compared)."""
    params, settings, found = run.manifest.params, run.manifest.settings, []
    if "max_tokens" in protocol and params.get("max_tokens") != protocol["max_tokens"]:
        found.append(f"max tokens {params.get('max_tokens')} (published {protocol['max_tokens']})")
    if "temperature" in protocol:
        wanted, given = protocol["temperature"], run.manifest.overrides.get("temperature")
        if wanted is None and given is not None:
            found.append(f"temperature {given} for every item (published: per category)")
        elif wanted is not None and float(params.get("temperature", wanted)) != float(wanted):
            found.append(f"temperature {params.get('temperature')} (published {wanted})")
    if "samples" in protocol and int(params.get("n", 1)) != protocol["samples"]:
        found.append(f"samples {params.get('n', 1)} per item (published {protocol['samples']})")
    if "prompt" in protocol:
        changed = [k for k in ("system_prompt", "backend.chat_template") if k in settings]
        if changed:
            found.append(f"prompt changed by {', '.join(changed)} (published: {protocol['prompt']})")
    if "shots" in protocol:
        found.append(f"{protocol['shots']}")
    return tuple(found)


def verdicts(runs: Sequence[RunResult], task: str, reference_name: str | None = None) -> list[Verdict]:
    """The verdict of each run of `task` that matches a published row of the task's table."""
    table = next((t for t in TABLES if t.task == task), None)
    if table is None:
        return []
    found = []
    for run in runs:
        published = _matching(run, table, reference_name)
        if published is None or not run.metrics:
            continue
        headline = next((m for m in run.metrics if m.name == table.columns[0]), run.metrics[0])
        value = table.rows[published][0]
        if math.isnan(headline.value):
            continue
        found.append(
            Verdict(
                plain_text(run.row),
                published,
                headline.name,
                headline.value,
                value,
                headline.ci95,
                protocol_differences(run, table.protocol),
            )  # fmt: skip
        )
    return found
