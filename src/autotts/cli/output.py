"""Console objects and helpers shared by the command modules (the only place that prints)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

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
