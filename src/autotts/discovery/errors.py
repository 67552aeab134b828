"""Errors of the discovery loop (all below :class:`~autotts.errors.AutoTTSError`).

A *bad candidate* is never an error: it is data (a status in its record). These are
for the loop's own infrastructure::

    AutoTTSError
    └── DiscoveryError         the discovery run cannot continue (run directory, phases)
        ├── RunDirError        a run directory is missing, foreign or corrupt
        └── ProposerError      the explorer could not be called (auth, retries exhausted, agent missing)
"""

from __future__ import annotations

from autotts.errors import AutoTTSError


class DiscoveryError(AutoTTSError):
    """The discovery run cannot continue; the run directory stays resumable."""


class RunDirError(DiscoveryError):
    """A run directory is missing, was not written by ``autotts discover`` or is damaged."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ProposerError(DiscoveryError):
    """A proposer call failed for good (bad key, bad request, retries exhausted).

    The message never contains the API key: every text that reaches it is redacted.
    """

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False) -> None:
        self.status_code = status_code
        self.retryable = retryable
        super().__init__(message)
