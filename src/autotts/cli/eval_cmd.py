"""``autotts eval``: evaluate controllers on replay stores and print a table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from autotts.cli.app import app
from autotts.cli.output import err, out, progress_bar
from autotts.errors import ConfigError

if TYPE_CHECKING:
    from autotts.evaluation.presets import PaperTable


def _parse_betas(values: list[str] | None) -> list[float] | None:
    if not values:
        return None
    betas: list[float] = []
    for v in values:
        for piece in v.split(","):
            piece = piece.strip()
            if not piece:
                continue
            try:
                b = float(piece)
            except ValueError:
                raise ConfigError(f"--beta {piece!r} is not a number; use e.g. --beta 0.5 or --beta 0,0.5,1") from None
            if not 0.0 <= b <= 1.0:
                raise ConfigError(f"--beta {b} is outside [0, 1]")
            betas.append(b)
    return betas


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
        bool, typer.Option("--resume", help="Skip cells already in the --json file (continue an interrupted sweep).")
    ] = False,
    sweep: Annotated[
        Path | None, typer.Option("--sweep", help="TOML sweep file naming stores, controllers, betas and options.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="serial, processes (all cores) or ray [processes].")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes / Ray CPUs.")] = None,
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address (with --backend ray).")] = None,
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
    from autotts.controllers.spec import ControllerSpec
    from autotts.evaluation import Protocol
    from autotts.evaluation.presets import paper_tables, preset_specs
    from autotts.evaluation.results import CellResult, CellSummary
    from autotts.evaluation.runner import cell_key, evaluate_cells, expand_cells
    from autotts.evaluation.sweep import ResultStream, load_sweep, record_key
    from autotts.store import load_stores

    config = load_sweep(sweep) if sweep is not None else None
    store_paths = list(store or []) + (config.stores if config else [])
    if not store_paths:
        raise ConfigError("name at least one store with --store (or a sweep file with --sweep)")
    controllers = list(controller or []) + (config.controllers if config else [])
    betas = _parse_betas(beta) or (config.betas if config and config.betas else None)
    runs = runs or (config.runs if config else 100)
    if subsample_size is None:
        subsample_size = config.subsample_size if config else 64
    if subsample_size < 1:
        raise ConfigError(f"--subsample-size must be at least 1, got {subsample_size}")
    proto = Protocol(protocol or (config.protocol if config else "shuffle"), subsample_size)
    if address and (backend or (config.backend if config else None) or "processes") != "ray":
        raise ConfigError("--address only applies to --backend ray")
    backend = backend or (config.backend if config and config.backend else "processes")
    workers = workers or (config.workers if config else None)
    address = address or (config.address if config else None)
    if resume and json_out is None:
        raise ConfigError("--resume needs --json FILE: the file whose finished cells are skipped")
    if preset is not None:
        if betas:
            raise ConfigError("--beta does not combine with --preset (the preset fixes its own β values)")
        specs = preset_specs(preset) + [ControllerSpec.parse(c) for c in controllers]
    else:
        if search_store:
            raise ConfigError("--search-store only applies to the paper-layout table of --preset")
        specs = [ControllerSpec.parse(c) for c in (controllers or ["sc:n=64"])]
    for spec in specs:
        # β-controllers clip β to [0, 1] (the spec), but a table row labelled beta=1.5 showing
        # the β=1 numbers misleads; on the command line an out-of-range β is a usage error.
        b = spec.params.get("beta")
        if b is not None and not (isinstance(b, (int, float)) and 0.0 <= float(b) <= 1.0):
            raise ConfigError(f"controller {spec.label}: beta must be a number in [0, 1], got {b!r}")
    stores = load_stores(store_paths)
    cells = expand_cells(stores, specs, betas)

    stream = ResultStream(json_out, resume=resume) if json_out is not None else None
    previous: dict[str, CellResult] = {}
    if stream is not None and resume:
        by_key = {record_key(r): r for r in stream.records}
        for cell in cells:
            key = cell_key(cell.store.name, cell.spec.name, cell.spec.params, proto.label, runs)
            if key in by_key:
                previous[key] = CellResult.from_dict(by_key[key])
        if previous:
            err.print(f"resuming: {len(previous)} of {len(cells)} cells already in {json_out}")
    todo = [c for c in cells if cell_key(c.store.name, c.spec.name, c.spec.params, proto.label, runs) not in previous]

    with progress_bar() as bar:
        task = bar.add_task(f"evaluating ({backend})", total=len(todo))

        def progress(done: int, total: int, result: CellResult) -> None:
            bar.update(task, completed=done, total=total)
            if not err.is_terminal:  # no live bar in logs: one line per finished cell instead
                err.print(
                    f"[{done}/{total}] {result.label} on {result.store}: "
                    f"{result.accuracy:.2f}% / {result.tokens:,.0f} tokens",
                    markup=False,
                )
            if stream is not None:
                stream.add(result)

        try:
            fresh = evaluate_cells(
                todo,
                runs=runs,
                protocol=proto,
                quirks=quirks,
                fast=not python_controllers,
                backend=backend,
                workers=workers,
                address=address,
                progress=progress,
            )
        finally:
            if stream is not None:
                stream.flush()
    fresh_by_key = {cell_key(r.store, r.controller, r.params, r.protocol, r.runs): r for r in fresh}
    results: list[CellSummary] = []
    ordered_records: list[dict[str, object]] = []
    for cell in cells:
        key = cell_key(cell.store.name, cell.spec.name, cell.spec.params, proto.label, runs)
        if key in fresh_by_key:
            results.append(fresh_by_key[key])
            ordered_records.append(fresh_by_key[key].to_record())
        elif key in previous:
            results.append(previous[key])
            ordered_records.append(by_key[key])
    if stream is not None:
        # Cells streamed in completion order; the finished file lists them in cell order,
        # followed by records of earlier calls that this call did not ask for (kept, not lost).
        current = {record_key(r) for r in ordered_records}
        kept = [r for r in stream.records if record_key(r) not in current] if resume else []
        stream.records = ordered_records + kept
        stream.flush(force=True)
    if preset is not None:
        title = f"{preset} ({runs} runs, {proto.label})"
        for table in paper_tables(results, search_store):
            out.print(paper_layout_table(table, title=title))
    else:
        out.print(results_table(results))
    if stream is not None:
        err.print(f"wrote {len(stream.records)} records to {json_out}")
