"""``autotts eval``: evaluate controllers on replay stores and print a table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from autotts.cli import signals
from autotts.cli.app import app
from autotts.cli.output import err, out, progress_bar
from autotts.errors import ConfigError

if TYPE_CHECKING:
    from autotts.evaluation.presets import PaperTable
    from autotts.evaluation.results import CellResult


def results_table(results: list, title: str | None = None) -> Table:  # type: ignore[type-arg]
    """A rich table of cell results: accuracy with CI, tokens, sequential tokens."""
    table = Table(title=title, show_lines=False)
    table.add_column("store")
    table.add_column("controller")
    table.add_column("runs", justify="right")
    table.add_column("accuracy %", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("tokens/q", justify="right")
    table.add_column("seq tokens/q", justify="right")
    for r in results:
        lo, hi = r.accuracy_ci
        table.add_row(
            r.store,
            r.label,
            str(r.runs),
            f"{r.accuracy:.2f}",
            f"[{lo:.1f}, {hi:.1f}]",
            f"{r.tokens:,.0f}",
            f"{r.sequential_tokens:,.0f}",
        )
    return table


def paper_layout_table(table: PaperTable, title: str | None = None) -> Table:
    """Render the paper-layout table (rows = methods; accuracy and tokens per store; held-out average)."""
    if table.model is not None:
        title = f"{table.model} · {title}" if title else table.model
    rich_table = Table(title=title, caption=table.caption(), show_lines=False)
    for i, name in enumerate(table.header()):
        if i == 0:
            rich_table.add_column(name, justify="left", no_wrap=True)
        else:
            rich_table.add_column(name, justify="right")
    for row in table.text_rows():
        rich_table.add_row(*row)
    return rich_table


@app.command("eval")
def eval_command(
    store: Annotated[
        list[str] | None,
        typer.Option("--store", "-s", help="Store file (.parquet/.json) or directory of stores; repeatable."),
    ] = None,
    controller: Annotated[
        list[str] | None,
        typer.Option(
            "--controller", "-c", help="NAME[:k=v,...] or FILE.py:CLASS[:k=v,...]; repeatable. Default: sc:n=64."
        ),
    ] = None,
    beta: Annotated[
        list[str] | None,
        typer.Option("--beta", "-b", help="β values for controllers that take beta (repeatable or comma list)."),
    ] = None,
    runs: Annotated[
        int | None, typer.Option("--runs", "-r", min=1, help="Runs (branch orders) per cell [100].")
    ] = None,
    protocol: Annotated[
        str | None, typer.Option(help="Run protocol: shuffle (reference) or subsample [shuffle].")
    ] = None,
    subsample_size: Annotated[
        int | None, typer.Option(help="Branches per run under --protocol subsample [64].")
    ] = None,
    quirks: Annotated[
        bool, typer.Option("--quirks", help="Reproduce the original code base's accounting quirks (compat mode).")
    ] = False,
    python_controllers: Annotated[
        bool,
        typer.Option(
            "--python-controllers",
            help="Run built-ins as their Python reference code instead of compiled kernels (same numbers, slower).",
        ),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Stream the JSON records to this file as cells finish.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the --json file: skip its finished cells (same stores only).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing --json file instead of refusing.")
    ] = False,
    sweep: Annotated[
        Path | None, typer.Option("--sweep", help="TOML sweep file naming stores, controllers, betas and options.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="serial, processes (all cores) or ray [processes].")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes / Ray CPUs.")] = None,
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address (with --backend ray).")] = None,
    cell_timeout: Annotated[
        float | None,
        typer.Option("--cell-timeout", help="Stop with an error when one cell runs longer than SECONDS (wall time)."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Evaluate a paper preset (paper-main, paper-curves) and print the paper-layout table.",
        ),
    ] = None,
    search_store: Annotated[
        list[str] | None,
        typer.Option(
            "--search-store",
            help="With --preset: store (model/benchmark) or benchmark the controller search used, left out of "
            "the held-out average; repeatable; 'none' = every store is held out. Default: benchmark aime24.",
        ),
    ] = None,
) -> None:
    """Evaluate controllers on replay stores with zero LLM calls."""
    from autotts.evaluation.presets import paper_tables
    from autotts.evaluation.sweep import ResultStream, SweepConfig, parse_betas

    if resume and json_out is None:
        raise ConfigError("--resume needs --json FILE: the file whose finished cells are skipped")
    if search_store and preset is None:
        raise ConfigError("--search-store only applies to the paper-layout table of --preset")
    base = SweepConfig.load(sweep) if sweep is not None else SweepConfig()
    config = base.merge(
        stores=store,
        controllers=controller,
        betas=parse_betas(beta or ()),
        runs=runs,
        protocol=protocol,
        subsample_size=subsample_size,
        backend=backend,
        workers=workers,
        address=address,
        cell_timeout=cell_timeout,
        preset=preset,
    )
    stream = ResultStream(json_out, resume=resume, force=force) if json_out is not None else None
    plan = config.plan()
    if stream is not None and resume:
        err.print(f"resuming: {len(stream.claim(plan))} of {len(plan.cells)} cells already in {json_out}")
    finished: list[CellResult] = []
    with progress_bar() as bar:
        task = bar.add_task(f"evaluating ({config.backend})", total=len(plan.cells))

        def progress(done: int, total: int, result: CellResult) -> None:
            finished.append(result)
            bar.update(task, completed=done, total=total)
            if not err.is_terminal:  # no live bar in logs: one line per finished cell instead
                err.print(
                    f"[{done}/{total}] {result.label} on {result.store}: {result.accuracy:.2f}% / "
                    f"{result.tokens:,.0f} tokens",
                    markup=False,
                )

        try:
            results = plan.run(stream, quirks=quirks, fast=not python_controllers, progress=progress)
        except KeyboardInterrupt as exc:
            bar.stop()
            if stream is not None:
                summary = f"{stream.saved} of {len(plan.cells)} cells saved in {json_out}; rerun with --resume"
            else:
                summary = f"{len(finished)} of {len(plan.cells)} cells finished; none saved (--json FILE keeps them)"
            err.print(f"interrupted: {summary}", markup=False)
            raise typer.Exit(signals.exit_code(exc)) from None
    if preset is not None:
        title = f"{preset} ({config.runs} runs, {config.run_protocol.label})"
        for table in paper_tables(results, search_store):
            out.print(paper_layout_table(table, title=title))
    else:
        out.print(results_table(results))
    if stream is not None:
        err.print(f"wrote {len(stream.records)} records to {json_out}")
