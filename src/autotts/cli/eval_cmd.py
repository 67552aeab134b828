"""``autotts eval``: evaluate controllers on replay stores and print a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from autotts.cli.app import app
from autotts.cli.output import err, out
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
        list[str],
        typer.Option("--store", "-s", help="Store file (.parquet/.json) or directory of stores; repeatable."),
    ],
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
    runs: Annotated[int, typer.Option("--runs", "-r", min=1, help="Runs (branch orders) per cell.")] = 100,
    protocol: Annotated[str, typer.Option(help="Run protocol: shuffle (reference) or subsample.")] = "shuffle",
    subsample_size: Annotated[int, typer.Option(help="Branches per run under --protocol subsample.")] = 64,
    quirks: Annotated[
        bool, typer.Option("--quirks", help="Reproduce the original code base's accounting quirks (compat mode).")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON records to this file.")] = None,
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autotts._atomic import write_text_atomic
    from autotts.controllers.spec import ControllerSpec
    from autotts.evaluation import Protocol, evaluate, records
    from autotts.evaluation.presets import paper_tables, preset_specs
    from autotts.store import load_stores

    betas = _parse_betas(beta)
    if preset is not None:
        if betas:
            raise ConfigError("--beta does not combine with --preset (the preset fixes its own β values)")
        specs = preset_specs(preset) + [ControllerSpec.parse(c) for c in controller or []]
    else:
        if search_store:
            raise ConfigError("--search-store only applies to the paper-layout table of --preset")
        specs = [ControllerSpec.parse(c) for c in (controller or ["sc:n=64"])]
    proto = Protocol(protocol, subsample_size)
    stores = load_stores(store)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("evaluating", total=None)

        def progress(done: int, total: int, result: object) -> None:
            bar.update(task, completed=done, total=total)

        results = evaluate(stores, specs, betas=betas, runs=runs, protocol=proto, quirks=quirks, progress=progress)
    if preset is not None:
        title = f"{preset} ({runs} runs, {proto.label})"
        for table in paper_tables(results, search_store):
            out.print(paper_layout_table(table, title=title))
    else:
        out.print(results_table(results))
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(records(results), indent=2) + "\n")
        err.print(f"wrote {len(results)} records to {json_out}")
