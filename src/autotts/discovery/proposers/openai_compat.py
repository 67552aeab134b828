"""Proposer over any OpenAI-compatible chat-completions endpoint.

OpenAI, OpenRouter, vLLM, SGLang, llama.cpp and Ollama all speak
``POST {base_url}/chat/completions``. The key is read once from the environment
variable named in the config (none for local servers that need none) and sent only in
the ``Authorization`` header; it is kept out of ``repr``, logs, files and errors.
"""

from __future__ import annotations

import logging
from typing import Any

from autotts.discovery.errors import ProposerError
from autotts.discovery.proposers.base import ProposalRequest, ProposalResult, extract_code, redact
from autotts.discovery.proposers.http import HttpProposer, money
from autotts.discovery.records import Usage

log = logging.getLogger(__name__)


class OpenAICompatProposer(HttpProposer):
    """Chat-completions proposer (``kind = "openai"``)."""

    kind = "openai"

    def __repr__(self) -> str:
        return f"OpenAICompatProposer(model={self.cfg.model!r}, base_url={self.cfg.base_url!r})"

    @property
    def url(self) -> str:
        """The chat-completions URL."""
        base = self.cfg.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

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
        data, attempts, seconds = self._post(headers, body)
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
