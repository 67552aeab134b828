"""Figures of a report (matplotlib, no pyplot state): scaling curves and their combined grid.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas,
never through ``pyplot``, so that drawing needs no display, leaves no global state and
is safe in worker threads. Every figure is saved as PNG (for pages and READMEs) and SVG
(for papers), without timestamps so the same data gives the same files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from autotts.report.analysis import KNOB_NAMES, Curve

#: Colour-blind-safe palette (Okabe–Ito, then Tableau), assigned to families in first-seen order.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#8c564b",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#9467bd",
)


def family_colors(families: Sequence[str]) -> dict[str, str]:
    """A stable colour per family (first-seen order), shared by every figure of a report."""
    out: dict[str, str] = {}
    for fam in families:
        if fam not in out:
            out[fam] = PALETTE[len(out) % len(PALETTE)]
    return out


def _tokens_label(x: float, _pos: object = None) -> str:
    if x >= 1e6:
        return f"{x / 1e6:g}M"
    if x >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def save(fig: Figure, stem: Path) -> tuple[Path, Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.svg``; return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    # Not with_suffix: a store name such as Qwen3-0.6B has a dot that is not a suffix.
    png, svg = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"
    fig.savefig(png, dpi=150, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg


def _legend_label(curve: Curve) -> str:
    values = [v for v in curve.knob_values() if isinstance(v, (int, float))]
    if curve.knob is None or not values:
        return curve.family
    knob = KNOB_NAMES.get(curve.knob, curve.knob)
    lo, hi = min(values), max(values)
    return f"{curve.family} ({knob} {lo:g}–{hi:g})" if lo != hi else f"{curve.family} ({knob} {lo:g})"


def draw_curves(ax: Axes, curves: Sequence[Curve], colors: Mapping[str, str], *, title: str, legend: bool) -> None:
    """One panel: each family's accuracy against log tokens with its 95 % band."""
    for cv in curves:
        color = colors.get(cv.family, "#444444")
        order = np.argsort(cv.tokens, kind="stable")
        t = cv.tokens[order]
        a = cv.accuracy[order]
        lo = np.array([cv.points[i].accuracy_ci[0] for i in order])
        hi = np.array([cv.points[i].accuracy_ci[1] for i in order])
        beta = cv.knob == "beta"
        label = _legend_label(cv)
        if len(t) == 1:
            ax.errorbar(t, a, yerr=[a - lo, hi - a], fmt="o", color=color, capsize=3, ms=5, label=label)
            continue
        ax.plot(t, a, "-" if beta else "--", marker="o" if beta else "s", ms=3.5, lw=1.8, color=color, label=label)
        if np.any(hi > lo):
            ax.fill_between(t, lo, hi, color=color, alpha=0.07, lw=0)
    # Scale to the points, not the bands: with 30 questions a band spans ±15 points and
    # would squash the differences between curves into a sliver.
    points = np.concatenate([cv.accuracy for cv in curves]) if curves else np.array([0.0, 100.0])
    lo_y, hi_y = float(points.min()), float(points.max())
    pad = max(2.0, 0.3 * (hi_y - lo_y))
    ax.set_ylim(lo_y - pad, hi_y + pad)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(_tokens_label))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, p: ""))
    ax.set_xlabel("tokens per question (log scale)")
    ax.set_ylabel("accuracy %")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(fontsize=8, loc="lower right", framealpha=0.9)


def curves_figure(curves: Sequence[Curve], colors: Mapping[str, str], title: str) -> Figure:
    """One store's scaling curves."""
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    draw_curves(fig.add_subplot(), curves, colors, title=title, legend=True)
    return fig


def grid_figure(panels: Sequence[tuple[str, Sequence[Curve]]], colors: Mapping[str, str]) -> Figure:
    """Small multiples of several stores with one shared legend below."""
    n = len(panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.6 * cols, 3.6 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, (title, curves) in enumerate(panels):
        draw_curves(axes[k // cols][k % cols], curves, colors, title=title, legend=False)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    handles: dict[str, Artist] = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            fam = lab.split(" (")[0]
            handles.setdefault(fam, h)
    fig.legend(
        list(handles.values()), list(handles), loc="outside lower center", ncols=min(6, len(handles)), fontsize=9
    )
    return fig
