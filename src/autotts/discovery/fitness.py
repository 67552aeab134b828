"""Frontier metrics of candidates: how a whole β-curve compares with the seeds' best frontier.

For a user the product of discovery is a *curve* (β is the knob they turn), so a
candidate is judged by the accuracy it offers across a fixed token range, not by its
single most accurate point. Per search store:

* the *reference* is the seeds' best frontier (the Pareto frontier of every seed point on
  that store) and the fixed token range is the span of that frontier (or a configured
  ``[lo, hi]`` in tokens per question);
* ``area`` is the mean accuracy (points) of the candidate's Pareto frontier over the
  range on a log-token axis, minus the reference's; below its cheapest point a curve
  offers nothing (accuracy 0), above its dearest it keeps its best accuracy;
* ``at_budgets`` are accuracy differences to the reference at a few fixed budgets
  (log-spaced fractions of the range, interpolated on log tokens);
* ``to_reach`` is the candidate's token cost to reach the reference's best accuracy,
  relative to the reference's own (None when it never gets there).

Per-store figures are then combined — the mean, the worst store, or the mean minus a
multiple of the spread — so a candidate does not win by overfitting one model. The curve
arithmetic itself is :mod:`autotts.evaluation.frontier`, shared with ``autotts report``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from autotts.discovery import _curves as fr
from autotts.discovery.records import CandidateRecord, CurvePoint

#: Fixed budgets, as fractions of the token range on a log axis.
BUDGET_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
ROBUSTNESS = ("mean", "worst", "spread")


def _pairs(points: Iterable[CurvePoint]) -> list[tuple[float, float]]:
    return [(p.tokens, p.accuracy) for p in points if p.tokens > 0 and math.isfinite(p.tokens)]


@dataclass(frozen=True)
class StoreReference:
    """The seeds' best frontier on one store and the token range the metrics integrate over."""

    frontier: tuple[tuple[float, float], ...]
    lo: float
    hi: float

    @property
    def best_accuracy(self) -> float:
        """The reference's highest accuracy."""
        return max(a for _, a in self.frontier)

    def budget(self, fraction: float) -> float:
        """The token budget ``fraction`` of the way from ``lo`` to ``hi`` on a log axis."""
        return float(self.lo * (self.hi / self.lo) ** fraction)


@dataclass(frozen=True)
class Reference:
    """Per search store: the reference frontier and range."""

    stores: Mapping[str, StoreReference]

    def with_points(self, curves: Mapping[str, Sequence[CurvePoint]]) -> Reference:
        """The reference extended by more points (same ranges): "the best frontier so far"."""
        out = {}
        for name, ref in self.stores.items():
            pts = list(ref.frontier) + _pairs(curves.get(name, ()))
            out[name] = StoreReference(tuple(fr.pareto_frontier(pts)), ref.lo, ref.hi)
        return Reference(out)


def build_reference(
    curves: Iterable[Mapping[str, Sequence[CurvePoint]]], *, token_range: tuple[float, float] | None = None
) -> Reference:
    """The best frontier of ``curves`` (each: store → points) per store, with its range."""
    pooled: dict[str, list[tuple[float, float]]] = {}
    for by_store in curves:
        for name, pts in by_store.items():
            pooled.setdefault(name, []).extend(_pairs(pts))
    stores = {}
    for name, pairs in sorted(pooled.items()):
        front = fr.pareto_frontier(pairs)
        if not front:
            continue
        lo, hi = token_range if token_range is not None else (front[0][0], front[-1][0])
        if hi <= lo:
            hi = lo * 1.0001
        stores[name] = StoreReference(tuple(front), float(lo), float(hi))
    return Reference(stores)


@dataclass(frozen=True)
class StoreMetrics:
    """One store's figures of one curve against the reference."""

    area: float
    """Mean accuracy over the log-token range minus the reference's (points)."""
    at_budgets: tuple[float, ...]
    """Accuracy minus the reference's at each of :data:`BUDGET_FRACTIONS` (points)."""
    accuracy_at_top: float
    """The curve's own accuracy at the largest budget."""
    to_reach: float | None
    """Tokens to reach the reference's best accuracy, relative to the reference's tokens."""


