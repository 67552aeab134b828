"""Ctrl-C and ``kill``: both unwind the command like an exception, with their own exit codes.

SIGTERM is turned into :class:`Terminated`, a ``KeyboardInterrupt``, so that the same
``finally`` blocks run for both signals (streamed results are flushed, worker and
sandbox processes are stopped). The exit code follows the shell convention 128 + signal
number: 130 after SIGINT, 143 after SIGTERM.
"""

from __future__ import annotations

import signal
from types import FrameType

#: Exit code after Ctrl-C (SIGINT).
EXIT_SIGINT = 128 + signal.SIGINT
#: Exit code after ``kill`` (SIGTERM).
EXIT_SIGTERM = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def exit_code(exc: KeyboardInterrupt) -> int:
    """The exit code for an interruption: 143 after SIGTERM, 130 after Ctrl-C."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def install() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread."""
    signal.signal(signal.SIGTERM, _on_sigterm)
