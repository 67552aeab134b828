"""SC@N: self-consistency, the first and simplest width-only baseline."""

from __future__ import annotations

from autotts.controllers.base import register
from autotts.controllers.voting import majority
from autotts.env.session import ReplaySession


@register("sc", "self-consistency: full-read n branches, majority vote (first seen wins ties)")
class SelfConsistency:
    """Full-read up to ``n`` branches and return the majority of their answers."""

    def __init__(self, n: int = 64) -> None:
        if int(n) < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.n = int(n)

    def solve(self, session: ReplaySession) -> str | None:
        """Full-read ``n`` branches (fewer if the store runs out) and vote."""
        answers = []
        for _ in range(self.n):
            r = session.read()
            if r is None:
                break
            answers.append(r.answer)
        return majority(answers)
