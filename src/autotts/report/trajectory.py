"""A discovery run as a report: the candidate trajectory (the paper's Figure 4), rounds, diffs.

Everything is read from the run directory (:class:`~autotts.discovery.history.RunDir`):
candidates with their statuses, findings, search curves and usage; the selection
(``summary.json``); the final evaluation on held-out stores (``final.json``); the best
seed's search accuracy (``seeds.json``). Each candidate's code is diffed against its
*best predecessor*: the best successful candidate of an earlier round (highest mean
search accuracy, fewer tokens on ties), which is what an explorer usually built on.
"""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from autotts.controllers.spec import label, parse_params
from autotts.discovery.history import RunDir
from autotts.discovery.records import CandidateRecord
from autotts.errors import AutoTTSError, ResultsError
from autotts.report.analysis import Curve, CurvePoint, family_of, make_curve


@dataclass(frozen=True)
class CandidateRow:
    """One candidate as the report shows it."""

    id: str
    round: int
    status: str
    accuracy: float | None
    """Mean search accuracy at its best β (``None`` if it produced no curve)."""
    tokens: float | None
    beta: float | None
    findings: tuple[str, ...]
    message: str
    money: float
    proposer_seconds: float
    eval_seconds: float
    predecessor: str | None
    diff: str
    """Unified diff against the predecessor (the whole program for the first one)."""


@dataclass(frozen=True)
class RoundRow:
    """Totals of one round."""

    round: int
    candidates: int
    statuses: dict[str, int]
    findings: int
    best: float | None
    best_so_far: float | None
    money: float
    proposer_seconds: float
    eval_seconds: float


@dataclass(frozen=True)
class Trajectory:
    """A discovery run summarised for the report."""

    name: str
    path: Path
    candidates: tuple[CandidateRow, ...]
    rounds: tuple[RoundRow, ...]
    selected: str | None
    selected_beta: float | None
    selected_search: float | None
    selected_heldout: float | None
    """Mean held-out accuracy of the selected program at the selected β (final evaluation)."""
    seed_best: float | None
    """Best mean search accuracy of any seed controller at any β."""
    search_stores: tuple[str, ...]
    heldout_stores: tuple[str, ...]
    stop_reason: str | None
    phase_seconds: dict[str, float]
    final_curves: dict[str, list[Curve]]
    """The final evaluation's curves per store: the discovered program and every baseline."""
    final_runs: int | None


def _best_key(rec: CandidateRecord) -> tuple[float, float]:
    p = rec.best_point
    return (-math.inf, 0.0) if p is None else (p.accuracy, -p.tokens)


def _diff(old: str | None, new: str | None, old_name: str, new_name: str) -> str:
    if new is None:
        return ""
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=old_name if old is not None else "/dev/null",
        tofile=new_name,
    )
    return "".join(lines)


def _seed_best(seeds: Mapping[str, Any] | None, search: Sequence[str]) -> float | None:
    if not seeds or not search:
        return None
    best = None
    for ev in (seeds.get("evaluated") or {}).values():
        curves = (ev or {}).get("curves") or {}
        if not all(s in curves for s in search):
            continue
        n = min(len(curves[s]) for s in search)
        for i in range(n):
            acc = sum(float(curves[s][i]["accuracy"]) for s in search) / len(search)
            best = acc if best is None else max(best, acc)
    return best


def _heldout_of_selected(final: Mapping[str, Any] | None, beta: float | None) -> float | None:
    if not final:
        return None
    heldout = [s["name"] for s in final.get("stores", []) if s.get("role") == "heldout"]
    curves = ((final.get("discovered") or {}).get("curves")) or {}
    vals = []
    for store in heldout:
        pts = [p for p in curves.get(store, []) if p.get("beta") == beta]
        if not pts:
            return None
        vals.append(float(pts[0]["accuracy"]))
    return sum(vals) / len(vals) if vals else None