@dataclass(frozen=True)
class FrontierMetrics:
    """A curve's frontier metrics per store and combined."""

    stores: Mapping[str, StoreMetrics]

    def areas(self) -> list[float]:
        """Per-store area differences."""
        return [m.area for m in self.stores.values()]

    def score(self, robustness: str = "mean", spread_weight: float = 1.0) -> float:
        """The combined area: ``mean``, ``worst`` store, or ``spread`` (mean − weight × std)."""
        areas = self.areas()
        if not areas:
            return float("-inf")
        if robustness == "worst":
            return min(areas)
        mean = statistics.fmean(areas)
        if robustness == "spread" and len(areas) > 1:
            return mean - spread_weight * statistics.pstdev(areas)
        return mean

    def at_budgets(self) -> tuple[float, ...]:
        """Mean over stores of the differences at each fixed budget."""
        rows = [m.at_budgets for m in self.stores.values()]
        return tuple(statistics.fmean(col) for col in zip(*rows, strict=True)) if rows else ()

    def accuracy_at_top(self) -> float:
        """Mean over stores of the curve's accuracy at the largest budget."""
        vals = [m.accuracy_at_top for m in self.stores.values()]
        return statistics.fmean(vals) if vals else float("-inf")

    def to_reach(self) -> float | None:
        """Mean relative cost to reach the reference's best accuracy (None if some store never does)."""
        vals = [m.to_reach for m in self.stores.values()]
        if not vals or any(v is None for v in vals):
            return None
        return statistics.fmean(v for v in vals if v is not None)


def _acc(front: Sequence[tuple[float, float]], budget: float) -> float:
    """Accuracy a frontier offers at ``budget``: 0 below its cheapest point, flat above its dearest."""
    value = fr.accuracy_at(front, budget)
    return 0.0 if value is None or not math.isfinite(value) else float(value)


def accuracy_at_fraction(
    curves: Mapping[str, Sequence[CurvePoint]], reference: Reference, fraction: float
) -> float | None:
    """Mean over stores of a curve's accuracy at the budget ``fraction`` across each store's range."""
    vals = []
    for name, ref in reference.stores.items():
        pts = curves.get(name)
        if pts:
            vals.append(_acc(fr.pareto_frontier(_pairs(pts)), ref.budget(fraction)))
    return statistics.fmean(vals) if vals else None


def store_metrics(points: Sequence[CurvePoint], ref: StoreReference) -> StoreMetrics | None:
    """Figures of one store's curve (None without a usable point)."""
    front = fr.pareto_frontier(_pairs(points))
    if not front:
        return None
    area = fr.area_log(front, ref.lo, ref.hi) - fr.area_log(ref.frontier, ref.lo, ref.hi)
    diffs = tuple(_acc(front, ref.budget(f)) - _acc(ref.frontier, ref.budget(f)) for f in BUDGET_FRACTIONS)
    target = ref.best_accuracy
    mine = fr.tokens_to_reach(front, target)
    theirs = fr.tokens_to_reach(ref.frontier, target)
    rel = None if mine is None or not theirs else mine / theirs
    return StoreMetrics(area, diffs, _acc(front, ref.hi), rel)


def metrics(curves: Mapping[str, Sequence[CurvePoint]], reference: Reference) -> FrontierMetrics:
    """Frontier metrics of a candidate's per-store curves (stores missing from either side are skipped)."""
    out = {}
    for name, ref in reference.stores.items():
        pts = curves.get(name)
        if pts:
            m = store_metrics(pts, ref)
            if m is not None:
                out[name] = m
    return FrontierMetrics(out)


def _tokens(t: float) -> str:
    return f"{t / 1000:.0f}k" if t >= 10_000 else f"{t:,.0f}"


def feedback(
    curves: Mapping[str, Sequence[CurvePoint]], best: Reference, *, label: str = "best frontier so far"
) -> str:
    """Compact lines saying at which budgets a curve wins or loses against ``best``, by how much.

    One line for the mean over stores, then one per store: ``area −0.8 | 60k −1.2 · 140k +0.4 …``.
    """
    m = metrics(curves, best)
    if not m.stores:
        return ""

    def budgets_text(name: str | None) -> str:
        if name is None:
            diffs = m.at_budgets()
            refs = [statistics.fmean(best.stores[s].budget(f) for s in m.stores) for f in BUDGET_FRACTIONS]
        else:
            diffs = m.stores[name].at_budgets
            refs = [best.stores[name].budget(f) for f in BUDGET_FRACTIONS]
        return " · ".join(f"{_tokens(t)} {d:+.1f}" for t, d in zip(refs, diffs, strict=True))

    wins = sum(d > 0.05 for d in m.at_budgets())
    losses = sum(d < -0.05 for d in m.at_budgets())
    lines = [
        f"Frontier vs the {label} (accuracy points; + = above): area {m.score():+.2f}, "
        f"wins at {wins} of {len(BUDGET_FRACTIONS)} budgets, loses at {losses}",
        f"  mean over stores: {budgets_text(None)}",
    ]
    for name, sm in m.stores.items():
        lines.append(f"  {name}: area {sm.area:+.2f} | {budgets_text(name)}")
    return "\n".join(lines)


def best_before(reference: Reference, records: Iterable[CandidateRecord], round_: int) -> Reference:
    """The best frontier when round ``round_`` was proposed: the seeds' plus every ``ok`` candidate before it."""
    best = reference
    for rec in records:
        if rec.ok and rec.round < round_ and rec.curves:
            best = best.with_points(rec.curves)
    return best
