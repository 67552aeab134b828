"""Console objects and helpers shared by the command modules (the only place that prints)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

# Rich falls back to 80 columns when output is not a terminal, which wraps result
# tables into unreadable cells in logs and CI; use a wide fixed width there instead.
_WIDTH = None if sys.stdout.isatty() else 160

#: Results go to stdout.
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
#: Diagnostics and progress go to stderr.
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


def fail(message: str, code: int = 1) -> None:
    """Print an error on stderr and exit with ``code`` (1 failure, 2 usage)."""
    import typer

    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)


def progress_bar(*extra_columns: ProgressColumn, console: Console | None = None) -> Progress:
    """The progress bar every command uses: on stderr (or ``console``), cleared when done.

    stdout is not redirected through it, so results stay on stdout even when only
    stderr is a terminal.
    """
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *extra_columns,
        console=console or err,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