def _final_curves(final: Mapping[str, Any] | None) -> dict[str, list[Curve]]:
    """Curves of the final evaluation (``final.json``), per store in its order: discovered first, then baselines."""
    if not final:
        return {}
    groups: list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []
    disc = final.get("discovered") or {}
    if disc.get("status") == "ok":
        groups.append(("discovered", {}, disc.get("curves") or {}))
    for spec, ev in (final.get("baselines") or {}).items():
        controller, _, rest = str(spec).partition(":")
        try:
            params = parse_params(rest, spec=str(spec)) if rest else {}
        except AutoTTSError:
            params = {}
        groups.append((controller, params, (ev or {}).get("curves") or {}))
    out: dict[str, list[Curve]] = {str(s["name"]): [] for s in final.get("stores", [])}
    for controller, params, curves in groups:
        for store, points in curves.items():
            pts = []
            for p in points:
                full = {**params, **({} if p.get("beta") is None else {"beta": p["beta"]})}
                ci = p.get("accuracy_ci95") or [p["accuracy"], p["accuracy"]]
                pts.append(
                    CurvePoint(
                        label(controller, full),
                        p.get("beta"),
                        float(p["tokens"]),
                        float(p["accuracy"]),
                        (float(ci[0]), float(ci[1])),
                    )
                )
            if pts:
                knob = "beta" if any(p.get("beta") is not None for p in points) else None
                out.setdefault(str(store), []).append(make_curve(str(store), family_of(controller, params), knob, pts))
    return out


def load_trajectory(path: Path, name: str | None = None) -> Trajectory:
    """Read a run directory into a :class:`Trajectory`."""
    run = RunDir.open(path)
    manifest = run.manifest()
    records = run.candidates()
    summary = (
        json.loads((path / "summary.json").read_text(encoding="utf-8")) if (path / "summary.json").is_file() else {}
    )
    final = run.final()
    sel = summary.get("selection") or None
    search = tuple(
        summary.get("search_stores")
        or [s["name"] for s in (final or {}).get("stores", []) if s.get("role") == "search"]
    )
    heldout = tuple(
        summary.get("heldout_stores")
        or [s["name"] for s in (final or {}).get("stores", []) if s.get("role") == "heldout"]
    )
    rows: list[CandidateRow] = []
    for rec in records:
        earlier = [r for r in records if r.round < rec.round and r.ok and r.best_point is not None]
        pred = max(earlier, key=_best_key) if earlier else None
        p = rec.best_point
        code = run.code(rec)
        old = run.code(pred) if pred is not None else None
        rows.append(
            CandidateRow(
                id=rec.id,
                round=rec.round,
                status=rec.status.value,
                accuracy=None if p is None else p.accuracy,
                tokens=None if p is None else p.tokens,
                beta=None if p is None else p.beta,
                findings=tuple(f.code for f in rec.findings),
                message=(rec.message.strip().splitlines() or [""])[0][:300],
                money=rec.usage.money,
                proposer_seconds=rec.usage.seconds,
                eval_seconds=rec.eval_seconds,
                predecessor=None if pred is None else pred.id,
                diff=_diff(old, code, f"{pred.id}/controller.py" if pred else "", f"{rec.id}/controller.py"),
            )
        )
    rounds: list[RoundRow] = []
    best_so_far: float | None = None
    for r in sorted({c.round for c in rows}):
        these = [c for c in rows if c.round == r]
        accs = [c.accuracy for c in these if c.status == "ok" and c.accuracy is not None]
        best = max(accs) if accs else None
        if best is not None:
            best_so_far = best if best_so_far is None else max(best_so_far, best)
        rounds.append(
            RoundRow(
                round=r,
                candidates=len(these),
                statuses=dict(sorted(Counter(c.status for c in these).items())),
                findings=sum(len(c.findings) for c in these),
                best=best,
                best_so_far=best_so_far,
                money=sum(c.money for c in these),
                proposer_seconds=sum(c.proposer_seconds for c in these),
                eval_seconds=sum(c.eval_seconds for c in these),
            )
        )
    beta = None if sel is None else sel.get("beta")
    return Trajectory(
        name=name or str(manifest.get("name") or path.name),
        path=path,
        candidates=tuple(rows),
        rounds=tuple(rounds),
        selected=None if sel is None else str(sel.get("candidate")),
        selected_beta=beta,
        selected_search=None if sel is None else float(sel.get("search_accuracy")),
        selected_heldout=None if sel is None else _heldout_of_selected(final, beta),
        seed_best=_seed_best(run.seeds(), search),
        search_stores=search,
        heldout_stores=heldout,
        stop_reason=manifest.get("stop_reason"),
        phase_seconds={str(k): float(v) for k, v in (manifest.get("phase_seconds") or {}).items()},
        final_curves=_final_curves(final),
        final_runs=None if not final else final.get("runs"),
    )


