"""``index.html`` and ``summary.md`` of a report: one set of rows, two renderings.

Each section is built once as (header, rows) of strings and rendered as Markdown or
HTML, so both documents always show the same numbers. ``index.html`` embeds its
figures as data URIs and has no script or style from elsewhere: it works offline and
survives being mailed around on its own.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from autotts.evaluation.presets import PaperTable
from autotts.report.analysis import BUDGET_FRACTIONS, Analysis, StoreStats
from autotts.report.inputs import ReportInputs
from autotts.report.tables import html_table, main_table_html, main_table_markdown, markdown_table
from autotts.report.traces import TracedCell
from autotts.report.trajectory import Trajectory

Rows = list[list[str]]


def _n(x: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _tok(x: float) -> str:
    return f"{x:,.0f}"


def stats_rows(s: StoreStats) -> tuple[list[str], Rows]:
    """Frontier statistics of one store as a table."""
    ref = s.reference or "reference"
    header = [
        "controller",
        "points",
        "area (mean acc %)",
        "token range of area",
        f"Δ area vs {ref}",
        f"tokens saved vs {ref}",
    ]
    header += [f"acc % @ {f:g}× {ref} tokens" for f in BUDGET_FRACTIONS[: len(s.budgets)]]
    rows = []
    for f in s.families:
        rng = "–" if f.area_range is None else f"{_tok(f.area_range[0])}–{_tok(f.area_range[1])}"
        if s.reference is None:
            saved = "–"
        elif math.isnan(f.saved):
            saved = "never reaches it"
        else:
            saved = f"{100 * f.saved:+.1f} %"
        row = [f.family, str(f.points), _n(f.area), rng, _n(f.area_diff, "{:+.2f}"), saved]
        row += [_n(x) for x in f.at_budgets]
        rows.append(row)
    return header, rows


def comparison_rows(analysis: Analysis) -> tuple[list[str], Rows]:
    """Paired comparisons as a table (A − B, A / B)."""
    header = ["A", "B", "on", "Δ acc (pts)", "95 % CI", "p", "accuracy", "tokens A/B", "95 % CI", "p", "cost"]
    rows = []
    for c in analysis.comparisons:
        r = c.result
        if r is None:
            rows.append([c.a, c.b, c.scope, "–", "–", "–", f"not computed: {c.reason}", "–", "–", "–", ""])
            continue
        rows.append(
            [
                c.a,
                c.b,
                c.scope,
                f"{r.accuracy_diff:+.2f}",
                f"[{r.accuracy_diff_ci[0]:+.2f}, {r.accuracy_diff_ci[1]:+.2f}]",
                f"{r.accuracy_p:.3f}",
                r.accuracy_verdict(),
                f"{r.token_ratio:.3f}",
                f"[{r.token_ratio_ci[0]:.3f}, {r.token_ratio_ci[1]:.3f}]",
                f"{r.token_ratio_p:.3f}",
                r.cost_verdict(),
            ]
        )
    return header, rows


def rounds_rows(t: Trajectory) -> tuple[list[str], Rows]:
    """Per-round totals of a discovery run."""
    header = [
        "round",
        "candidates",
        "statuses",
        "findings",
        "best acc %",
        "best so far",
        "money",
        "proposer s",
        "eval s",
    ]
    rows = [
        [
            str(r.round),
            str(r.candidates),
            ", ".join(f"{v} {k}" for k, v in r.statuses.items()),
            str(r.findings),
            _n(r.best),
            _n(r.best_so_far),
            f"{r.money:.4f}",
            f"{r.proposer_seconds:.1f}",
            f"{r.eval_seconds:.1f}",
        ]
        for r in t.rounds
    ]
    return header, rows


def candidate_rows(t: Trajectory) -> tuple[list[str], Rows]:
    """Every candidate of a discovery run."""
    header = ["id", "status", "best acc %", "tokens/q", "β", "findings", "built on", "message"]
    rows = [
        [
            c.id + (" (selected)" if c.id == t.selected else ""),
            c.status,
            _n(c.accuracy),
            _n(c.tokens, "{:,.0f}"),
            "" if c.beta is None else f"{c.beta:g}",
            ", ".join(c.findings),
            c.predecessor or "",
            c.message[:120],
        ]
        for c in t.candidates
    ]
    return header, rows


def final_rows(t: Trajectory) -> tuple[list[str], Rows]:
    """The final evaluation of a discovery run: every point of every curve, per store."""
    header = ["store", "role", "controller", "accuracy %", "95 % CI", "tokens/q"]
    rows = []
    for store, curves in t.final_curves.items():
        role = "search" if store in t.search_stores else "held-out"
        for cv in curves:
            for p in cv.points:
                ci = f"[{p.accuracy_ci[0]:.1f}, {p.accuracy_ci[1]:.1f}]"
                rows.append([store, role, p.label, f"{p.accuracy:.2f}", ci, _tok(p.tokens)])
    return header, rows


def _selection_line(t: Trajectory) -> str:
    if t.selected is None:
        return "No candidate qualified for selection."
    beta = "" if t.selected_beta is None else f" at β = {t.selected_beta:g}"
    held = "" if t.selected_heldout is None else f"; held-out {t.selected_heldout:.2f} %"
    seed = "" if t.seed_best is None else f" (best seed controller: {t.seed_best:.2f} %)"
    return f"Selected {t.selected}{beta}: search {_n(t.selected_search)} %{seed}{held}."


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _rel(path: Path, out_dir: Path) -> str:
    return os.path.relpath(path, out_dir).replace(os.sep, "/")


_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1300px;
padding:0 20px 40px;color:#222}
h1{margin-top:24px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}
caption{caption-side:bottom;text-align:left;color:#666;font-size:12px;padding-top:4px}
th,td{border:1px solid #ddd;padding:3px 8px} th{background:#f3f3f3;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa} .scroll{overflow-x:auto}
img{max-width:100%;height:auto;border:1px solid #eee}
.thumbs{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:6px 10px;margin:6px 0} nav a{margin-right:14px}
pre.diff{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px;max-height:480px} .muted{color:#777}
"""


