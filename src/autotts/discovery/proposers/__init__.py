"""Explorers that propose candidate controllers: OpenAI-compatible, Anthropic, agent command, offline evolve."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from autotts.discovery.config import DiscoverConfig
from autotts.discovery.proposers.base import (
    HistoryItem,
    ProposalRequest,
    ProposalResult,
    Proposer,
    extract_code,
    redact,
)

__all__ = [
    "HistoryItem",
    "ProposalRequest",
    "ProposalResult",
    "Proposer",
    "extract_code",
    "make_proposer",
    "redact",
]


def make_proposer(
    config: DiscoverConfig,
    *,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Proposer:
    """The proposer named by ``config.proposer.kind`` (reads the API key from ``env``/os.environ)."""
    import time

    cfg = config.proposer
    pause = sleep or time.sleep
    if cfg.kind == "openai":
        from autotts.discovery.proposers.openai_compat import OpenAICompatProposer

        return OpenAICompatProposer(cfg, env=env, sleep=pause)
    if cfg.kind == "anthropic":
        from autotts.discovery.proposers.anthropic import AnthropicProposer

        return AnthropicProposer(cfg, env=env, sleep=pause)
    if cfg.kind == "agent":
        from autotts.discovery.proposers.agent import AgentProposer

        return AgentProposer(cfg)
    from autotts.discovery.proposers.evolve import EvolveProposer

    return EvolveProposer(cfg, config.selection)
