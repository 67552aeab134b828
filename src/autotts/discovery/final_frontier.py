"""The discovered controller's whole β-curve next to every baseline's, per store role.

The final evaluation runs the selected program over its whole β grid; this module turns
those points into what a user choosing a controller needs: per role (search, held-out),
each controller's curve averaged over the role's stores (accuracy and tokens per β, each
store weighing the same), and for every baseline with a β-curve the discovered curve's
accuracy difference across the baseline's token span — the smallest and largest
difference, where they occur, and the difference at a few budgets — with both curves
linearly interpolated on log tokens. Below a curve's cheapest point there is nothing to
compare (reported as not covered); above its dearest point it keeps its last accuracy
(a larger budget can still run β = 1).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from autotts.discovery import _curves

#: Budgets where differences are reported, as fractions of the compared span (log axis).
REPORT_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def mean_curve(per_store: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Points averaged over stores by β (β values missing from any store are dropped)."""
    if not per_store:
        return []
    betas = [p.get("beta") for p in per_store[0]]
    out = []
    for beta in betas:
        pts = [next((p for p in pts if p.get("beta") == beta), None) for pts in per_store]
        if any(p is None for p in pts):
            continue
        got = [p for p in pts if p is not None]
        out.append(
            {
                "beta": beta,
                "accuracy": statistics.fmean(float(p["accuracy"]) for p in got),
                "tokens": statistics.fmean(float(p["tokens"]) for p in got),
            }
        )
    return out


def _pairs(curve: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    return sorted((float(p["tokens"]), float(p["accuracy"])) for p in curve if float(p["tokens"]) > 0)


def _at(pairs: Sequence[tuple[float, float]], budget: float) -> float | None:
    """The curve (not its frontier) at ``budget``: None below its cheapest point, its last value above."""
    return _curves.accuracy_at(pairs, budget)


def compare(
    mine: Sequence[Mapping[str, Any]],
    theirs: Sequence[Mapping[str, Any]],
    *,
    token_range: tuple[float, float] | None = None,
    samples: int = 200,
) -> dict[str, Any]:
    """Accuracy of ``mine`` minus ``theirs`` across ``token_range`` (default: ``theirs``' span)."""
    a, b = _pairs(mine), _pairs(theirs)
    if not a or not b:
        return {"compared": False}
    lo, hi = token_range if token_range is not None else (b[0][0], b[-1][0])
    grid = [lo * (hi / lo) ** (i / (samples - 1)) for i in range(samples)]
    diffs: list[tuple[float, float]] = []
    uncovered = 0
    for t in grid:
        x, y = _at(a, t), _at(b, t)
        if x is None or y is None:
            uncovered += 1
        else:
            diffs.append((t, x - y))
    if not diffs:
        return {"compared": False, "lo": lo, "hi": hi}
    worst = min(diffs, key=lambda d: d[1])
    best = max(diffs, key=lambda d: d[1])
    at = []
    for f in REPORT_FRACTIONS:
        t = lo * (hi / lo) ** f
        x, y = _at(a, t), _at(b, t)
        at.append({"tokens": t, "difference": None if x is None or y is None else x - y})
    return {
        "compared": True,
        "lo": lo,
        "hi": hi,
        "covered": 1.0 - uncovered / samples,
        "min_difference": worst[1],
        "min_at_tokens": worst[0],
        "max_difference": best[1],
        "max_at_tokens": best[0],
        "mean_difference": statistics.fmean(d for _, d in diffs),
        "at_budgets": at,
    }


def final_frontier(final: Mapping[str, Any], *, token_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """Per role: mean curves of the discovered controller and the baselines, and their comparison."""
    roles: dict[str, list[str]] = {}
    for s in final.get("stores", []):
        roles.setdefault(str(s["role"]), []).append(str(s["name"]))
    disc = final.get("discovered") or {}
    out: dict[str, Any] = {}
    for role, names in roles.items():
        curves: dict[str, list[dict[str, Any]]] = {}
        dcurves = disc.get("curves") or {}
        if disc.get("status") == "ok" and all(dcurves.get(n) for n in names):
            curves["discovered"] = mean_curve([dcurves[n] for n in names])
        for spec, ev in (final.get("baselines") or {}).items():
            bc = ev.get("curves") or {}
            if all(bc.get(n) for n in names):
                curves[spec] = mean_curve([bc[n] for n in names])
        comparisons = {}
        if "discovered" in curves:
            for spec, curve in curves.items():
                if spec != "discovered" and len(curve) > 1:
                    comparisons[spec] = compare(curves["discovered"], curve, token_range=token_range)
        out[role] = {"stores": names, "curves": curves, "vs_baselines": comparisons}
    return out


def _k(t: float) -> str:
    return f"{t / 1000:,.0f}k" if t >= 10_000 else f"{t:,.0f}"


def markdown(frontier: Mapping[str, Any]) -> list[str]:
    """Markdown lines: per role, the discovered curve against every β-baseline's."""
    lines: list[str] = []
    for role, block in frontier.items():
        comps = block.get("vs_baselines") or {}
        if not comps:
            continue
        lines += [
            "",
            f"### Whole β-curve on the {role} stores (mean over {len(block['stores'])})",
            "",
            "| baseline | span compared | covered | min diff (at) | max diff (at) | mean diff |",
            "|---|---|---:|---|---|---:|",
        ]
        for spec, c in comps.items():
            if not c.get("compared"):
                lines.append(f"| {spec} | – | 0 % | – | – | – |")
                continue
            lines.append(
                f"| {spec} | {_k(c['lo'])}–{_k(c['hi'])} | {100 * c['covered']:.0f} % | "
                f"{c['min_difference']:+.2f} ({_k(c['min_at_tokens'])}) | "
                f"{c['max_difference']:+.2f} ({_k(c['max_at_tokens'])}) | {c['mean_difference']:+.2f} |"
            )
        disc = block["curves"].get("discovered") or []
        if disc:
            pts = " · ".join(
                f"β={p['beta']:g} {p['accuracy']:.1f}% {_k(p['tokens'])}" for p in disc if p.get("beta") is not None
            )
            lines += ["", f"Discovered curve: {pts}"]
    return lines
