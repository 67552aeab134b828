"""Agentic discovery of test-time-scaling controllers (``autotts discover``).

An explorer (an LLM over HTTP, a coding-agent command, or the offline evolutionary
proposer) proposes controller programs; each is statically checked, run in a limited
subprocess without gold answers, replay-scored over a β sweep, leak-tested and
β-checked; the history (code, curves, trace digests) feeds the next proposal. At the
end the best candidate is selected on the search stores and evaluated against the
baselines on search and held-out stores. Entry points: :func:`load_config`,
:class:`DiscoveryLoop`.

Names are imported lazily: the sandbox child imports a submodule of this package and
must not pay for the whole loop (numpy, scipy, the evaluation runner) at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "DiscoverConfig": "autotts.discovery.config",
    "load_config": "autotts.discovery.config",
    "DiscoveryLoop": "autotts.discovery.loop",
    "NullReporter": "autotts.discovery.loop",
    "Reporter": "autotts.discovery.loop",
    "RunOutcome": "autotts.discovery.loop",
    "CandidateRecord": "autotts.discovery.records",
    "CurvePoint": "autotts.discovery.records",
    "Finding": "autotts.discovery.records",
    "Status": "autotts.discovery.records",
    "Usage": "autotts.discovery.records",
}

__all__ = [
    "CandidateRecord",
    "CurvePoint",
    "DiscoverConfig",
    "DiscoveryLoop",
    "Finding",
    "NullReporter",
    "Reporter",
    "RunOutcome",
    "Status",
    "Usage",
    "load_config",
]

if TYPE_CHECKING:
    from autotts.discovery.config import DiscoverConfig, load_config
    from autotts.discovery.loop import DiscoveryLoop, NullReporter, Reporter, RunOutcome
    from autotts.discovery.records import CandidateRecord, CurvePoint, Finding, Status, Usage


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autotts.discovery' has no attribute {name!r}")
