"""Curve arithmetic for :mod:`autotts.discovery.fitness`, on top of :mod:`autotts.evaluation.frontier`.

``autotts.evaluation.frontier`` is the one implementation of the frontier metrics (shared
with ``autotts report``); this adapter gives discovery its two conventions on top:
points are ``(tokens, accuracy)`` pairs, and where a frontier is undefined (below its
cheapest point) a *search* metric counts accuracy 0 — a candidate that cannot run that
cheaply offers nothing there, which is what pushes the search to cover the cheap end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from autotts.evaluation import frontier as _fr

Pair = tuple[float, float]


def pareto_frontier(points: Iterable[Pair]) -> list[Pair]:
    """Points no other point beats (cheaper-or-equal and more accurate), by rising tokens."""
    pts = list(points)
    if not pts:
        return []
    t, a = _fr.frontier_curve([p[0] for p in pts], [p[1] for p in pts])
    return [(float(x), float(y)) for x, y in zip(t.tolist(), a.tolist(), strict=True)]


def accuracy_at(front: Sequence[Pair], budget: float) -> float | None:
    """Frontier accuracy at ``budget`` (None below its cheapest point; flat above its dearest)."""
    if not front:
        return None
    value = float(_fr.accuracy_at([p[0] for p in front], [p[1] for p in front], [budget])[0])
    return None if math.isnan(value) else value


def area_log(front: Sequence[Pair], lo: float, hi: float) -> float:
    """Mean frontier accuracy over ``[lo, hi]`` on a log-token axis, counting 0 below the cheapest point."""
    if not front or hi <= lo:
        return 0.0
    start = max(lo, front[0][0])
    if start >= hi:
        return 0.0
    covered = _fr.frontier_area([p[0] for p in front], [p[1] for p in front], start, hi)
    return covered * math.log(hi / start) / math.log(hi / lo)


def tokens_to_reach(front: Sequence[Pair], target: float) -> float | None:
    """The smallest budget at which the frontier reaches ``target`` accuracy (None if never)."""
    if not front:
        return None
    value = _fr.tokens_to_reach([p[0] for p in front], [p[1] for p in front], target)
    return None if math.isnan(value) else value
