"""A controller assembled from grammar components; the ``evolve`` proposer edits only ``GENOME``.

Components: how branches are consumed (``mode``: probe them interval by interval, or
read them in full); when to stop (``stop``: vote confidence, unanimity, a vote margin,
or ``momentum`` — an exponential moving average of the vote confidence that must be high
*and* not falling by more than ``slack`` over the last ``window`` steps — always after
``min_votes`` votes); which answers vote (``vote``: finished branches only, or also the
latest probed answers); when to open more branches (``widen``: every step, when
confidence is below the threshold, when nothing is alive, or ``trend`` — when the
confidence average has risen by at most ``trend`` over the window while still below the
threshold); whether to abandon branches that keep disagreeing with the leader
(``prune``: after ``patience`` disagreeing steps, never leaving fewer than ``keep``
alive); and which alive branches to deepen (``alloc``: all, only the leader's, the
deepest half, or ``aligned`` — all, with ``burst`` intervals for branches agreeing with
the leader and one for the others).

Every numeric setting is ``a + b·β``, rounded and clipped. The genes whose larger values
mean more compute have ``b ≥ 0``; the smoothing weight ``alpha``, ``slack`` and ``trend``
may fall with β (a smoother, stricter average spends more). ``max_branches`` always
reaches the full 64-branch budget at β = 1 (the project's rule: β = 1 is the
conservative end). The starting genome reads branches in full and stops on vote
confidence: at β = 0 it reads 3-4 branches, at β = 1 it reads at least 24 and up to 64
before trusting the vote. This file is itself a valid candidate program: the proposer
emits it with a different ``GENOME``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

# --- genome start ---
GENOME: dict[str, Any] = {
    "mode": "read",
    "stop": "confidence",
    "vote": "finals",
    "widen": "stall",
    "prune": "none",
    "alloc": "all",
    "n_init": (1.0, 0.0),
    "max_branches": (4.0, 60.0),
    "threshold": (0.9, 0.09),
    "margin": (2.0, 1.0),
    "min_votes": (2.0, 22.0),
    "widen_size": (1.0, 1.0),
    "patience": (4.0, 4.0),
    "warm_up": (2.0, 2.0),
    "burst": (1.0, 0.0),
    "alpha": (0.6, -0.3),
    "window": (3.0, 4.0),
    "slack": (0.04, -0.03),
    "trend": (0.04, -0.03),
    "keep": (2.0, 0.0),
}
# --- genome end ---


@lru_cache(maxsize=4096)
def confidence(top1: int, top2: int) -> float:
    """``1 - I_0.5(top1 + 1, top2 + 1)``, exactly, as a binomial tail (integer arguments)."""
    if top1 <= 0:
        return 0.0
    n = top1 + top2 + 1
    return sum(math.comb(n, j) for j in range(top1 + 1)) / 2.0**n


def leader(votes: list[str]) -> tuple[str | None, int, int]:
    """``(majority, top1, top2)`` with first-seen tie-breaking."""
    counts: dict[str, int] = {}
    for v in votes:
        counts[v] = counts.get(v, 0) + 1
    best: str | None = None
    top1 = top2 = 0
    for a, c in counts.items():
        if c > top1:
            best, top1, top2 = a, c, top1
        elif c > top2:
            top2 = c
    return best, top1, top2


def settings(genome: dict[str, Any], beta: float) -> dict[str, Any]:
    """The settings ``genome`` gives at ``beta`` (clipped to [0, 1]), each rounded and clipped."""
    b = min(1.0, max(0.0, float(beta)))
    g = genome

    def lin(name: str) -> float:
        lo, slope = g[name]
        return float(lo) + float(slope) * b

    n_init = min(64, max(1, round(lin("n_init"))))
    return {
        "mode": g["mode"],
        "stop": g["stop"],
        "vote": g["vote"],
        "widen": g["widen"],
        "prune": g["prune"],
        "alloc": g["alloc"],
        "n_init": n_init,
        "max_branches": min(64, max(n_init, round(lin("max_branches")))),
        "threshold": round(min(0.999, max(0.5, lin("threshold"))), 4),
        "margin": max(1, round(lin("margin"))),
        "min_votes": max(1, round(lin("min_votes"))),
        "widen_size": max(1, round(lin("widen_size"))),
        "patience": max(1, round(lin("patience"))),
        "warm_up": max(0, round(lin("warm_up"))),
        "burst": max(1, round(lin("burst"))),
        "alpha": round(min(1.0, max(0.05, lin("alpha"))), 4),
        "window": max(2, round(lin("window"))),
        "slack": round(min(0.5, max(0.0, lin("slack"))), 4),
        "trend": round(min(0.5, max(-0.5, lin("trend"))), 4),
        "keep": max(1, round(lin("keep"))),
    }


class _Momentum:
    """The moving average of vote confidence over the steps of one question, and its trend."""

    def __init__(self, alpha: float, window: int) -> None:
        self.alpha = alpha
        self.window = window
        self.ema = 0.0
        self.history: list[float] = []

    def update(self, conf: float) -> None:
        self.ema = (1.0 - self.alpha) * self.ema + self.alpha * conf
        self.history.append(self.ema)
        if len(self.history) > self.window:
            del self.history[0]

    @property
    def trend(self) -> float:
        """How much the average rose over the window (0 before two steps)."""
        return self.history[-1] - self.history[0] if len(self.history) >= 2 else 0.0


class EvolvedController:
    """A grammar-built controller; ``beta`` in [0, 1] trades compute for accuracy."""

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = min(1.0, max(0.0, float(beta)))
        self.settings = self.schedule(self.beta)

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        """Every setting as a monotone function of ``beta``."""
        return settings(GENOME, beta)

    def _stop(self, votes: list[str], step: int, momentum: _Momentum) -> tuple[bool, str | None, float]:
        """Whether to answer now, the current leader and the vote confidence (the average updated)."""
        s = self.settings
        winner, top1, top2 = leader(votes)
        conf = confidence(top1, top2)
        momentum.update(conf)
        if len(votes) < s["min_votes"] or winner is None:
            return False, winner, conf
        if s["stop"] == "confidence":
            return conf >= s["threshold"], winner, conf
        if s["stop"] == "unanimous":
            return top2 == 0, winner, conf
        if s["stop"] == "momentum":
            steady = momentum.ema >= s["threshold"] and momentum.trend >= -s["slack"]
            return step >= s["warm_up"] and steady, winner, conf
        return top1 - top2 >= s["margin"], winner, conf

    def solve(self, session: Any) -> str | None:
        """Answer one question through ``session``."""
        if self.settings["mode"] == "read":
            return self._solve_read(session)
        return self._solve_probe(session)

    def _solve_read(self, session: Any) -> str | None:
        pool: list[str] = []
        momentum = _Momentum(self.settings["alpha"], self.settings["window"])
        for step in range(self.settings["max_branches"]):
            r = session.read()
            if r is None:
                break
            pool.append(r.answer)
            done, winner, _ = self._stop(pool, step, momentum)
            if done:
                return winner
        return leader(pool)[0]

    def _solve_probe(self, session: Any) -> str | None:
        s = self.settings
        pool: list[str] = []
        latest: dict[int, str] = {}
        disagree: dict[int, int] = {}
        momentum = _Momentum(s["alpha"], s["window"])

        def open_some(k: int) -> int:
            opened = 0
            for _ in range(k):
                if session.n_opened >= s["max_branches"]:
                    break
                r = session.open()
                if r is None:
                    break
                opened += 1
                latest[r.branch] = r.answer
                disagree[r.branch] = 0
                if r.finished:
                    pool.append(r.answer)
            return opened

        if open_some(s["n_init"]) == 0:
            return None
        for step in range(2000):
            votes = list(pool)
            if s["vote"] == "latest":
                votes += [latest[b] for b in session.alive() if latest[b] != "ERR"]
            done, winner, conf = self._stop(votes, step, momentum)
            if done:
                return winner
            if s["prune"] == "patience" and step >= s["warm_up"] and winner is not None:
                alive = session.alive()
                for b in alive:
                    disagree[b] = disagree[b] + 1 if latest[b] != winner else 0
                worst = sorted((b for b in alive if disagree[b] >= s["patience"]), key=lambda b: -disagree[b])
                for b in worst[: max(0, len(alive) - s["keep"])]:
                    session.prune(b)
            alive = session.alive()
            aligned = s["alloc"] == "aligned" and step >= s["warm_up"] and winner is not None
            if s["alloc"] == "leaders" and winner is not None:
                chosen = [b for b in alive if latest[b] == winner] or alive
            elif s["alloc"] == "deepest":
                chosen = sorted(alive, key=lambda b: -session.depth(b))[: max(1, (len(alive) + 1) // 2)]
            elif s["alloc"] == "aligned":
                chosen = sorted(alive, key=lambda b: -session.depth(b))
            else:
                chosen = alive
            for b in chosen:
                burst = s["burst"] if not aligned or latest[b] == winner else 1
                for _ in range(burst):
                    r = session.advance(b)
                    latest[b] = r.answer
                    if r.finished:
                        pool.append(r.answer)
                        break
            room = session.n_opened < s["max_branches"] and session.n_available > 0
            if room:
                idle = not session.alive()
                late = step >= s["warm_up"] // 2
                below = conf < s["threshold"]
                stalled = s["widen"] == "stall" and late and below
                flat = s["widen"] == "trend" and late and momentum.ema < s["threshold"]
                if flat:
                    flat = momentum.trend <= s["trend"]
                if idle or stalled or flat or s["widen"] == "batch":
                    open_some(s["widen_size"])
            if not session.alive() and (session.n_opened >= s["max_branches"] or session.n_available == 0):
                break
        if pool:
            return leader(pool)[0]
        rest = [latest[b] for b in latest if not session.is_pruned(b) and latest[b] != "ERR"]
        return leader(rest)[0]
