"""The one layer of retries for HTTP proposers: exponential backoff on 429, 5xx and timeouts.

Retries live here and nowhere else (not in the client, not in the loop), so a failing
endpoint costs at most ``max_retries + 1`` attempts. A ``Retry-After`` header is
honoured up to the backoff cap. Every message that leaves this module is redacted.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from autotts.discovery.errors import ProposerError
from autotts.discovery.proposers.base import redact

log = logging.getLogger(__name__)

#: Statuses worth retrying: rate limits, timeouts, conflicts and server errors (529 = Anthropic overloaded).
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry."""

    max_retries: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based), with ±25 % jitter."""
        base = self.backoff_seconds * (2**attempt) * (0.75 + 0.5 * rng.random())
        if retry_after is not None:
            base = max(base, retry_after)
        return float(min(self.max_backoff_seconds, base))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_excerpt(response: httpx.Response) -> str:
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
    return str(data)[:300]


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
    """POST ``body`` as JSON; return the decoded JSON reply and the number of attempts made.

    Retries (with backoff) on connection errors, timeouts and :data:`RETRY_STATUSES`;
    raises :class:`ProposerError` for any other failure or when retries run out.
    """
    rng = rng or random.Random()
    last = ""
    last_status: int | None = None
    for attempt in range(policy.max_retries + 1):
        retry_after: float | None = None
        try:
            response = client.post(url, headers=dict(headers), json=dict(body))
        except httpx.TimeoutException as exc:
            last, last_status = f"timed out ({type(exc).__name__})", None
        except httpx.TransportError as exc:
            last, last_status = f"connection failed ({type(exc).__name__}: {exc})", None
        else:
            if response.status_code < 400:
                try:
                    data = response.json()
                except ValueError:
                    raise ProposerError(
                        f"{url}: the reply is not JSON (HTTP {response.status_code}): "
                        + redact(response.text[:200], secrets),
                        status_code=response.status_code,
                    ) from None
                if not isinstance(data, dict):
                    raise ProposerError(f"{url}: the reply is not a JSON object", status_code=response.status_code)
                return data, attempt + 1
            excerpt = redact(_error_excerpt(response), secrets)
            last, last_status = f"HTTP {response.status_code}: {excerpt}", response.status_code
            if response.status_code not in RETRY_STATUSES:
                hint = ""
                if response.status_code in (401, 403):
                    hint = " — check the API key's environment variable and the base_url"
                elif response.status_code == 404:
                    hint = " — check base_url and model"
                raise ProposerError(f"{url}: {last}{hint}", status_code=response.status_code)
            retry_after = _retry_after(response)
        last = redact(last, secrets)
        if attempt < policy.max_retries:
            wait = policy.delay(attempt, retry_after, rng)
            log.warning("proposer call failed (%s); retry %d/%d in %.1f s", last, attempt + 1, policy.max_retries, wait)
            sleep(wait)
    raise ProposerError(
        f"{url}: giving up after {policy.max_retries + 1} attempts; last error: {last}",
        status_code=last_status,
        retryable=True,
    )
