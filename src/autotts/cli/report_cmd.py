"""``autotts report``: tables, scaling curves, frontier statistics, discovery trajectory, trace viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from autotts.cli.app import app
from autotts.cli.output import err, out, progress_bar
from autotts.errors import ConfigError


def _pairs(values: list[str] | None) -> list[tuple[str, str]] | None:
    if not values:
        return None
    pairs = []
    for v in values:
        a, sep, b = v.partition(" vs ")
        if not sep or not a.strip() or not b.strip():
            raise ConfigError(f"--compare {v!r}: write it as 'A vs B', e.g. --compare 'cmc:beta=1.0 vs sc:n=64'")
        pairs.append((a.strip(), b.strip()))
    return pairs


@app.command("report")
def report_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="`autotts eval --json` files, discovery run directories, or directories holding them."),
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the report to.")],
    store: Annotated[
        list[str] | None,
        typer.Option(
            "--store", "-s", help="Stores that were evaluated: replays cells for the trace viewer; repeatable."
        ),
    ] = None,
    trace: Annotated[
        list[str] | None,
        typer.Option(
            "--trace", help="Cells to show in the trace viewer (spec such as cmc:beta=0.5, or 'all'); repeatable."
        ),
    ] = None,
    reference: Annotated[
        str, typer.Option("--reference", help="Reference of tokens saved and default comparisons.")
    ] = "sc:n=64",
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", help="Paired comparison 'A vs B' (specs or labels); repeatable."),
    ] = None,
    search_store: Annotated[
        list[str] | None,
        typer.Option(
            "--search-store",
            help="Store or benchmark the controller search used (left out of held-out averages); repeatable; "
            "'none' = all held out. Default: the discovery runs' search stores, else benchmark aime24.",
        ),
    ] = None,
    resamples: Annotated[
        int, typer.Option("--resamples", min=100, help="Bootstrap resamples of the paired comparisons.")
    ] = 10_000,
    title: Annotated[str, typer.Option("--title", help="Title of index.html and summary.md.")] = "autotts report",
) -> None:
    """Write a report directory: main table, scaling curves, frontier statistics, discovery, trace viewer."""
    from autotts.report import ReportOptions, build_report
    from autotts.store import load_stores

    stores = load_stores(list(store)) if store else []
    options = ReportOptions(
        search=search_store,
        reference=reference,
        compare=_pairs(compare),
        stores=stores,
        trace=trace,
        resamples=resamples,
        title=title,
    )
    with progress_bar() as bar:
        task = bar.add_task("autotts report", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=escape(what), completed=done, total=total)

        result = build_report([str(p) for p in inputs], out_dir, options, progress=progress)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    cells = sum(len(cv.cells) for cvs in result.analysis.curves.values() for cv in cvs)
    out.print(
        f"report of {cells} cells and {len(result.trajectories)} discovery runs written to {out_dir}/", markup=False
    )
    out.print(f"  {result.index}   open in a browser (works offline)", markup=False)
    out.print(f"  {result.summary}  for terminals and pull requests", markup=False)
    if result.traced:
        out.print(f"  {out_dir / 'viewer.html'}  trace viewer ({len(result.traced)} cells)", markup=False)
    else:
        out.print("  no trace viewer data: pass the evaluated stores with --store", markup=False)
