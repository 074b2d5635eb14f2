"""Aggregation helpers: per-sample scores -> mean with standard error."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from ..records import Grade, MetricValue, Sample


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


def grades_by_sample(grades: Iterable[Grade]) -> dict[str, list[Grade]]:
    """Each sample's scored grades (several when --samples K > 1); grader errors are left out, so they never
    count as wrong."""
    by_sample: dict[str, list[Grade]] = defaultdict(list)
    for grade in grades:
        if grade.score is not None:
            by_sample[grade.sample_id].append(grade)
    return by_sample


def per_sample_scores(grades: Iterable[Grade]) -> dict[str, float]:
    """Average the scores of each sample's generations."""
    return {
        sid: math.fsum(g.score for g in gs if g.score is not None) / len(gs)
        for sid, gs in grades_by_sample(grades).items()
    }


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def majority_correct(grades: Sequence[Grade]) -> bool:
    """maj@k: the most frequent normalised prediction decides the sample; a tie goes to the prediction of the
    lowest answer index (not to whichever answer happened to be graded first)."""
    ordered = sorted(grades, key=lambda g: g.n_index)
    votes = Counter(g.details.get("prediction") for g in ordered if g.details.get("prediction") is not None)
    if not votes:
        return False
    answer = votes.most_common(1)[0][0]
    return any(g.correct for g in grades if g.details.get("prediction") == answer)


def sampling_metrics(samples: Sequence[Sample], grades: Sequence[Grade]) -> list[MetricValue]:
    """pass@k and maj@k when the run drew k > 1 generations per sample (``--samples k``)."""
    by_sample = grades_by_sample(grades)
    k = max((len(v) for v in by_sample.values()), default=0)
    if k <= 1:
        return []
    complete = [by_sample[s.id] for s in samples if len(by_sample.get(s.id, ())) == k]
    return [
        mean_with_stderr(f"pass@{k}", [pass_at_k(k, sum(bool(g.correct) for g in gs), k) for gs in complete]),
        mean_with_stderr(f"maj@{k}", [float(majority_correct(gs)) for gs in complete]),
    ]


def accuracy(samples: Sequence[Sample], grades: Sequence[Grade]) -> list[MetricValue]:
    """Mean per-sample score of the primary grader (mean accuracy over k samples), then pass@k and maj@k."""
    scores = per_sample_scores(grades)
    headline = mean_with_stderr("accuracy", [scores[s.id] for s in samples if s.id in scores])
    return [headline, *sampling_metrics(samples, grades)]


def grouped_means(
    samples: Sequence[Sample],
    grades: Sequence[Grade],
    key: str | Callable[[Sample], Hashable],
    label: str | Callable[[Any], str] = "accuracy/{key}={value}",
    groups: Sequence[Hashable] | None = None,
) -> list[MetricValue]:
    """Mean ± stderr of the per-sample scores within each group of samples.

    Args:
        key: a metadata field (``"subject"``) or a function of the sample giving its group.
        label: the metric name, a format string with ``{key}`` and ``{value}`` or a function of the group.
        groups: the groups to report, in this order (a group without scores reports n = 0); by default
            every group the samples have, sorted.
    """
    scores = per_sample_scores(grades)
    group_of: Callable[[Sample], Hashable] = (lambda s: s.metadata.get(key)) if isinstance(key, str) else key
    wanted = list(groups) if groups is not None else sorted({group_of(s) for s in samples}, key=str)
    by_group: dict[Hashable, list[float]] = {g: [] for g in wanted}
    for sample in samples:
        group = group_of(sample)
        if group in by_group and sample.id in scores:
            by_group[group].append(scores[sample.id])
    name_of = label if callable(label) else (lambda g: label.format(key=key, value=g))
    return [mean_with_stderr(name_of(g), values) for g, values in by_group.items()]
