"""The one layer of retries for every LLM call: backoff on 429, 5xx, timeouts and connection errors.

Retries live here and nowhere else (not in callers, not in loops), so a failing
endpoint costs at most ``max_retries + 1`` attempts per call. A ``Retry-After``
header is honoured, but never beyond ``max_backoff_seconds``: a server that answers
``Retry-After: 3600`` must not stall a run for an hour. Every message that leaves
this module is redacted.

Two drivers share the policy and the verdict on a reply (:func:`assess_response`,
:func:`assess_exception`): the blocking :func:`post_json` used by the discovery
proposers, and the asynchronous multi-server loop of
:class:`~autotts.llm.completions.CompletionsClient`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from autotts.llm.errors import LLMError, LLMRequestError, LLMUnavailableError
from autotts.llm.secrets import redact

log = logging.getLogger(__name__)

#: Statuses worth retrying: rate limits, timeouts, conflicts and server errors (529 = Anthropic overloaded).
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    ``delay`` grows as ``backoff_seconds * 2**attempt`` with ±25 % jitter (so that many
    clients rejected together do not come back together), is raised to a server's
    ``Retry-After`` and always capped at ``max_backoff_seconds``.
    """

    max_retries: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        base = self.backoff_seconds * (2**attempt) * (0.75 + 0.5 * rng.random())
        if retry_after is not None:
            base = max(base, retry_after)
        return float(min(self.max_backoff_seconds, base))


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one attempt failed, already redacted, and whether another attempt may help."""

    message: str
    status_code: int | None
    retryable: bool
    retry_after: float | None = None
    server_fault: bool = False
    """True for failures that say the *server* is unwell (connection refused, timeout, 5xx), not the request."""


class HTTPReply(Protocol):
    """What the verdicts below read of a reply: an ``httpx.Response`` or an :class:`autotts.llm.http11.Reply`."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Headers, looked up by lower-case name."""
        ...

    @property
    def text(self) -> str:
        """The body as text."""
        ...

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not)."""
        ...


def _retry_after(response: HTTPReply) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from LLM servers; the backoff schedule applies instead


def error_excerpt(response: HTTPReply) -> str:
    """The server's own error message, from the usual JSON shapes, else the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
        if "message" in data:
            return str(data["message"])[:300]
        if "detail" in data:  # FastAPI validation errors (llama.cpp's Python server, vLLM)
            return str(data["detail"])[:300]
    return str(data)[:300]


def assess_response(response: HTTPReply, secrets: Sequence[str]) -> Failure | None:
    """None for a success (status < 400), else the redacted reason and whether to retry."""
    status = response.status_code
    if status < 400:
        return None
    message = f"HTTP {status}: {redact(error_excerpt(response), secrets)}"
    retryable = status in RETRY_STATUSES
    if not retryable:
        if status in (401, 403):
            message += " — check the API key's environment variable and the base_url"
        elif status == 404:
            message += " — check base_url and model"
    return Failure(message, status, retryable, _retry_after(response) if retryable else None, status >= 500)


def assess_exception(exc: httpx.HTTPError, secrets: Sequence[str]) -> Failure:
    """The reason for a failed exchange (timeout or transport error); always retryable."""
    if isinstance(exc, httpx.TimeoutException):
        return Failure(f"timed out ({type(exc).__name__})", None, True, None, True)
    return Failure(redact(f"connection failed ({type(exc).__name__}: {exc})", secrets), None, True, None, True)


def decode_json(response: HTTPReply, url: str, secrets: Sequence[str]) -> dict[str, Any]:
    """The JSON object of a successful reply; :class:`LLMError` when it is not one."""
    try:
        data = response.json()
    except ValueError:
        raise LLMError(
            f"the reply is not JSON (HTTP {response.status_code}): " + redact(response.text[:200], secrets),
            url=url,
            status_code=response.status_code,
        ) from None
    if not isinstance(data, dict):
        raise LLMError("the reply is not a JSON object", url=url, status_code=response.status_code)
    return data


def post_json(
    client: httpx.Client,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Mapping[str, Any],
    policy: RetryPolicy,
    secrets: Sequence[str],
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> tuple[dict[str, Any], int]:
    """POST ``body`` as JSON (blocking); return the decoded JSON reply and the number of attempts made.

    Raises :class:`LLMRequestError` when the server refuses the request,
    :class:`LLMUnavailableError` when the retries run out.
    """
    rng = rng or random.Random()
    last: Failure | None = None
    for attempt in range(policy.max_retries + 1):
        try:
            response = client.post(url, headers=dict(headers), json=dict(body))
        except httpx.HTTPError as exc:
            last = assess_exception(exc, secrets)
        else:
            last = assess_response(response, secrets)
            if last is None:
                return decode_json(response, url, secrets), attempt + 1
            if not last.retryable:
                raise LLMRequestError(last.message, url=url, status_code=last.status_code)
        if attempt < policy.max_retries:
            wait = policy.delay(attempt, last.retry_after, rng)
            retries = policy.max_retries
            log.warning("LLM call failed (%s); retry %d/%d in %.1f s", last.message, attempt + 1, retries, wait)
            sleep(wait)
    message = last.message if last else "no attempt made"
    raise LLMUnavailableError(
        f"giving up after {policy.max_retries + 1} attempts; last error: {message}",
        url=url,
        status_code=last.status_code if last else None,
    )
