"""What the HTTP proposers share: key lookup, money accounting, the client and the retried POST.

The key is read once from the environment variable named in the config and is handed
to :func:`autotts.llm.post_json` (the one retry layer, shared with ``collect`` and live
sessions) as a secret to redact, so it never reaches ``repr``, logs, files or errors.
Failures of the HTTP layer (:class:`~autotts.llm.LLMError`) become
:class:`~autotts.discovery.errors.ProposerError` here, with the same message.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from autotts.discovery.config import ProposerConfig
from autotts.discovery.errors import ProposerError
from autotts.discovery.proposers.base import ProposalRequest
from autotts.llm import LLMError, RetryPolicy, post_json
from autotts.llm import read_key as read_env_key


def read_key(cfg: ProposerConfig, env: Mapping[str, str] | None = None) -> str:
    """The API key from the configured environment variable ('' when none is configured)."""
    return read_env_key(cfg.api_key_env, env, option="proposer.api_key_env")


def money(cfg: ProposerConfig, input_tokens: int, output_tokens: int) -> float:
    """Cost of a call from the configured per-million-token prices."""
    return input_tokens * cfg.price_input_per_mtok / 1e6 + output_tokens * cfg.price_output_per_mtok / 1e6


def max_money(cfg: ProposerConfig, request: ProposalRequest) -> float:
    """Worst case of one call: a generous token estimate of the prompt plus ``max_tokens`` out."""
    est_in = (len(request.system) + len(request.prompt)) // 3 + 50
    return money(cfg, est_in, cfg.max_tokens)


class HttpProposer(abc.ABC):
    """Base of the proposers that POST JSON to an LLM API with one layer of retries."""

    def __init__(
        self,
        cfg: ProposerConfig,
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self._key = read_key(cfg, env)
        self._sleep = sleep
        self._client = httpx.Client(timeout=httpx.Timeout(cfg.timeout_seconds, connect=min(30.0, cfg.timeout_seconds)))
        self._policy = RetryPolicy(cfg.max_retries, cfg.backoff_seconds, cfg.max_backoff_seconds)

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The endpoint URL (defined by each API)."""

    def max_cost(self, request: ProposalRequest) -> float:
        """Upper bound of one call's money."""
        return max_money(self.cfg, request)

    def _post(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
        """POST with retries; return the JSON reply, the attempts made and the seconds taken."""
        t0 = time.monotonic()
        try:
            data, attempts = post_json(
                self._client,
                self.url,
                headers=headers,
                body=body,
                policy=self._policy,
                secrets=[self._key],
                sleep=self._sleep,
            )
        except LLMError as exc:
            raise ProposerError(str(exc), status_code=exc.status_code, retryable=exc.retryable) from None
        return data, attempts, time.monotonic() - t0

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
