"""Frontier statistics of accuracy–cost curves: Pareto frontier, area, budgets, paired tests.

A test-time-scaling controller is judged by what accuracy it buys for how many tokens,
so most questions a researcher asks are about *curves* (one point per β or budget),
not single points. Everything here is a pure function on arrays (no plotting, no I/O)
so that ``autotts report`` and frontier-aware discovery compute the same numbers.

Conventions, chosen once:

* A curve is given as parallel arrays ``tokens`` (mean total tokens per question, > 0)
  and ``accuracy`` (percent). Order does not matter.
* The **frontier** of a curve keeps its Pareto-optimal points (no other point is at
  most as expensive and at least as accurate, one of them strictly), sorted by tokens.
* Between frontier points accuracy is interpolated **linearly in log(tokens)** (scaling
  curves are straight-ish on a log axis, and a ratio of budgets is what users compare).
  Above the most expensive point the frontier stays flat: with a larger budget a user
  can still run the best configuration. Below the cheapest point it is undefined
  (``nan``): no configuration runs that cheaply.
* The **area** over ``[lo, hi]`` is the integral of that interpolant over
  ``log(tokens)`` divided by ``log(hi / lo)``, i.e. the mean accuracy (percent) over the
  log-token range, so areas over the same range compare directly and a difference of
  areas reads as "points of accuracy on average over the budgets".
* **Paired comparisons** resample questions (the unit that varies between benchmarks)
  with the same question indices for both cells, after averaging each question over the
  runs. Both cells must come from the same store, runs and questions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autotts.errors import ResultsError

__all__ = [
    "PairedComparison",
    "accuracy_at",
    "common_range",
    "frontier_area",
    "frontier_curve",
    "paired_bootstrap",
    "pareto_frontier",
    "tokens_saved",
    "tokens_to_reach",
]


def _curve(tokens: ArrayLike, accuracy: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.asarray(tokens, dtype=np.float64).ravel()
    a = np.asarray(accuracy, dtype=np.float64).ravel()
    if t.shape != a.shape:
        raise ResultsError(f"a curve needs as many token values as accuracies, got {t.size} and {a.size}")
    if t.size == 0:
        raise ResultsError("a curve needs at least one point")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a))):
        raise ResultsError("curve values must be finite numbers")
    if np.any(t <= 0):
        raise ResultsError("token values must be positive (frontiers are drawn on log tokens)")
    return t, a


def pareto_frontier(tokens: ArrayLike, accuracy: ArrayLike) -> NDArray[np.intp]:
    """Indices of the Pareto-optimal points, sorted by tokens (then by the input order).

    A point is dropped when another point costs at most as much and is at least as
    accurate, with one of the two strict. Of exactly equal points the first is kept.
    """
    t, a = _curve(tokens, accuracy)
    # Sort by tokens ascending, accuracy descending, input order: a sweep then keeps
    # every point that beats the best accuracy seen so far.
    order = np.lexsort((np.arange(t.size), -a, t))
    keep: list[int] = []
    best = -math.inf
    for i in order.tolist():
        if a[i] > best:
            keep.append(i)
            best = float(a[i])
    return np.asarray(keep, dtype=np.intp)


def frontier_curve(tokens: ArrayLike, accuracy: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The frontier's (tokens, accuracy) arrays, tokens ascending and accuracy strictly increasing."""
    t, a = _curve(tokens, accuracy)
    idx = pareto_frontier(t, a)
    return t[idx], a[idx]


def accuracy_at(tokens: ArrayLike, accuracy: ArrayLike, budgets: ArrayLike) -> NDArray[np.float64]:
    """Frontier accuracy at each budget: linear in log tokens, flat above, ``nan`` below the cheapest point."""
    ft, fa = frontier_curve(tokens, accuracy)
    b = np.asarray(budgets, dtype=np.float64)
    if np.any(~np.isfinite(b)) or np.any(b <= 0):
        raise ResultsError("budgets must be positive, finite token counts")
    out = np.interp(np.log(b), np.log(ft), fa)  # np.interp is flat beyond both ends
    return np.where(b < ft[0], np.nan, out)


