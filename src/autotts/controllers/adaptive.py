"""ASC: adaptive self-consistency, a width-only baseline that stops sampling once confident.

After every full read (from the second on) the controller asks how likely the current
leader is the true majority under a Beta posterior over the top two vote counts, and
stops as soon as that probability strictly exceeds ``threshold``.
"""

from __future__ import annotations

from autotts.controllers.base import register
from autotts.controllers.voting import beta_confidence
from autotts.env.session import ReplaySession


@register("asc", "adaptive self-consistency: full-read until beta confidence > threshold (max_samples cap)")
class AdaptiveSelfConsistency:
    """Full-read branches one at a time; stop once ``beta_confidence(top1, top2) > threshold``.

    Vote counts are kept incrementally (first-seen order) so each read costs O(distinct
    answers) instead of a recount, with exactly the reference tie-breaking.
    """

    def __init__(self, max_samples: int = 64, threshold: float = 0.95) -> None:
        if int(max_samples) < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples}")
        if not 0.0 <= float(threshold) <= 1.0:  # also refuses NaN
            raise ValueError(
                f"threshold is a probability and must be in [0, 1], got {threshold} "
                "(above 1 it would never stop early and silently become SC@max_samples)"
            )
        self.max_samples = int(max_samples)
        self.threshold = float(threshold)

    def solve(self, session: ReplaySession) -> str | None:
        """Read until confident or out of samples; return the (first-seen) majority."""
        counts: dict[str, int] = {}  # insertion order = first-seen order
        n = 0
        for _ in range(self.max_samples):
            r = session.read()
            if r is None:
                break
            counts[r.answer] = counts.get(r.answer, 0) + 1
            n += 1
            if n >= 2:
                winner, top1, top2 = _leader(counts)
                if beta_confidence(top1, top2) > self.threshold:
                    return winner
        return _leader(counts)[0]


def _leader(counts: dict[str, int]) -> tuple[str | None, int, int]:
    """``(majority, top1, top2)`` from first-seen-ordered counts (a later answer needs more votes)."""
    winner: str | None = None
    top1 = top2 = 0
    for a, c in counts.items():
        if c > top1:
            winner, top1, top2 = a, c, top1
        elif c > top2:
            top2 = c
    return winner, top1, top2
