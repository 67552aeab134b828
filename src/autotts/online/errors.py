"""Errors of live deployment, all below :class:`~autotts.errors.AutoTTSError`.

The tree::

    AutoTTSError
    └── OnlineError            a live episode could not produce an answer
        ├── EpisodeStopped     a per-question limit or a shutdown ended the episode early (``.reason``)
        └── UpstreamError      the LLM server failed for good (after the client's retries)

``EpisodeStopped`` is raised *inside* a controller's ``solve`` to unwind it; the runner
catches it and ends the episode with the best answer revealed so far, so a controller
never needs to know about limits.
"""

from __future__ import annotations

from autotts.errors import AutoTTSError


class OnlineError(AutoTTSError):
    """A live episode failed."""


class EpisodeStopped(OnlineError):
    """A limit (``token_budget``, ``deadline``, ``cancelled``) ended the episode; ``.reason`` names it."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class UpstreamError(OnlineError):
    """The LLM server could not serve a step (HTTP error, timeout or dropped connection after retries)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)
