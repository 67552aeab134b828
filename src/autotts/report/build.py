"""``build_report``: read the inputs, compute, and write the report directory.

Output layout::

    DIR/index.html            self-contained page (figures embedded), links to everything
    DIR/summary.md            the same for terminals and pull requests
    DIR/report.json           every number of the report, machine-readable
    DIR/tables/main.{md,csv,html}
    DIR/figures/curves-*.{png,svg}, discovery-*.{png,svg}
    DIR/discovery/NAME/diffs/*.diff
    DIR/viewer.html, DIR/traces/   the trace viewer (cells replayed from --store)
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from autotts._atomic import write_text_atomic
from autotts.errors import ConfigError, ResultsError
from autotts.evaluation.presets import PaperTable, paper_tables, search_flags
from autotts.evaluation.results import CellResult
from autotts.report._forked import ForkedCall
from autotts.report.analysis import DEFAULT_REFERENCE, Analysis, analyse, family_of, matches
from autotts.report.inputs import ReportInputs, load_inputs
from autotts.report.page import render_index, render_summary
from autotts.report.plots import curves_figure, family_colors, grid_figure, save
from autotts.report.tables import main_table_csv, main_table_html, main_table_markdown
from autotts.report.traces import TracedCell, staging_folder, write_traces
from autotts.report.trajectory import Trajectory, load_trajectory, trajectory_figure
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

#: Progress callback: (what, done, total).
ReportProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ReportOptions:
    """What to put in a report beyond its inputs."""

    search: Sequence[str] | None = None
    """Search stores (left out of held-out averages); default: the discovery runs' search stores, else aime24."""
    reference: str = DEFAULT_REFERENCE
    compare: Sequence[tuple[str, str]] | None = None
    """Paired comparisons ``(A, B)``; default: the top of every family against the reference."""
    stores: Sequence[ReplayStore] = ()
    """Stores to replay cells from for the trace viewer."""
    trace: Sequence[str] | None = None
    """Cells (specs or labels) to trace; default: the reference and the compared cells."""
    resamples: int = 10_000
    title: str = "autotts report"


