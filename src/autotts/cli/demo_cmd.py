"""``autotts demo``: the whole idea on synthetic data, offline, in under a minute on 2 idle cores.

The work is done by :func:`autotts.demo.run_demo`; this module draws the progress bar
on stderr and prints what was done, where to look and what to try next.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from autotts.cli.app import app
from autotts.cli.output import err, out, progress_bar
from autotts.errors import ConfigError


def _discovery_table(data: Mapping[str, Any]) -> Table:
    """The final evaluation of the demo's discovery run: discovered program vs the baselines."""
    final = data.get("final", {})
    runs = final.get("runs")
    table = Table(title=f"discovery: final evaluation ({runs} runs); the proposer saw the search store only")
    table.add_column("controller")
    table.add_column("β", justify="right")
    for col in ("search acc %", "search tokens", "held-out acc %", "held-out tokens"):
        table.add_column(col, justify="right")
    cells: dict[tuple[str, Any], dict[str, Mapping[str, Any]]] = {}
    for row in final.get("rows", []):
        cells.setdefault((row["controller"], row["beta"]), {})[row["role"]] = row
    for (controller, beta), roles in cells.items():
        figures: list[str] = []
        for role in ("search", "heldout"):
            row = roles.get(role)
            figures += ["", ""] if row is None else [f"{row['accuracy']:.2f}", f"{row['tokens']:,.0f}"]
        name = f"[bold]{controller}[/]" if controller == "discovered" else controller
        table.add_row(name, "" if beta is None else f"{beta:g}", *figures)
    return table


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when it lies below it, else absolute (never ``../..`` chains)."""
    try:
        return str(path.resolve().relative_to(start.resolve()))
    except ValueError:
        return str(path.resolve())


@app.command("demo")
def demo_command(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Directory to write stores, results and summary to.")
    ] = Path("autotts-demo"),
    seed: Annotated[
        int, typer.Option("--seed", "-s", help="Seed of the synthetic stores; same seed -> same output.")
    ] = 0,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="10 runs per cell and 4 discovery rounds instead of 100 and 24 (about 10 s of CPU time)."
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-j", help="Worker processes for evaluating the baselines (default: all cores)."),
    ] = None,
) -> None:
    """Run the demo: synthetic stores, baselines, a short offline discovery - no data, network or API key needed."""
    import time

    from autotts.demo import evaluate_command, run_demo

    if seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    t0 = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("autotts demo", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=escape(what), completed=done, total=total)

        result = run_demo(out_dir, seed=seed, quick=quick, workers=workers, progress=progress)
    wall = time.perf_counter() - t0

    out.print(
        f"[bold]autotts demo[/] (seed {seed}{', quick' if quick else ''}): synthetic data only - it shows how the "
        "tools work, not how any real model behaves.\n",
        markup=True,
    )
    out.print("What it did:")
    stores = " and ".join(f"{role} {escape(str(path))}" for role, path in result.stores.items())
    out.print(f"  1. built two synthetic stores (profile large): {stores}")
    n_cells = sum(len(r) for r in result.results.values())
    out.print(
        f"  2. evaluated {n_cells} controller cells with zero LLM calls ({result.runs} runs each"
        f"{'' if result.runs >= 100 else '; the reference protocol uses 100 - drop --quick for it'})"
    )
    if result.skipped:
        out.print(f"     not registered here, skipped: {', '.join(result.skipped)}")
    for number, step in enumerate(result.steps, start=3):
        out.print(f"  {number}. {step.name}: {step.status} - {step.detail}")
    table = Table(title="accuracy vs cost (tokens per question)")
    table.add_column("controller")
    table.add_column("search acc %", justify="right")
    table.add_column("search tokens", justify="right")
    table.add_column("held-out acc %", justify="right")
    table.add_column("held-out tokens", justify="right")
    for a, b in zip(result.results["search"], result.results["heldout"], strict=True):
        table.add_row(a.label, f"{a.accuracy:.2f}", f"{a.tokens:,.0f}", f"{b.accuracy:.2f}", f"{b.tokens:,.0f}")
    out.print(table)
    discovery = next((s for s in result.steps if s.name == "discovery" and s.status == "done"), None)
    if discovery is not None:
        out.print(_discovery_table(discovery.data))
    out.print("Where to look:")
    out.print(f"  {escape(str(result.summary_path))}   short summary (markdown)")
    out.print(f"  {escape(str(result.results_path))}  every cell as JSON (per-question accuracy and tokens)")
    stores_dir = escape(str(result.out_dir / "stores"))
    out.print(f"  {stores_dir}/  the stores: try `autotts store info` and `autotts eval` on them")
    if discovery is not None:
        out.print(f"  {escape(str(result.out_dir / 'discovery'))}/  the discovery run: every candidate, summary.md")
    out.print("Next steps:")
    if discovery is not None and discovery.data.get("program"):
        # Paths as the user can type them from where they ran the demo.
        here = Path.cwd()
        stores_arg = _relative(result.out_dir / "stores", here) + "/"
        program = _relative(result.out_dir / str(discovery.data["program"]), here)
        command = evaluate_command(stores_arg, program, str(discovery.data.get("class_name")))
        out.print(f"  the discovered program: {escape(command)}")
    out.print("  with real data:  autotts store import PATH/TO/autotts-replay --out stores/")
    out.print("                   autotts eval --preset paper-main --store stores/")
    out.print("  with a real LLM: autotts discover CONFIG   (see examples/discover.toml and docs/discovery.md)")
    failed = [step.name for step in result.steps if step.status == "failed"]
    if failed:
        err.print(f"[bold red]error:[/] demo step(s) failed: {escape(', '.join(failed))} (see above)", markup=True)
        raise typer.Exit(1)
    err.print(f"done in {wall:.1f} s")
