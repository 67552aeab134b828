"""The Typer application objects; command modules attach their commands to them.

Options of the root command (``autotts --version``, ``autotts --debug CMD ...``) live
here; ``-h`` works like ``--help`` on every command (Click passes the help option names
down to sub-commands).
"""

from __future__ import annotations

from typing import Annotated

import typer

#: Set by ``--debug``: errors print their full traceback instead of one line.
DEBUG = {"enabled": False}

app = typer.Typer(
    name="autotts",
    help="Discover test-time-scaling controllers for reasoning LLMs by exact replay search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
store_app = typer.Typer(help="Import, inspect, validate and synthesize replay stores.", no_args_is_help=True)
app.add_typer(store_app, name="store")


def _print_version(value: bool) -> None:
    if value:
        from autotts import __version__

        typer.echo(f"autotts {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="On an error print the full traceback (e.g. of a crashing controller), not one line."
        ),
    ] = False,
) -> None:
    """Discover test-time-scaling controllers for reasoning LLMs by exact replay search.

    Exit codes: 0 success; 1 runtime failure (bad data, a crashing controller, a cell
    timeout); 2 usage or configuration error (bad option, sweep or discover config,
    a missing store); 130 after Ctrl-C, 143 after SIGTERM.
    """
    DEBUG["enabled"] = debug
