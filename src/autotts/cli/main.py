"""Entry point of the ``autotts`` command: wires the command modules and maps errors to exit codes.

Exit codes: 0 ok, 1 failure (bad data, failed controller, ...), 2 usage error.
Library errors (:class:`~autotts.errors.AutoTTSError`) are printed as one clear line,
never as a traceback.
"""

from __future__ import annotations

import logging
import sys

from autotts.cli import demo_cmd, discover_cmd, eval_cmd, store_cmd, synth_cmd  # noqa: F401  (attach commands)
from autotts.cli.app import app
from autotts.cli.output import err
from rich.markup import escape
from autotts.errors import AutoTTSError, ConfigError, ControllerSpecError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (also used by tests)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        app(args=argv, standalone_mode=False)
    except SystemExit as exc:  # typer.Exit inside standalone_mode=False surfaces as an exit code
        return int(exc.code or 0)
    except (ConfigError, ControllerSpecError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        return 2
    except AutoTTSError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Exit):
            return int(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            err.print("aborted")
            return 1
        raise
    return 0


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