@dataclass
class Report:
    """What :func:`build_report` wrote and computed."""

    out_dir: Path
    index: Path
    summary: Path
    tables: list[PaperTable]
    analysis: Analysis
    trajectories: list[Trajectory]
    traced: list[TracedCell]
    figures: dict[str, Path] = field(default_factory=dict)
    """Figure name -> PNG path."""
    notes: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    """A file-name-safe version of a store or run name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _search_stores(inputs: ReportInputs, trajectories: Sequence[Trajectory], search: Sequence[str] | None) -> list[str]:
    stores = list(dict.fromkeys(c.store for c in inputs.cells))
    if search is not None:
        benches = [(s, s.rpartition("/")[2]) for s in stores]
        return [s for s, f in zip(stores, search_flags(benches, search), strict=True) if f]
    from_runs = [s for t in trajectories for s in t.search_stores]
    if from_runs:
        return [s for s in stores if s in from_runs]
    return [s for s in stores if s.rpartition("/")[2] == "aime24"]


def _traced_cells(cells: Sequence[CellResult], analysis: Analysis, wanted: Sequence[str] | None) -> list[CellResult]:
    if wanted is not None:
        if any(w.strip().lower() == "all" for w in wanted):
            return list(cells)
        chosen = [c for c in cells if any(matches(c, w) for w in wanted)]
        unknown = [w for w in wanted if not any(matches(c, w) for c in cells)]
        if unknown:
            raise ConfigError(f"--trace {', '.join(unknown)} names no evaluated cell; name a spec such as sc:n=64")
        return chosen
    names = {analysis.reference} | {c.a for c in analysis.comparisons}
    picked = [c for c in cells if any(matches(c, n) for n in names)]
    # A β-controller without a comparison still deserves a look: its largest-β cell.
    seen = {family_of(c.controller, c.params) for c in picked}
    for c in sorted(cells, key=lambda c: -float(c.params.get("beta", 0) or 0)):
        fam = family_of(c.controller, c.params)
        if "beta" in c.params and fam not in seen:
            picked.append(c)
            seen.add(fam)
    return picked


def _clear_old_traces(folder: Path) -> None:
    """Remove the traces of an earlier report in the same place (only if the folder holds nothing else)."""
    if not folder.is_dir():
        return
    if all(re.fullmatch(r"s\d+\.js|c\d+", p.name) for p in folder.iterdir()):
        shutil.rmtree(folder)
    else:
        raise ConfigError(f"{folder} holds files autotts report did not write; choose another --out")


def _draw_figures(out: Path, analysis: Analysis, trajectories: Sequence[Trajectory]) -> dict[str, Path]:
    """Draw and save every figure (and write the discovery diffs); return figure name -> PNG path."""
    figures: dict[str, Path] = {}
    families = [cv.family for cvs in analysis.curves.values() for cv in cvs]
    colors = family_colors(families)
    figdir = out / "figures"
    panels = []
    if analysis.average:
        title = f"held-out average ({len(analysis.heldout)} stores)"
        panels.append((title, analysis.average))
        figures["curves-heldout-average"] = save(
            curves_figure(analysis.average, colors, title), figdir / "curves-heldout-average"
        )[0]
    for store, curves in analysis.curves.items():
        role = " (search)" if store in analysis.search else ""
        figures[f"curves-{store}"] = save(
            curves_figure(curves, colors, f"{store}{role}"), figdir / f"curves-{slug(store)}"
        )[0]
        panels.append((f"{store}{role}", curves))
    if len(panels) > 1:
        figures["curves-all"] = save(grid_figure(panels, colors), figdir / "curves-all")[0]
    for t in trajectories:
        if t.candidates:
            figures[f"discovery-{t.name}"] = save(trajectory_figure(t), figdir / f"discovery-{slug(t.name)}")[0]
        final_panels = [
            (f"{store} ({'search' if store in t.search_stores else 'held-out'})", curves)
            for store, curves in t.final_curves.items()
            if curves
        ]
        if final_panels:
            colors = family_colors([*colors, *(cv.family for _, cvs in final_panels for cv in cvs)])
            figures[f"discovery-final-{t.name}"] = save(
                grid_figure(final_panels, colors), figdir / f"discovery-final-{slug(t.name)}"
            )[0]
        diffdir = out / "discovery" / slug(t.name) / "diffs"
        for c in t.candidates:
            if c.diff:
                write_text_atomic(diffdir / f"{c.id}.diff", c.diff)
    return figures


def build_report(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    options: ReportOptions | None = None,
    *,
    progress: ReportProgress | None = None,
) -> Report:
    """Write a report of ``paths`` (eval JSON files, discovery run directories) into ``out_dir``."""
    opts = options or ReportOptions()
    report = progress or (lambda what, done, total: None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ResultsError("exists and is not a directory; choose another --out", path=str(out))
    report("reading inputs", 0, 5)
    inputs = load_inputs(paths)
    trajectories = [load_trajectory(r.path, r.name) for r in inputs.runs]
    search = _search_stores(inputs, trajectories, opts.search)
    tables = paper_tables(inputs.cells, search or ["none"]) if inputs.cells else []
    report("computing frontier statistics", 1, 5)
    analysis = analyse(
        inputs.cells, search=search, reference=opts.reference, pairs=opts.compare, resamples=opts.resamples
    )
    notes = list(inputs.notes) + list(analysis.notes)

    (out / "tables").mkdir(parents=True, exist_ok=True)
    if tables:
        write_text_atomic(out / "tables" / "main.md", main_table_markdown(tables) + "\n")
        write_text_atomic(out / "tables" / "main.csv", main_table_csv(tables))
        write_text_atomic(out / "tables" / "main.html", main_table_html(tables) + "\n")

    # The trace viewer's cells are replayed and written in a forked child while the
    # figures are drawn here (the two are independent and each holds the GIL; see _forked).
    _clear_old_traces(out / "traces")
    tracing: ForkedCall[tuple[list[TracedCell], list[str]]] | None = None
    if opts.stores:
        chosen = _traced_cells(inputs.cells, analysis, opts.trace)
        report("drawing figures; replaying cells for the trace viewer", 2, 5)
        tracing = ForkedCall(write_traces, out / "traces", opts.stores, chosen)
    elif opts.trace:
        raise ConfigError("--trace needs --store: traces are replayed from the stores that were evaluated")
    else:
        report("drawing figures", 2, 5)
    try:
        figures = _draw_figures(out, analysis, trajectories)
    except BaseException:
        if tracing is not None:
            tracing.cancel()
            shutil.rmtree(staging_folder(out / "traces"), ignore_errors=True)
        raise
    traced: list[TracedCell] = []
    if tracing is not None:
        report("writing the trace viewer", 3, 5)
        traced, trace_notes = tracing.result()
        notes += trace_notes
    template = resources.files("autotts.report").joinpath("assets/viewer.html").read_text(encoding="utf-8")
    index_json = json.dumps({"cells": [c.to_dict() for c in traced]}, ensure_ascii=False).replace("</", "<\\/")
    write_text_atomic(out / "viewer.html", template.replace("/*INDEX*/", index_json))

    report("writing index.html and summary.md", 4, 5)
    data = {
        "inputs": inputs.sources,
        "notes": notes,
        "tables": [t.to_dict() for t in tables],
        **analysis.to_dict(),
        "traced_cells": [c.to_dict() for c in traced],
    }
    write_text_atomic(out / "report.json", json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    write_text_atomic(
        out / "index.html",
        render_index(
            title=opts.title,
            inputs=inputs,
            tables=tables,
            analysis=analysis,
            figures=figures,
            trajectories=trajectories,
            traced=traced,
            notes=notes,
            out_dir=out,
        ),
    )
    write_text_atomic(
        out / "summary.md",
        render_summary(
            title=opts.title,
            inputs=inputs,
            tables=tables,
            analysis=analysis,
            figures=figures,
            trajectories=trajectories,
            traced=traced,
            notes=notes,
            out_dir=out,
        ),
    )
    report("done", 5, 5)
    return Report(out, out / "index.html", out / "summary.md", tables, analysis, trajectories, traced, figures, notes)
