"""The numbers of a report, as data: scaling curves, frontier statistics, paired comparisons.

Rendering (tables, figures, HTML) lives elsewhere; everything here is computed from the
cells with :mod:`autotts.evaluation.frontier`, so the report and frontier-aware
discovery agree on every metric.

A *curve* groups the cells of one store that differ only in their scaling knob: β for
β-controllers, the budget (``n``, ``max_samples``, ``chains``, ``width``) for the
baselines. A *family* is the curve's label without the knob (``CMC``, ``SC``,
``Parallel-Probe``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autotts.controllers.spec import parse_params
from autotts.errors import AutoTTSError
from autotts.evaluation.frontier import (
    PairedComparison,
    accuracy_at,
    common_range,
    frontier_area,
    paired_bootstrap,
    pareto_frontier,
    tokens_saved,
)
from autotts.evaluation.presets import budget_param, method_label
from autotts.evaluation.results import CellResult

#: Default reference of "tokens saved" and of the default paired comparisons.
DEFAULT_REFERENCE = "sc:n=64"
#: Budgets (as fractions of the reference's tokens) at which frontier accuracy is reported.
BUDGET_FRACTIONS = (0.25, 0.5, 1.0)
#: How scaling knobs are named for people.
KNOB_NAMES = {"beta": "β", "max_samples": "max samples"}


def knob_of(controller: str, params: Mapping[str, Any]) -> str | None:
    """The parameter a cell's curve varies: ``beta`` when it has one, else the baseline's budget."""
    if "beta" in params:
        return "beta"
    knob = budget_param(controller)
    return knob if knob is not None and knob in params else None


def family_of(controller: str, params: Mapping[str, Any]) -> str:
    """The curve label of a cell: its method label without the scaling knob."""
    knob = knob_of(controller, params)
    rest = {k: v for k, v in params.items() if k != knob}
    return method_label(controller, rest)


def spec_text(controller: str, params: Mapping[str, Any]) -> str:
    """``name:k=v,...``: how a cell is named on the command line."""
    return controller + (":" + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")


def _norm(text: str) -> str:
    return "".join(text.split()).lower()


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b))
    return str(a) == str(b)


def matches(cell: CellResult, wanted: str) -> bool:
    """Whether ``wanted`` names the cell: a spec (``sc:n=64``), a label (``sc(n=64)``) or a row label (``SC@64``)."""
    w = _norm(wanted)
    if w in (_norm(cell.label), _norm(method_label(cell.controller, dict(cell.params)))):
        return True
    name, rest = wanted.strip(), ""
    head, sep, tail = name.rpartition(":")
    if sep and "=" in tail:  # name:k=v,... (a file spec's path:Class part has no '=')
        name, rest = head, tail
    if name.strip().lower() != cell.controller.lower():
        return False
    try:
        params = parse_params(rest, spec=wanted) if rest else {}
    except AutoTTSError:
        return False
    return set(params) == set(cell.params) and all(_same_value(params[k], cell.params[k]) for k in params)


# ---------------------------------------------------------------- curves
@dataclass(frozen=True)
class CurvePoint:
    """One point of a scaling curve: a cell, an average of cells, or a point of a discovery run's JSON."""

    label: str
    knob_value: Any
    tokens: float
    accuracy: float
    accuracy_ci: tuple[float, float]

    @classmethod
    def of(cls, cell: CellResult, knob: str | None) -> CurvePoint:
        """The point of one evaluated cell."""
        value = None if knob is None else cell.params.get(knob)
        return cls(cell.label, value, cell.tokens, cell.accuracy, cell.accuracy_ci)


@dataclass(frozen=True)
class Curve:
    """The points of one family on one store, ordered by their knob (or by tokens)."""

    store: str
    family: str
    knob: str | None
    points: tuple[CurvePoint, ...]
    cells: tuple[CellResult, ...] = ()
    """The evaluated cells behind the points, when there are such (not for averages)."""

    @property
    def tokens(self) -> np.ndarray:
        """Mean tokens per question of each point."""
        return np.array([p.tokens for p in self.points], dtype=np.float64)

    @property
    def accuracy(self) -> np.ndarray:
        """Accuracy (percent) of each point."""
        return np.array([p.accuracy for p in self.points], dtype=np.float64)

    def knob_values(self) -> list[Any]:
        """The knob value of each point (``None`` for a single-setting controller)."""
        return [p.knob_value for p in self.points]


def _order_key(value: Any, tokens: float) -> tuple[float, float]:
    return (float(value) if isinstance(value, (int, float)) else tokens, tokens)


