"""Proposer over the Anthropic Messages API (``POST {base_url}/v1/messages``).

The key goes in the ``x-api-key`` header only (read from the configured environment
variable, ``ANTHROPIC_API_KEY`` when none is named). Usage counts cache writes and
reads as input tokens, priced at the input price.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from autotts.discovery.config import ProposerConfig
from autotts.discovery.errors import ProposerError
from autotts.discovery.proposers.base import ProposalRequest, ProposalResult, extract_code, redact
from autotts.discovery.proposers.http import HttpProposer, money
from autotts.discovery.records import Usage

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


class AnthropicProposer(HttpProposer):
    """Messages-API proposer (``kind = "anthropic"``)."""

    kind = "anthropic"

    def __init__(
        self,
        cfg: ProposerConfig,
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not cfg.api_key_env:
            cfg = replace(cfg, api_key_env="ANTHROPIC_API_KEY")
        super().__init__(cfg, env=env, sleep=sleep)

    def __repr__(self) -> str:
        return f"AnthropicProposer(model={self.cfg.model!r}, base_url={self.url!r})"

    @property
    def url(self) -> str:
        """The messages URL."""
        base = (self.cfg.base_url or DEFAULT_BASE_URL).rstrip("/")
        if base.endswith("/v1/messages"):
            return base
        return base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def propose(self, request: ProposalRequest) -> ProposalResult:
        """One Messages call; the candidate is the code block in the reply."""
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "max_tokens": self.cfg.max_tokens,
            "system": request.system,
            "messages": [{"role": "user", "content": request.prompt}],
        }
        if self.cfg.temperature is not None:
            body["temperature"] = self.cfg.temperature
        body.update(self.cfg.extra_body)
        headers = {
            "Content-Type": "application/json",
            "x-api-key": self._key,
            "anthropic-version": API_VERSION,
        }
        data, attempts, seconds = self._post(headers, body)
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise ProposerError(f"{self.url}: reply has no content list (keys: {sorted(data)})")
        text = "".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        text = redact(text, [self._key])
        u = data.get("usage") or {}
        tin = int(u.get("input_tokens", 0) or 0) + int(u.get("cache_creation_input_tokens", 0) or 0)
        tin += int(u.get("cache_read_input_tokens", 0) or 0)
        tout = int(u.get("output_tokens", 0) or 0)
        usage = Usage(1, tin, tout, money(self.cfg, tin, tout), seconds, attempts, reported=bool(u))
        code, how = extract_code(text)
        if code is None and data.get("stop_reason") == "max_tokens":
            how += " (stop_reason: max_tokens — raise proposer.max_tokens)"
        return ProposalResult(text, code, usage, "" if code is not None else how)