def trajectory_figure(t: Trajectory) -> Figure:
    """Search accuracy of every candidate round by round, the running best, and the selected program held out."""
    if not t.candidates:
        raise ResultsError(f"discovery run {t.name} has no finished candidate to plot", path=str(t.path))
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    ok = [c for c in t.candidates if c.status == "ok" and c.accuracy is not None]
    failed = [c for c in t.candidates if c not in ok]
    accs = [c.accuracy for c in ok if c.accuracy is not None]
    values = accs + [v for v in (t.seed_best, t.selected_heldout) if v is not None]
    lo = min(values) if values else 0.0
    hi = max(values) if values else 100.0
    pad = max(1.0, 0.08 * (hi - lo))
    floor = lo - 2 * pad
    ax.scatter(
        [c.round for c in ok], accs, s=28, color="#0072B2", alpha=0.75, label="candidate (best β, search)", zorder=3
    )
    if failed:
        ax.scatter(
            [c.round for c in failed],
            [floor + pad / 2] * len(failed),
            marker="x",
            s=30,
            color="#D55E00",
            label="failed (invalid/crashed/timeout/leaked)",
            zorder=3,
        )
    xs = [r.round for r in t.rounds if r.best_so_far is not None]
    ys = [r.best_so_far for r in t.rounds if r.best_so_far is not None]
    if xs:
        ax.step(xs, ys, where="post", color="#0072B2", lw=1.6, label="best so far (search)")
    if t.seed_best is not None:
        ax.axhline(
            t.seed_best, color="#7f7f7f", ls="--", lw=1.2, label=f"best seed controller (search) {t.seed_best:.1f}"
        )
    sel = next((c for c in t.candidates if c.id == t.selected), None)
    if sel is not None and t.selected_search is not None:
        ax.scatter(
            [sel.round], [t.selected_search], marker="*", s=220, facecolor="none", edgecolor="#000000", lw=1.4, zorder=4
        )
        if t.selected_heldout is not None:
            ax.scatter([sel.round], [t.selected_heldout], marker="D", s=60, color="#009E73", zorder=4)
            ax.plot([sel.round, sel.round], [t.selected_search, t.selected_heldout], color="#009E73", ls=":", lw=1.2)
    ax.set_ylim(floor, hi + pad)
    ax.set_xlabel("round")
    ax.set_ylabel("mean accuracy % (search stores)")
    beta = "" if t.selected_beta is None else f", β={t.selected_beta:g}"
    ax.set_title(f"Discovery run '{t.name}': candidates round by round", fontsize=11)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if sel is not None:
        handles.append(Line2D([], [], marker="*", ls="", markerfacecolor="none", markeredgecolor="#000000", ms=12))
        labels.append(f"selected {sel.id}{beta} (search)")
        if t.selected_heldout is not None:
            handles.append(Line2D([], [], marker="D", ls="", color="#009E73", ms=7))
            labels.append(f"selected, held-out {t.selected_heldout:.1f}")
    ax.legend(handles, labels, fontsize=8, loc="lower right", framealpha=0.9)
    rounds = [r.round for r in t.rounds]
    if rounds and max(rounds) <= 30:
        ax.set_xticks(rounds)
    return fig