def frontier_area(tokens: ArrayLike, accuracy: ArrayLike, lo: float, hi: float) -> float:
    """Mean frontier accuracy (percent) over ``log(tokens)`` in ``[lo, hi]``.

    ``nan`` when ``lo`` is below the curve's cheapest point (the frontier is undefined
    there); pick a range all compared curves cover, e.g. with :func:`common_range`.
    The integral is exact for the piecewise-linear interpolant.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi < lo:
        raise ResultsError(f"the token range must satisfy 0 < lo <= hi, got [{lo}, {hi}]")
    ft, fa = frontier_curve(tokens, accuracy)
    if lo < ft[0]:
        return math.nan
    if hi == lo:
        return float(accuracy_at(ft, fa, [lo])[0])
    inner = ft[(ft > lo) & (ft < hi)]
    xs = np.concatenate(([lo], inner, [hi]))
    ys = accuracy_at(ft, fa, xs)
    lx = np.log(xs)
    area = float(np.sum((ys[1:] + ys[:-1]) * np.diff(lx)) / 2.0)
    return area / float(lx[-1] - lx[0])


def common_range(curves: Sequence[tuple[ArrayLike, ArrayLike]]) -> tuple[float, float] | None:
    """The token range every curve's frontier covers: from the largest cheapest point to the smallest dearest point.

    ``None`` when the ranges do not overlap (then no area comparison is fair).
    """
    if not curves:
        return None
    los, his = [], []
    for tokens, accuracy in curves:
        ft, _ = frontier_curve(tokens, accuracy)
        t, _ = _curve(tokens, accuracy)
        los.append(float(ft[0]))
        his.append(float(t.max()))
    lo, hi = max(los), min(his)
    return (lo, hi) if lo <= hi else None


def tokens_to_reach(tokens: ArrayLike, accuracy: ArrayLike, target: float) -> float:
    """Fewest tokens at which the frontier reaches ``target`` accuracy (log-linear); ``nan`` if it never does."""
    ft, fa = frontier_curve(tokens, accuracy)
    if target <= fa[0]:
        return float(ft[0])
    if target > fa[-1]:
        return math.nan
    j = int(np.searchsorted(fa, target))  # fa is strictly increasing; fa[j-1] < target <= fa[j]
    x0, x1 = math.log(ft[j - 1]), math.log(ft[j])
    frac = (target - fa[j - 1]) / (fa[j] - fa[j - 1])
    return math.exp(x0 + frac * (x1 - x0))


def tokens_saved(reference_tokens: float, reference_accuracy: float, tokens: ArrayLike, accuracy: ArrayLike) -> float:
    """Fraction of the reference's tokens a curve saves at the reference's accuracy.

    ``0.4`` means the curve reaches the reference point's accuracy with 40 % fewer
    tokens; negative means it needs more; ``nan`` when it never reaches that accuracy.
    """
    if reference_tokens <= 0:
        raise ResultsError(f"the reference must spend tokens, got {reference_tokens}")
    need = tokens_to_reach(tokens, accuracy, reference_accuracy)
    return math.nan if math.isnan(need) else 1.0 - need / reference_tokens


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """Cell A against cell B on the same runs and questions (A − B and A / B).

    ``accuracy_diff`` is in percentage points; ``token_ratio`` is A's mean tokens over
    B's. Intervals are percentile bootstrap intervals over questions; p-values are
    two-sided, from the bootstrap distribution re-centred on the null (no difference,
    ratio 1), so identical cells give a difference of 0 and a p-value of 1.
    """

    accuracy_diff: float
    accuracy_diff_ci: tuple[float, float]
    accuracy_p: float
    token_ratio: float
    token_ratio_ci: tuple[float, float]
    token_ratio_p: float
    runs: int
    questions: int
    resamples: int
    level: float

    def accuracy_verdict(self, alpha: float = 0.05) -> str:
        """``"A more accurate"``, ``"B more accurate"`` or ``"not distinguishable"`` at level ``alpha``."""
        if self.accuracy_p >= alpha or self.accuracy_diff == 0:
            return "not distinguishable"
        return "A more accurate" if self.accuracy_diff > 0 else "B more accurate"

    def cost_verdict(self, alpha: float = 0.05) -> str:
        """``"A cheaper"``, ``"B cheaper"`` or ``"not distinguishable"`` at level ``alpha``."""
        if self.token_ratio_p >= alpha or self.token_ratio == 1:
            return "not distinguishable"
        return "A cheaper" if self.token_ratio < 1 else "B cheaper"


def _two_sided_p(boot: NDArray[np.float64], observed: float, null: float) -> float:
    # Shift the bootstrap distribution so it is centred on the null value, then count
    # resamples at least as far from the null as what was observed.
    shifted = boot - (observed - null)
    tol = 1e-9 * max(1.0, abs(observed))
    return float(np.mean(np.abs(shifted - null) >= abs(observed - null) - tol))


def paired_bootstrap(
    correct_a: ArrayLike,
    cost_a: ArrayLike,
    correct_b: ArrayLike,
    cost_b: ArrayLike,
    *,
    resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Paired bootstrap of the accuracy difference and the token ratio of two cells.

    Every array has shape ``(runs, questions)``, both cells the same shape, from the
    same store and branch orders (the caller checks the store; shapes are checked
    here). Each question is averaged over runs first, then questions are resampled
    with replacement — the same indices for A and B, which is what makes it paired.
    Seeded: the same input gives the same result.
    """
    arrays = [np.asarray(x) for x in (correct_a, cost_a, correct_b, cost_b)]
    shape = arrays[0].shape
    if len(shape) != 2 or any(x.shape != shape for x in arrays):
        raise ResultsError(
            "a paired comparison needs four (runs, questions) arrays of one shape, got "
            + ", ".join(str(x.shape) for x in arrays)
        )
    runs, questions = shape
    if runs == 0 or questions == 0:
        raise ResultsError("a paired comparison needs at least one run and one question")
    if resamples < 1:
        raise ResultsError(f"resamples must be at least 1, got {resamples}")
    if not 0 < level < 1:
        raise ResultsError(f"level must be in (0, 1), got {level}")
    acc_a, tok_a, acc_b, tok_b = (x.astype(np.float64).mean(axis=0) for x in arrays)
    if tok_b.sum() <= 0 or tok_a.sum() <= 0:
        raise ResultsError("both cells must spend tokens for a token ratio")
    diff_q = 100.0 * (acc_a - acc_b)
    diff = float(diff_q.mean())
    ratio = float(tok_a.sum() / tok_b.sum())
    rng = np.random.default_rng(seed)
    boot_diff = np.empty(resamples)
    boot_ratio = np.empty(resamples)
    block = max(1, 2_000_000 // questions)  # bound memory for many questions
    for start in range(0, resamples, block):
        n = min(block, resamples - start)
        idx = rng.integers(0, questions, size=(n, questions))
        boot_diff[start : start + n] = diff_q[idx].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):  # a resample of zero-cost questions only
            boot_ratio[start : start + n] = tok_a[idx].sum(axis=1) / tok_b[idx].sum(axis=1)
    boot_ratio = np.where(np.isfinite(boot_ratio) & (boot_ratio > 0), boot_ratio, ratio)
    tails = [(1 - level) / 2, 1 - (1 - level) / 2]
    dlo, dhi = np.quantile(boot_diff, tails)
    rlo, rhi = np.quantile(boot_ratio, tails)
    return PairedComparison(
        accuracy_diff=diff,
        accuracy_diff_ci=(float(dlo), float(dhi)),
        accuracy_p=_two_sided_p(boot_diff, diff, 0.0),
        token_ratio=ratio,
        token_ratio_ci=(float(rlo), float(rhi)),
        token_ratio_p=_two_sided_p(np.log(boot_ratio), math.log(ratio), 0.0),
        runs=int(runs),
        questions=int(questions),
        resamples=resamples,
        level=level,
    )
