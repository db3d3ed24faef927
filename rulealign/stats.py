"""Confidence intervals for the audit's rates and means (no numpy needed)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there is no data."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean(values: Sequence[float], *, resamples: int = 2000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval for a mean (deterministic for a seed)."""
    if not values:
        return 0.0, 0.0
    if len(values) == 1:
        return values[0], values[0]
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choice(values) for _ in range(n)) / n for _ in range(resamples))
    lo = means[int((1 - level) / 2 * resamples)]
    hi = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return lo, hi


def paired_difference(before: Sequence[float], after: Sequence[float], *,
                      resamples: int = 2000, seed: int = 0, level: float = 0.95
                      ) -> tuple[float, tuple[float, float]]:
    """The mean of ``after - before`` over paired items, with a percentile bootstrap interval
    that resamples the pairs (each item keeps its own before and after: the pairing is what
    makes a small change on the same items detectable). ``(0, (0, 0))`` without pairs."""
    if len(before) != len(after):
        raise ValueError("paired_difference needs as many 'after' values as 'before' values")
    diffs = [a - b for b, a in zip(before, after, strict=True)]
    if not diffs:
        return 0.0, (0.0, 0.0)
    return sum(diffs) / len(diffs), bootstrap_mean(diffs, resamples=resamples, seed=seed,
                                                   level=level)