def make_curve(
    store: str, family: str, knob: str | None, points: Sequence[CurvePoint], cells: Sequence[CellResult] = ()
) -> Curve:
    """A curve with its points (and cells, if any) sorted by knob value, then tokens."""
    order = sorted(range(len(points)), key=lambda i: _order_key(points[i].knob_value, points[i].tokens))
    return Curve(store, family, knob, tuple(points[i] for i in order), tuple(cells[i] for i in order) if cells else ())


def curves_by_store(cells: Sequence[CellResult]) -> dict[str, list[Curve]]:
    """Every store's curves, in first-seen order of stores and families."""
    groups: dict[str, dict[str, list[CellResult]]] = {}
    knobs: dict[tuple[str, str], str | None] = {}
    for c in cells:
        fam = family_of(c.controller, c.params)
        groups.setdefault(c.store, {}).setdefault(fam, []).append(c)
        knobs.setdefault((c.store, fam), knob_of(c.controller, c.params))
    out: dict[str, list[Curve]] = {}
    for store, fams in groups.items():
        out[store] = [
            make_curve(
                store, fam, knobs[(store, fam)], [CurvePoint.of(c, knobs[(store, fam)]) for c in members], members
            )
            for fam, members in fams.items()
        ]
    return out


def average_curves(curves: Mapping[str, Sequence[Curve]], stores: Sequence[str]) -> list[Curve]:
    """Per family, the point-by-point average over ``stores`` of the knob values every store has.

    A family missing from a store is left out. The band of an averaged point is the mean
    of the stores' bounds (a conservative band for the average).
    """
    if not stores:
        return []
    by_store = {s: {c.family: c for c in curves.get(s, [])} for s in stores}
    out = []
    for first in curves.get(stores[0], []):
        members = [by_store[s].get(first.family) for s in stores]
        present = [m for m in members if m is not None]
        if len(present) != len(members):
            continue
        shared = [k for k in first.knob_values() if all(k in m.knob_values() for m in present[1:])]
        points = []
        for k in shared:
            pts = [m.points[m.knob_values().index(k)] for m in present]
            n = len(pts)
            points.append(
                CurvePoint(
                    pts[0].label,
                    k,
                    sum(p.tokens for p in pts) / n,
                    sum(p.accuracy for p in pts) / n,
                    (sum(p.accuracy_ci[0] for p in pts) / n, sum(p.accuracy_ci[1] for p in pts) / n),
                )
            )
        if points:
            out.append(make_curve("held-out average", first.family, first.knob, points))
    return out


# ---------------------------------------------------------------- frontier statistics
@dataclass(frozen=True)
class FamilyStats:
    """Frontier statistics of one family's curve on one store."""

    family: str
    points: int
    area: float
    """Mean frontier accuracy (percent) over ``area_range`` (``nan`` if not computable)."""
    area_diff: float
    """``area`` minus the reference family's area over the same range (``nan`` without a reference curve)."""
    area_range: tuple[float, float] | None
    """Token range of the area: shared with the reference curve, or the store's common range without one."""
    saved: float
    """Fraction of the reference point's tokens saved at its accuracy (``nan`` if never reached)."""
    at_budgets: tuple[float, ...]
    """Frontier accuracy at :data:`BUDGET_FRACTIONS` × the reference's tokens."""


@dataclass(frozen=True)
class StoreStats:
    """Frontier statistics of one store."""

    store: str
    frontier: tuple[str, ...]
    """Labels of the cells on the store's Pareto frontier (all cells together), cheapest first."""
    token_range: tuple[float, float] | None
    """Token range every multi-point curve covers (``None`` when they do not overlap)."""
    reference: str | None
    reference_point: tuple[float, float] | None
    """(tokens, accuracy) of the reference cell."""
    budgets: tuple[float, ...]
    families: tuple[FamilyStats, ...]


