"""Run protocols, re-exported where evaluation code has always found them.

The protocols decide the branch order a session replays, so they live next to the
session in :mod:`autotts.env.protocols`; this module keeps the old import path working.
"""

from autotts.env.protocols import PROTOCOLS, Protocol, shuffle_order, subsample_order

__all__ = ["PROTOCOLS", "Protocol", "shuffle_order", "subsample_order"]