def render_index(
    *,
    title: str,
    inputs: ReportInputs,
    tables: Sequence[PaperTable],
    analysis: Analysis,
    figures: Mapping[str, Path],
    trajectories: Sequence[Trajectory],
    traced: Sequence[TracedCell],
    notes: Sequence[str],
    out_dir: Path,
) -> str:
    """The self-contained ``index.html``."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<nav><a href='#table'>Main table</a><a href='#curves'>Scaling curves</a>"
        "<a href='#frontier'>Frontier statistics</a>"
        "<a href='#paired'>Paired comparisons</a>"
        + ("<a href='#discovery'>Discovery</a>" if trajectories else "")
        + "<a href='viewer.html'>Trace viewer</a><a href='summary.md'>summary.md</a>"
        "<a href='report.json'>report.json</a></nav>",
        "<p class='muted'>Inputs: " + e("; ".join(inputs.sources)) + "</p>",
    ]
    parts += [f"<div class='note'>{e(n)}</div>" for n in notes]
    parts.append("<h2 id='table'>Main table</h2>")
    if tables:
        parts.append(
            "<p>Accuracy (%) and mean total tokens per question per store; held-out = mean over the stores "
            "the search did not use. Files: <a href='tables/main.md'>Markdown</a>, <a href='tables/main.csv'>CSV</a>, "
            "<a href='tables/main.html'>HTML</a>.</p>"
        )
        parts.append(f"<div class='scroll'>{main_table_html(tables)}</div>")
    else:
        parts.append("<p class='muted'>No evaluated cells.</p>")
    parts.append("<h2 id='curves'>Scaling curves</h2>")
    parts.append(
        "<p>Accuracy against tokens per question (log scale); β-controllers are solid curves over β, "
        "baselines dashed over their budgets; shaded: 95 % bootstrap interval over questions. "
        "Each figure is also available as SVG beside its PNG.</p>"
    )
    if "curves-all" in figures:
        p = figures["curves-all"]
        parts.append(
            f"<p><a href='{e(_rel(p.with_suffix('.svg'), out_dir))}'>"
            f"<img alt='scaling curves of every store' src='{_img(p)}'></a></p>"
        )
    parts.append("<div class='thumbs'>")
    for name, p in figures.items():
        if name.startswith("curves-") and name != "curves-all":
            parts.append(
                f"<a href='{e(_rel(p.with_suffix('.svg'), out_dir))}'><img alt='{e(name)}' src='{_img(p)}'></a>"
            )
    parts.append("</div>")
    parts.append("<h2 id='frontier'>Frontier statistics</h2>")
    parts.append(
        "<p><b>Area</b>: mean accuracy of the Pareto frontier (linear in log tokens) over the token range the curve "
        f"shares with the reference's curve ({e(analysis.reference)}); "
        "<b>Δ area</b>: that minus the reference's area over "
        "the same range, in accuracy points. <b>Tokens saved</b>: how many fewer tokens the curve needs to reach the "
        "reference point's accuracy. Accuracy at fixed budgets is read off the frontier.</p>"
    )
    for s in analysis.stats:
        header, rows = stats_rows(s)
        role = " (search store)" if s.store in analysis.search else ""
        ref = (
            ""
            if s.reference_point is None
            else f" — reference {s.reference}: {s.reference_point[1]:.2f} % at {_tok(s.reference_point[0])} tokens"
        )
        parts.append(f"<h3>{e(s.store)}{e(role)}</h3><p class='muted'>{e(ref)}</p>")
        parts.append(f"<div class='scroll'>{html_table(header, rows)}</div>")
        parts.append(
            "<p class='muted'>Pareto frontier (all cells, cheapest first): " + e(", ".join(s.frontier)) + "</p>"
        )
    parts.append("<h2 id='paired'>Paired comparisons</h2>")
    resamples = next((c.result.resamples for c in analysis.comparisons if c.result is not None), 0)
    parts.append(
        f"<p>Same runs and questions for A and B; paired bootstrap over questions ({resamples:,} resamples). "
        "A p-value below 0.05 makes a difference distinguishable; otherwise the two are not distinguishable "
        "on this data.</p>"
    )
    header, rows = comparison_rows(analysis)
    parts.append(
        f"<div class='scroll'>{html_table(header, rows, align='lllrrrlrrrl')}</div>"
        if rows
        else "<p class='muted'>No comparisons (the reference is not among the cells).</p>"
    )
    if trajectories:
        parts.append("<h2 id='discovery'>Discovery</h2>")
    for t in trajectories:
        parts.append(
            f"<h3>Run {e(t.name)}</h3><p>{e(_selection_line(t))} "
            f"Search stores: {e(', '.join(t.search_stores) or '–')}; "
            f"held-out: {e(', '.join(t.heldout_stores) or '–')}."
            + (f" Stopped early: {e(str(t.stop_reason))}." if t.stop_reason else "")
            + " Wall clock: "
            + e(", ".join(f"{k} {v:,.1f} s" for k, v in t.phase_seconds.items()))
            + "</p>"
        )
        fig = figures.get(f"discovery-{t.name}")
        if fig is not None:
            parts.append(
                f"<p><a href='{e(_rel(fig.with_suffix('.svg'), out_dir))}'>"
                f"<img alt='discovery trajectory' src='{_img(fig)}'></a></p>"
            )
        fig = figures.get(f"discovery-final-{t.name}")
        if fig is not None:
            parts.append(
                f"<h4>Final evaluation ({t.final_runs} runs): the discovered program and the baselines</h4>"
                f"<p><a href='{e(_rel(fig.with_suffix('.svg'), out_dir))}'>"
                f"<img alt='final evaluation curves' src='{_img(fig)}'></a></p>"
            )
            header, rows = final_rows(t)
            parts.append(
                "<details><summary>every point</summary>" + html_table(header, rows, align="lllrlr") + "</details>"
            )
        header, rows = rounds_rows(t)
        parts.append("<h4>Rounds</h4>" + html_table(header, rows, align="lrlrrrrrr"))
        header, rows = candidate_rows(t)
        parts.append("<h4>Candidates</h4><div class='scroll'>" + html_table(header, rows, align="llrrllll") + "</div>")
        parts.append("<h4>Code changes (each candidate against its best predecessor)</h4>")
        for c in t.candidates:
            if c.diff:
                against = f"against {c.predecessor}" if c.predecessor else "first program"
                parts.append(
                    f"<details><summary>{e(c.id)} ({e(c.status)}, {e(against)})</summary>"
                    f"<pre class='diff'>{e(c.diff)}</pre></details>"
                )
    parts.append("<h2 id='viewer'>Trace viewer</h2>")
    if traced:
        parts.append(
            f"<p><a href='viewer.html'>Open the trace viewer</a>: {len(traced)} cells replayed with tracing on "
            f"({sum(c.events for c in traced):,} actions).</p><ul>"
        )
        parts += [
            f"<li>{e(c.method)} on {e(c.store)}: {c.runs} runs × {c.questions} questions, {c.events:,} actions</li>"
            for c in traced
        ]
        parts.append("</ul>")
    else:
        parts.append(
            "<p class='muted'>No traces: pass the evaluated stores with <code>--store</code> "
            "to replay cells for the viewer.</p>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_summary(
    *,
    title: str,
    inputs: ReportInputs,
    tables: Sequence[PaperTable],
    analysis: Analysis,
    figures: Mapping[str, Path],
    trajectories: Sequence[Trajectory],
    traced: Sequence[TracedCell],
    notes: Sequence[str],
    out_dir: Path,
) -> str:
    """``summary.md``: the main table, figure links, frontier statistics, comparisons, discovery."""
    lines = [f"# {title}", "", "Inputs: " + "; ".join(inputs.sources), ""]
    lines += [f"> {n}" for n in notes]
    lines += ["", "## Main table", "", main_table_markdown(tables) if tables else "No evaluated cells.", ""]
    if "curves-all" in figures:
        lines += ["## Scaling curves", "", f"![scaling curves]({_rel(figures['curves-all'], out_dir)})", ""]
    elif figures:
        lines += ["## Scaling curves", ""]
        lines += [f"![{name}]({_rel(p, out_dir)})" for name, p in figures.items() if name.startswith("curves-")]
        lines.append("")
    lines += [
        "## Frontier statistics",
        "",
        f"Reference: {analysis.reference}. Area = mean frontier accuracy over log tokens "
        "on the range shared with the reference's curve.",
        "",
    ]
    for s in analysis.stats:
        header, rows = stats_rows(s)
        lines += [
            f"### {s.store}" + (" (search)" if s.store in analysis.search else ""),
            "",
            markdown_table(header, rows),
            "",
        ]
    header, rows = comparison_rows(analysis)
    if rows:
        lines += ["## Paired comparisons", "", markdown_table(header, rows, "lllrrrlrrrl"), ""]
    for t in trajectories:
        lines += [f"## Discovery run `{t.name}`", "", _selection_line(t), ""]
        fig = figures.get(f"discovery-{t.name}")
        if fig is not None:
            lines += [f"![discovery trajectory]({_rel(fig, out_dir)})", ""]
        fig = figures.get(f"discovery-final-{t.name}")
        if fig is not None:
            lines += [f"Final evaluation ({t.final_runs} runs):", "", f"![final evaluation]({_rel(fig, out_dir)})", ""]
        header, rows = rounds_rows(t)
        lines += [markdown_table(header, rows, "lrlrrrrrr"), ""]
    if traced:
        lines += [
            "## Traces",
            "",
            f"`viewer.html` shows {len(traced)} replayed cells: "
            + ", ".join(f"{c.method} on {c.store}" for c in traced),
            "",
        ]
    return "\n".join(lines) + "\n"