def store_stats(store: str, curves: Sequence[Curve], reference: str = DEFAULT_REFERENCE) -> StoreStats:
    """Pareto frontier, areas over the common range, tokens saved and budget accuracies for one store."""
    cells = [c for cv in curves for c in cv.cells]
    frontier: tuple[str, ...] = ()
    if cells:
        idx = pareto_frontier([c.tokens for c in cells], [c.accuracy for c in cells])
        frontier = tuple(cells[int(i)].label for i in idx)
    multi = [cv for cv in curves if len(cv.points) >= 2]
    rng = common_range([(cv.tokens, cv.accuracy) for cv in multi]) if multi else None
    ref_cell = next((c for c in cells if matches(c, reference)), None)
    ref_family = None if ref_cell is None else family_of(ref_cell.controller, ref_cell.params)
    budgets: tuple[float, ...] = ()
    if ref_cell is not None:
        budgets = tuple(f * ref_cell.tokens for f in BUDGET_FRACTIONS)

    ref_curve = next((cv for cv in curves if cv.family == ref_family and len(cv.points) >= 2), None)

    def pair_area(cv: Curve) -> tuple[float, float, tuple[float, float] | None]:
        # Against a reference curve: both areas over the range the two curves share, so
        # the difference reads "points of accuracy on average over the shared budgets".
        if len(cv.points) < 2:
            return math.nan, math.nan, None
        if ref_curve is None:
            if rng is None or rng[1] <= rng[0]:
                return math.nan, math.nan, None
            return frontier_area(cv.tokens, cv.accuracy, *rng), math.nan, rng
        shared = common_range([(cv.tokens, cv.accuracy), (ref_curve.tokens, ref_curve.accuracy)])
        if shared is None or shared[1] <= shared[0]:
            return math.nan, math.nan, None
        a = frontier_area(cv.tokens, cv.accuracy, *shared)
        return a, a - frontier_area(ref_curve.tokens, ref_curve.accuracy, *shared), shared

    fams = []
    for cv in curves:
        a, diff, shared = pair_area(cv)
        saved = math.nan
        if ref_cell is not None:
            saved = tokens_saved(ref_cell.tokens, ref_cell.accuracy, cv.tokens, cv.accuracy)
            saved = 0.0 if abs(saved) < 1e-12 else saved
        at = tuple(float(x) for x in accuracy_at(cv.tokens, cv.accuracy, budgets)) if budgets else ()
        fams.append(FamilyStats(cv.family, len(cv.points), a, diff, shared, saved, at))
    return StoreStats(
        store=store,
        frontier=frontier,
        token_range=rng,
        reference=None if ref_cell is None else method_label(ref_cell.controller, dict(ref_cell.params)),
        reference_point=None if ref_cell is None else (ref_cell.tokens, ref_cell.accuracy),
        budgets=budgets,
        families=tuple(fams),
    )


