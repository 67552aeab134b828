"""Summaries derived from per-(run, question) arrays: accuracy, tokens, bootstrap CIs."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def accuracy_pct(correct: NDArray[np.bool_]) -> float:
    """Reference accuracy: 100 × mean over runs of the per-run fraction correct."""
    if correct.size == 0:
        return 0.0
    # Every run has the same questions, so the mean of per-run fractions equals the
    # overall fraction; computing it from the integer count avoids float noise.
    return 100.0 * int(correct.sum()) / correct.size


def mean_tokens(cost: NDArray[np.int64]) -> float:
    """Reference tokens: mean over runs of (total tokens of the run / questions)."""
    if cost.size == 0:
        return 0.0
    return int(cost.sum()) / cost.size


def bootstrap_ci(
    values: NDArray[np.float64],
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one value per question).

    Questions are the unit that varies between benchmarks, so intervals resample
    questions, not runs. Seeded: the same input gives the same interval.
    """
    n = len(values)
    if n == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
