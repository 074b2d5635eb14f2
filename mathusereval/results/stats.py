"""Paired statistics for two runs scored on the same items: exact McNemar, a sign-flip permutation test and a
paired bootstrap, all with fixed seeds so a report is the same on every machine.

Why paired: two checkpoints answering the same 500 MATH problems share the problems' difficulty, so the
difference is measured far more precisely than two independent standard errors suggest; an unpaired z-test
(what lm-eval's ``model_comparator.py`` does, lm-eval issue #3831) calls real improvements noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

SEED = 20240402
"""Fixed: the same runs always give the same CI and p-value."""
RESAMPLES = 10_000
EXACT_FLIPS = 16
"""Up to this many non-zero differences the sign-flip test enumerates all 2^k sign patterns (exact)."""
P_FLOOR = 1e-300
"""The smallest p-value reported: an exact tail below it (it underflows a float past ~1075 discordant pairs)
is reported as this bound and shown as ``p < 1e-300`` (`p_text`), never as 0."""


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: items right in A only and in B only
    (a binomial test of ``min(a_only, b_only)`` successes in ``a_only + b_only`` trials at 1/2)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail: float = sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)  # exact integers, one division
    return max(P_FLOOR, min(1.0, 2 * tail))


def p_text(p: float) -> str:
    """A p-value as shown: three significant digits, or ``< 1e-300`` at the floor (`P_FLOOR`)."""
    return f"< {P_FLOOR:g}" if p <= P_FLOOR else f"{p:.3g}"


def sign_flip_p(differences: Sequence[float], resamples: int = RESAMPLES) -> float:
    """Two-sided paired permutation test of mean(differences) = 0: each item's difference keeps its size and
    takes either sign. Exact (every sign pattern) for at most `EXACT_FLIPS` non-zero differences, else a fixed-
    seed Monte Carlo estimate (b + 1) / (resamples + 1)."""
    d = np.array([x for x in differences if x != 0], dtype=float)
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    tolerance = 1e-9 * max(1.0, observed)
    if d.size <= EXACT_FLIPS:
        signs = ((np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1) * 2 - 1
        sums = np.abs(signs @ d)
        return float(np.mean(sums >= observed - tolerance))
    rng = np.random.default_rng(SEED)
    hits = 0
    for start in range(0, resamples, 2000):
        size = min(2000, resamples - start)
        signs = rng.integers(0, 2, size=(size, d.size)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ d) >= observed - tolerance))
    return (hits + 1) / (resamples + 1)


def bootstrap_mean_ci(differences: Sequence[float], resamples: int = RESAMPLES) -> tuple[float, float] | None:
    """95% percentile interval of mean(differences) over items resampled with replacement (fixed seed)."""
    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        return None
    rng = np.random.default_rng(SEED)
    means = np.empty(resamples)
    for start in range(0, resamples, 2000):
        size = min(2000, resamples - start)
        means[start : start + size] = d[rng.integers(0, d.size, size=(size, d.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_ci(n: int, statistic: Callable[[Sequence[int]], float], resamples: int) -> tuple[float, float] | None:
    """95% percentile interval of any statistic of a resampled item list (indices into the paired items)."""
    if n < 2:
        return None
    rng = np.random.default_rng(SEED)
    values = [statistic(rng.integers(0, n, size=n).tolist()) for _ in range(resamples)]
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < resamples // 2:
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def permutation_p(n: int, statistic: Callable[[Sequence[bool]], float], observed: float, resamples: int) -> float:
    """Two-sided paired permutation p-value of any statistic: each item's two runs swap places or not."""
    rng = np.random.default_rng(SEED)
    tolerance = 1e-9 * max(1.0, abs(observed))
    hits = 0
    for _ in range(resamples):
        swap = (rng.integers(0, 2, size=n) == 1).tolist()
        if abs(statistic(swap)) >= abs(observed) - tolerance:
            hits += 1
    return (hits + 1) / (resamples + 1)
