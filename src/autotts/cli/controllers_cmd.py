"""``autotts controllers``: every registered controller, its parameters and defaults, one line each."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from autotts.cli.app import app
from autotts.cli.output import out


@app.command("controllers")
def controllers_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON instead of a table.")] = False,
) -> None:
    """List the built-in controllers: name, parameters with defaults, and what each does."""
    from autotts.controllers.spec import controller_catalog

    catalog = controller_catalog()
    if as_json:
        out.print(json.dumps([entry.to_dict() for entry in catalog], indent=2), markup=False, highlight=False)
        return
    table = Table(title="controllers (use as NAME or NAME:k=v,... with --controller)")
    table.add_column("name", no_wrap=True)
    table.add_column("parameters (default)")
    table.add_column("what it does")
    for entry in catalog:
        params = ", ".join(f"{p.name}={p.default_text}" for p in entry.parameters) or "-"
        table.add_row(entry.name, params, entry.description)
    out.print(table)
    out.print("A file controller is named as path/to/file.py:ClassName[:k=v,...].", markup=False)
