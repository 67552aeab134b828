"""Entry point of the ``autotts`` command: wires the command modules and maps errors to exit codes.

Exit codes: 0 ok; 1 runtime failure (bad data, a failed controller, a cell timeout);
2 usage or configuration error (bad option value, sweep/discover config, missing store);
130 after Ctrl-C and 143 after SIGTERM (see :mod:`autotts.cli.signals`).
Library errors (:class:`~autotts.errors.AutoTTSError`) are printed as one clear line,
never as a traceback, unless ``--debug`` asks for it.
"""

from __future__ import annotations

import logging
import sys
import traceback

from rich.markup import escape

from autotts.cli import (  # noqa: F401  (attach commands)
    collect_cmd,
    controllers_cmd,
    demo_cmd,
    discover_cmd,
    eval_cmd,
    report_cmd,
    run_cmd,
    serve_cmd,
    signals,
    store_cmd,
    synth_cmd,
)
from autotts.cli.app import DEBUG, app
from autotts.cli.output import err
from autotts.errors import AutoTTSError, ConfigError, ControllerSpecError, StoreNotFoundError

#: Errors that mean "the request was wrong" (exit 2) rather than "running it failed" (exit 1).
USAGE_ERRORS = (ConfigError, ControllerSpecError, StoreNotFoundError)


def _report(exc: AutoTTSError) -> None:
    if DEBUG["enabled"]:
        # A controller's traceback is kept as text: it may come from a worker process.
        text = getattr(exc, "traceback_text", None) or "".join(traceback.format_exception(exc))
        err.print(text, markup=False, highlight=False, end="")
    err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (also used by tests)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    DEBUG["enabled"] = False
    try:
        app(args=argv, prog_name="autotts")  # standalone: usage errors print and exit 2
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except USAGE_ERRORS as exc:
        _report(exc)
        return 2
    except AutoTTSError as exc:
        _report(exc)
        return 1
    except KeyboardInterrupt as exc:
        err.print("interrupted")
        return signals.exit_code(exc)
    return 0


def _entry() -> None:
    signals.install()
    sys.exit(main())


if __name__ == "__main__":
    _entry()
