"""Errors of the LLM HTTP layer, all below :class:`~autotts.errors.AutoTTSError`.

The tree::

    AutoTTSError
    └── LLMError                  a call to an LLM server failed for good
        ├── LLMRequestError       the server refused the request itself (bad model name, bad
        │                         prompt format, bad key): retrying cannot help
        └── LLMUnavailableError   the servers stayed unreachable or overloaded through the
                                  whole retry budget

Every message is redacted before it reaches an exception: no API key ever appears in one.
"""

from __future__ import annotations

from autotts.errors import AutoTTSError


class LLMError(AutoTTSError):
    """A call to an LLM server failed for good; ``status_code`` is the last HTTP status (None without one)."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.url = url
        self.status_code = status_code
        self.retryable = retryable
        super().__init__(f"{url}: {message}" if url else message)


class LLMRequestError(LLMError):
    """The server answered, but refused this request (4xx other than rate limits)."""


class LLMUnavailableError(LLMError):
    """No server answered usefully within the retry budget (connection errors, timeouts, 429, 5xx)."""

    def __init__(self, message: str, *, url: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message, url=url, status_code=status_code, retryable=True)
