"""``autotts collect CONFIG``: build a replay store from a live OpenAI-compatible model server.

The library does the work (:mod:`autotts.collect`); this module reads the options,
shows the plan (``--dry-run``) or a progress bar (questions, branches, intervals,
tokens per second, ETA, money when prices are configured) and prints the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import TextColumn

from autotts.cli.app import app
from autotts.cli.output import err, out, progress_bar


def _eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@app.command("collect")
def collect_command(
    config: Annotated[Path, typer.Argument(help="Collection config (TOML): benchmark, servers, recipe, output.")],
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the collection recorded in the state file.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the number of requests and a token upper bound; send nothing.")
    ] = False,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Store file to write (.parquet); overrides collect.out.")
    ] = None,
) -> None:
    """Sample N branches per question from a model server, probe them every Δ tokens, write a replay store."""
    from dataclasses import replace

    from autotts.collect.config import load_config
    from autotts.collect.runner import Progress, collect, plan_collection

    cfg = load_config(config)
    if out_path is not None:
        if out_path.suffix != ".parquet":
            raise typer.BadParameter("must name a .parquet file", param_hint="--out")
        cfg = replace(cfg, out=out_path)
    if dry_run:
        plan = plan_collection(cfg)
        out.print(f"benchmark   {cfg.benchmark.path} ({plan.questions} questions)")
        out.print(f"model       {cfg.server.model} on {', '.join(cfg.server.base_urls)}")
        out.print(f"branches    {plan.branches} ({cfg.branches} per question), Δ = {cfg.delta}, cap {cfg.max_tokens}")
        out.print(f"mode        {cfg.mode.value}")
        out.print(f"requests    at most {plan.requests:,}")
        out.print(f"tokens      at most {plan.generated_tokens:,} generated + {plan.probe_tokens:,} in probes")
        if plan.money:
            out.print(f"money       at most {plan.money:,.2f} (output tokens at the configured price)")
        if plan.done_branches:
            out.print(f"state       {cfg.state_path}: {plan.done_branches} branches done, {plan.done_tokens:,} tokens")
        return

    priced = bool(cfg.server.price_input_per_mtok or cfg.server.price_output_per_mtok)
    with progress_bar(TextColumn("{task.fields[info]}")) as bar:
        task = bar.add_task("branches", total=None, info="connecting")

        def on_progress(p: Progress) -> None:
            rate = p.run_tokens / p.elapsed if p.elapsed > 0 else 0.0
            remaining = p.branches - p.branches_done
            new_done = max(p.branches_done, 1)
            eta = p.elapsed / new_done * remaining if p.branches_done else float("nan")
            info = (
                f"questions {p.questions_done}/{p.questions} · intervals {p.intervals:,} · probes {p.probes:,} · "
                f"{rate:,.0f} tok/s · ETA {_eta(eta)}"
            )
            if priced:
                info += f" · ${p.money:,.2f}"
            bar.update(task, total=p.branches, completed=p.branches_done, info=info)

        result = collect(cfg, resume=resume, progress=on_progress)
    st = result.store
    meta = st.meta.settings
    rate = result.run_tokens / result.seconds if result.seconds > 0 else 0.0
    err.print(
        f"collected {len(st.questions)} questions × {cfg.branches} branches "
        f"({meta.get('tokens', 0):,} branch tokens) in {result.seconds:.1f} s this run ({rate:,.0f} tok/s)"
        + (" — resumed" if result.resumed else "")
    )
    out.print(escape(str(result.path)))