# ---------------------------------------------------------------- paired comparisons
@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two cells (or of their pooled held-out stores)."""

    a: str
    b: str
    scope: str
    """A store name, or ``held-out (k stores)`` for the pooled comparison."""
    result: PairedComparison | None
    reason: str = ""
    """Why there is no result (missing arrays, different runs, ...)."""


def _paired_arrays(
    pairs: Sequence[tuple[CellResult, CellResult]],
) -> tuple[tuple[np.ndarray, ...] | None, str]:
    arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for a, b in pairs:
        if a.correct.shape != b.correct.shape:
            return None, f"different runs × questions on {a.store}: {a.correct.shape} vs {b.correct.shape}"
        fa, fb = _fingerprint(a), _fingerprint(b)
        if fa and fb and fa != fb:
            return None, f"{a.store}: the two cells were evaluated on different store contents"
        arrays.append((a.correct, a.cost, b.correct, b.cost))
    if len({x[0].shape[0] for x in arrays}) > 1:
        return None, "the stores were evaluated with different numbers of runs"
    return tuple(np.concatenate([x[i] for x in arrays], axis=1) for i in range(4)), ""


def _fingerprint(cell: CellResult) -> str | None:
    return cell.store_fingerprint or None


def compare(
    cells: Sequence[CellResult],
    a: str,
    b: str,
    *,
    heldout: Sequence[str] = (),
    resamples: int = 10_000,
) -> list[Comparison]:
    """Compare the cells named ``a`` and ``b`` on every store that has both, and pooled over held-out stores."""
    stores: dict[str, dict[str, CellResult]] = {}
    for c in cells:
        if matches(c, a):
            stores.setdefault(c.store, {})["a"] = c
        if matches(c, b):
            stores.setdefault(c.store, {})["b"] = c
    out = []
    both = {s: (d["a"], d["b"]) for s, d in stores.items() if "a" in d and "b" in d}
    if not both:
        return [Comparison(a, b, "-", None, f"no store has both {a!r} and {b!r}")]
    first_a, first_b = next(iter(both.values()))
    la = method_label(first_a.controller, dict(first_a.params))
    lb = method_label(first_b.controller, dict(first_b.params))
    for store, pair in both.items():
        arrays, why = _paired_arrays([pair])
        result = None if arrays is None else paired_bootstrap(*arrays, resamples=resamples)
        out.append(Comparison(la, lb, store, result, why))
    pooled = [both[s] for s in heldout if s in both]
    if len(pooled) > 1:
        arrays, why = _paired_arrays(pooled)
        result = None if arrays is None else paired_bootstrap(*arrays, resamples=resamples)
        out.append(Comparison(la, lb, f"held-out ({len(pooled)} stores pooled)", result, why))
    return out


def default_pairs(cells: Sequence[CellResult], reference: str) -> list[tuple[str, str]]:
    """Default comparisons: the top point of every other family against the reference (e.g. SC@64)."""
    if not any(matches(c, reference) for c in cells):
        return []
    ref_families = {family_of(c.controller, c.params) for c in cells if matches(c, reference)}
    tops: dict[str, CellResult] = {}
    for c in cells:
        if family_of(c.controller, c.params) in ref_families:
            continue
        fam = family_of(c.controller, c.params)
        cur = tops.get(fam)
        knob = knob_of(c.controller, c.params)
        if cur is None:
            tops[fam] = c
            continue
        v, w = c.params.get(knob) if knob else None, cur.params.get(knob) if knob else None
        if isinstance(v, (int, float)) and isinstance(w, (int, float)) and v > w:
            tops[fam] = c
    return [(spec_text(c.controller, c.params), reference) for c in tops.values()]


@dataclass(frozen=True)
class Analysis:
    """Everything numeric a report shows, computed once."""

    curves: dict[str, list[Curve]]
    heldout: tuple[str, ...]
    search: tuple[str, ...]
    average: list[Curve]
    stats: list[StoreStats]
    comparisons: list[Comparison]
    reference: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``nan`` becomes ``None``)."""

        def num(x: float) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else x

        return {
            "reference": self.reference,
            "search_stores": list(self.search),
            "heldout_stores": list(self.heldout),
            "frontier": [
                {
                    "store": s.store,
                    "pareto": list(s.frontier),
                    "token_range": None if s.token_range is None else list(s.token_range),
                    "reference": s.reference,
                    "reference_point": None if s.reference_point is None else list(s.reference_point),
                    "budgets": list(s.budgets),
                    "families": [
                        {
                            "family": f.family,
                            "points": f.points,
                            "area": num(f.area),
                            "area_diff": num(f.area_diff),
                            "area_range": None if f.area_range is None else list(f.area_range),
                            "tokens_saved": num(f.saved),
                            "accuracy_at_budgets": [num(x) for x in f.at_budgets],
                        }
                        for f in s.families
                    ],
                }
                for s in self.stats
            ],
            "comparisons": [
                {
                    "a": c.a,
                    "b": c.b,
                    "scope": c.scope,
                    "reason": c.reason,
                    "result": None
                    if c.result is None
                    else json.loads(
                        json.dumps(
                            {
                                "accuracy_diff": c.result.accuracy_diff,
                                "accuracy_diff_ci95": list(c.result.accuracy_diff_ci),
                                "accuracy_p": c.result.accuracy_p,
                                "token_ratio": c.result.token_ratio,
                                "token_ratio_ci95": list(c.result.token_ratio_ci),
                                "token_ratio_p": c.result.token_ratio_p,
                                "accuracy_verdict": c.result.accuracy_verdict(),
                                "cost_verdict": c.result.cost_verdict(),
                                "runs": c.result.runs,
                                "questions": c.result.questions,
                            }
                        )
                    ),
                }
                for c in self.comparisons
            ],
        }


def analyse(
    cells: Sequence[CellResult],
    *,
    search: Sequence[str],
    reference: str = DEFAULT_REFERENCE,
    pairs: Sequence[tuple[str, str]] | None = None,
    resamples: int = 10_000,
) -> Analysis:
    """Curves, frontier statistics and paired comparisons of the cells.

    ``search`` names the search stores (left out of held-out averages); ``pairs`` are the
    comparisons to make (default: :func:`default_pairs`).
    """
    curves = curves_by_store(cells)
    stores = list(curves)
    heldout = tuple(s for s in stores if s not in search)
    notes = []
    stats = [store_stats(s, cv, reference) for s, cv in curves.items()]
    if cells and not any(matches(c, reference) for c in cells):
        notes.append(f"the reference {reference!r} is not among the cells: no tokens-saved figures")
    todo = default_pairs(cells, reference) if pairs is None else list(pairs)
    comparisons = [cmp for a, b in todo for cmp in compare(cells, a, b, heldout=heldout, resamples=resamples)]
    return Analysis(
        curves=curves,
        heldout=heldout,
        search=tuple(s for s in stores if s in search),
        average=average_curves(curves, list(heldout)) if len(heldout) > 1 else [],
        stats=stats,
        comparisons=comparisons,
        reference=reference,
        notes=notes,
    )
