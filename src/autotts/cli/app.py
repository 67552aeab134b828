"""The Typer application objects; command modules attach their commands to them."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="autotts",
    help="Discover test-time-scaling controllers for reasoning LLMs by exact replay search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="Import, inspect, validate and synthesize replay stores.", no_args_is_help=True)
app.add_typer(store_app, name="store")
