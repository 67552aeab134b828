"""Curve arithmetic used by :mod:`autotts.discovery.fitness`.

Interim: ``autotts.evaluation.frontier`` (owned by the report work) is the one
implementation of these metrics; until it is merged this module provides the four
functions discovery needs with the same semantics, and it becomes a thin re-export then.
Points are ``(tokens, accuracy)`` pairs; interpolation is linear on log tokens.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

Pair = tuple[float, float]


def pareto_frontier(points: Iterable[Pair]) -> list[Pair]:
    """Points no other point beats (cheaper-or-equal and more accurate), by rising tokens."""
    best: list[Pair] = []
    for t, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if not best or a > best[-1][1]:
            best.append((float(t), float(a)))
    return best


def accuracy_at(front: Sequence[Pair], budget: float) -> float | None:
    """Accuracy of the frontier at ``budget`` (None below its cheapest point; flat above its dearest)."""
    if not front or budget < front[0][0]:
        return None
    for (t0, a0), (t1, a1) in itertools.pairwise(front):
        if budget <= t1:
            w = (math.log(budget) - math.log(t0)) / (math.log(t1) - math.log(t0))
            return a0 + w * (a1 - a0)
    return front[-1][1]


def area_log(front: Sequence[Pair], lo: float, hi: float, *, samples: int = 256) -> float:
    """Mean accuracy over ``[lo, hi]`` on a log-token axis (0 where the frontier offers nothing)."""
    if not front or hi <= lo:
        return 0.0
    total = 0.0
    for i in range(samples):
        t = lo * (hi / lo) ** ((i + 0.5) / samples)
        a = accuracy_at(front, t)
        total += 0.0 if a is None else a
    return total / samples


def tokens_to_reach(front: Sequence[Pair], target: float) -> float | None:
    """The smallest budget at which the frontier reaches ``target`` accuracy (None if never)."""
    prev: Pair | None = None
    for t, a in front:
        if a >= target:
            if prev is None or a == prev[1]:
                return t
            w = (target - prev[1]) / (a - prev[1])
            return math.exp(math.log(prev[0]) + w * (math.log(t) - math.log(prev[0])))
        prev = (t, a)
    return None
