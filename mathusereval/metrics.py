"""Aggregation helpers: per-sample scores -> mean with standard error."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from .records import Grade, MetricValue, Sample


def mean_with_stderr(name: str, values: Sequence[float], *, higher_is_better: bool = True) -> MetricValue:
    """Mean and its standard error (sample std / sqrt(n)); stderr is None below two values."""
    n = len(values)
    if n == 0:
        return MetricValue(name=name, value=float("nan"), n=0, stderr=None, higher_is_better=higher_is_better)
    mean = math.fsum(values) / n
    stderr = None
    if n > 1:
        var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
        stderr = math.sqrt(var / n)
    return MetricValue(name=name, value=mean, n=n, stderr=stderr, higher_is_better=higher_is_better)


def per_sample_scores(grades: Iterable[Grade]) -> dict[str, float]:
    """Average the scores of each sample's generations (several when --samples K > 1).

    Grades without a score (grader errors) are left out, so they never count as wrong.
    """
    by_sample: dict[str, list[float]] = defaultdict(list)
    for grade in grades:
        if grade.score is not None:
            by_sample[grade.sample_id].append(grade.score)
    return {sid: math.fsum(scores) / len(scores) for sid, scores in by_sample.items()}


def accuracy(samples: Sequence[Sample], grades: Sequence[Grade]) -> list[MetricValue]:
    """Mean per-sample score of the primary grader, the headline metric of answer-checked tasks."""
    scores = per_sample_scores(grades)
    return [mean_with_stderr("accuracy", [scores[s.id] for s in samples if s.id in scores])]
