"""Proposer over any OpenAI-compatible chat-completions endpoint.

OpenAI, OpenRouter, vLLM, SGLang, llama.cpp and Ollama all speak
``POST {base_url}/chat/completions``. The key is read once from the environment
variable named in the config (none for local servers that need none) and sent only in
the ``Authorization`` header; it is kept out of ``repr``, logs, files and errors.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from autotts.discovery.config import ProposerConfig
from autotts.discovery.errors import ProposerError
from autotts.discovery.proposers.base import ProposalRequest, ProposalResult, extract_code, redact
from autotts.discovery.proposers.retry import RetryPolicy, post_json
from autotts.discovery.records import Usage
from autotts.errors import ConfigError

log = logging.getLogger(__name__)


def read_key(cfg: ProposerConfig, env: Mapping[str, str] | None = None) -> str:
    """The API key from the configured environment variable ('' when none is configured)."""
    if not cfg.api_key_env:
        return ""
    env = os.environ if env is None else env
    key = env.get(cfg.api_key_env, "")
    if not key:
        raise ConfigError(
            f"proposer.api_key_env names {cfg.api_key_env!r}, but that environment variable is not set; "
            f"export it (export {cfg.api_key_env}=...) or leave api_key_env empty for a server without keys"
        )
    return key


def money(cfg: ProposerConfig, input_tokens: int, output_tokens: int) -> float:
    """Cost of a call from the configured per-million-token prices."""
    return input_tokens * cfg.price_input_per_mtok / 1e6 + output_tokens * cfg.price_output_per_mtok / 1e6


def max_money(cfg: ProposerConfig, request: ProposalRequest) -> float:
    """Worst case of one call: a generous token estimate of the prompt plus ``max_tokens`` out."""
    est_in = (len(request.system) + len(request.prompt)) // 3 + 50
    return money(cfg, est_in, cfg.max_tokens)


class OpenAICompatProposer:
    """Chat-completions proposer (``kind = "openai"``)."""

    kind = "openai"

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

    def __repr__(self) -> str:
        return f"OpenAICompatProposer(model={self.cfg.model!r}, base_url={self.cfg.base_url!r})"

    @property
    def url(self) -> str:
        """The chat-completions URL."""
        base = self.cfg.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    def max_cost(self, request: ProposalRequest) -> float:
        """Upper bound of one call's money."""
        return max_money(self.cfg, request)

    def propose(self, request: ProposalRequest) -> ProposalResult:
        """One chat-completions call; the candidate is the code block in the reply."""
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.prompt},
            ],
            "max_tokens": self.cfg.max_tokens,
        }
        if self.cfg.temperature is not None:
            body["temperature"] = self.cfg.temperature
        body.update(self.cfg.extra_body)
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        t0 = time.monotonic()
        data, attempts = post_json(
            self._client,
            self.url,
            headers=headers,
            body=body,
            policy=self._policy,
            secrets=[self._key],
            sleep=self._sleep,
        )
        seconds = time.monotonic() - t0
        try:
            message = data["choices"][0]["message"]
            content = message.get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ProposerError(f"{self.url}: reply has no choices[0].message (keys: {sorted(data)})") from None
        if isinstance(content, list):  # content parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        text = redact(str(content or ""), [self._key])
        usage_raw = data.get("usage") or {}
        tin = int(usage_raw.get("prompt_tokens", 0) or 0)
        tout = int(usage_raw.get("completion_tokens", 0) or 0)
        usage = Usage(1, tin, tout, money(self.cfg, tin, tout), seconds, attempts, reported=bool(usage_raw))
        code, how = extract_code(text)
        return ProposalResult(text, code, usage, "" if code is not None else how)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
