"""The one HTTP client layer for LLM servers, shared by discovery proposers, ``collect`` and live sessions.

* :mod:`autotts.llm.retry` — the retry policy (backoff with jitter, ``Retry-After``
  honoured up to a cap) and the blocking :func:`post_json` used by the proposers;
* :mod:`autotts.llm.completions` — the async OpenAI-compatible completions client over
  several servers (bounded in-flight requests per server, dead-server failover);
* :mod:`autotts.llm.secrets` — keys read from an environment variable *name*, and
  redaction;
* :mod:`autotts.llm.errors` — :class:`LLMError` and its two kinds.

This package imports nothing from autotts but :mod:`autotts.errors`.
"""

from __future__ import annotations

from autotts.llm.completions import ClientStats, Completion, CompletionRequest, CompletionsClient, EncodedPrompt
from autotts.llm.errors import LLMError, LLMRequestError, LLMUnavailableError
from autotts.llm.retry import RETRY_STATUSES, RetryPolicy, post_json
from autotts.llm.secrets import REDACTED, read_key, redact

__all__ = [
    "REDACTED",
    "RETRY_STATUSES",
    "ClientStats",
    "Completion",
    "CompletionRequest",
    "CompletionsClient",
    "EncodedPrompt",
    "LLMError",
    "LLMRequestError",
    "LLMUnavailableError",
    "RetryPolicy",
    "post_json",
    "read_key",
    "redact",
]
