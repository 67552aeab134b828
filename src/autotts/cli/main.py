"""Entry point of the ``autotts`` command: wires the command modules and maps errors to exit codes.

Exit codes: 0 ok, 1 failure (bad data, failed controller, ...), 2 usage error.
Library errors (:class:`~autotts.errors.AutoTTSError`) are printed as one clear line,
never as a traceback.
"""

from __future__ import annotations

import logging
import signal
import sys

from rich.markup import escape

from autotts.cli import (  # noqa: F401  (attach commands)
    collect_cmd,
    demo_cmd,
    discover_cmd,
    eval_cmd,
    run_cmd,
    serve_cmd,
    store_cmd,
    synth_cmd,
)
from autotts.cli.app import app
from autotts.cli.output import err
from autotts.errors import AutoTTSError, ConfigError, ControllerSpecError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (also used by tests)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        app(args=argv, prog_name="autotts")  # standalone: usage errors print and exit 2
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except (ConfigError, ControllerSpecError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        return 2
    except AutoTTSError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def _on_sigterm(signum: int, frame: object) -> None:
    # Treat `kill` like Ctrl-C: unwinding runs the finally blocks that flush streamed
    # results and stop worker and sandbox processes.
    raise KeyboardInterrupt


def _entry() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(main())


if __name__ == "__main__":
    _entry()
