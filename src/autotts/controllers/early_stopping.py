"""ESC: early-stopping self-consistency, which samples in windows and stops on a unanimous one."""

from __future__ import annotations

from autotts.controllers.base import register
from autotts.controllers.voting import majority
from autotts.env.session import ReplaySession


@register("esc", "early-stopping self-consistency: full-read in windows, stop when a window is unanimous")
class EarlyStoppingSelfConsistency:
    """Full-read ``max_samples // window`` windows of ``window`` branches; stop on a unanimous window.

    A window the store cannot fill is read as far as it goes (and is still checked for
    unanimity); an empty window is skipped. Without a unanimous window the majority of
    everything read is returned.
    """

    def __init__(self, max_samples: int = 64, window: int = 8) -> None:
        if int(window) < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if int(max_samples) < int(window):
            raise ValueError(f"max_samples ({max_samples}) must be at least window ({window})")
        self.max_samples = int(max_samples)
        self.window = int(window)

    def solve(self, session: ReplaySession) -> str | None:
        """Read window by window; return a unanimous window's answer or the pool majority."""
        pool: list[str] = []
        for _ in range(self.max_samples // self.window):
            answers: list[str] = []
            for _ in range(self.window):
                r = session.read()
                if r is None:
                    break
                answers.append(r.answer)
            if not answers:
                continue
            pool.extend(answers)
            first = answers[0]
            if all(a == first for a in answers):
                return first
        return majority(pool)
