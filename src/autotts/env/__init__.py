"""The replay decision process and the controller-facing session."""

from autotts.env.session import BranchView, ReplaySession, Reveal, TraceEvent

__all__ = ["BranchView", "ReplaySession", "Reveal", "TraceEvent"]
