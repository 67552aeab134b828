"""CMC, the Confidence Momentum Controller: the controller the AutoTTS discovery run found.

CMC grows a small set of chains, keeps the answers of finished chains in a *pool*, and
tracks an exponential moving average (EMA) of the pool's beta confidence. It stops when
that momentum is high and not falling, abandons chains that keep disagreeing with the
pool (always keeping two alive), deepens chains that agree with the pool faster, and
opens new chains when confidence stalls. Every setting is a function of one knob
``beta`` (see :meth:`ConfidenceMomentum.schedule`).
"""

from __future__ import annotations

from typing import Any

from autotts.controllers.base import BetaController, clamp_beta, register
from autotts.controllers.voting import beta_confidence, majority
from autotts.env.session import ReplaySession

#: Upper bound on the main loop, as in the published controller.
MAX_STEPS = 500


@register("cmc", "Confidence Momentum Controller (discovered): EMA of pool confidence, one knob beta")
class ConfidenceMomentum(BetaController):
    """The discovered Confidence Momentum Controller; ``beta`` in [0, 1] trades cost for accuracy."""

    max_steps = MAX_STEPS
    """Step cap of the loop (fixed; the compiled kernel reads it from here)."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__(beta)

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        """Every internal setting as a function of ``beta`` (clipped to [0, 1]).

        Integers use Python's half-to-even ``round`` and real numbers are rounded to 4
        decimals, exactly as the published controller does; both change results.
        """
        b = clamp_beta(beta)
        return {
            "n_init": max(2, round(2 + 6 * b)),
            "max_branches": min(64, round(4 + 60 * b)),
            "warm_up": max(2, round(2 + 8 * b)),
            "abandon_patience": max(3, round(3 + 9 * b)),
            "window": max(2, round(2 + 6 * b)),
            "alpha": round(0.70 - 0.40 * b, 4),
            "conf_threshold": round(0.85 + 0.12 * b, 4),
            "slack": round(0.04 - 0.03 * b, 4),
            "aligned_burst": max(1, round(1 + 2 * b)),
            "widen_burst": max(1, round(1 + 3 * b)),
            "trend_threshold": round(0.04 - 0.03 * b, 4),
            "min_complete": max(2, round(2 + 3 * b)),
        }

    def solve(self, session: ReplaySession) -> str | None:
        """Run the CMC loop of ``docs/controllers.md`` on one question."""
        s = self.settings
        n_init: int = s["n_init"]
        max_branches: int = s["max_branches"]
        warm_up: int = s["warm_up"]
        abandon_patience: int = s["abandon_patience"]
        window: int = s["window"]
        alpha: float = s["alpha"]
        conf_threshold: float = s["conf_threshold"]
        slack: float = s["slack"]
        aligned_burst: int = s["aligned_burst"]
        widen_burst: int = s["widen_burst"]
        trend_threshold: float = s["trend_threshold"]
        min_complete: int = s["min_complete"]

        ids: list[int] = []
        latest: list[str] = []
        finished: list[bool] = []
        abandoned: list[bool] = []
        advances: list[int] = []
        disagree: list[int] = []
        pool = _Pool()

        def open_branch() -> bool:
            r = session.open()
            if r is None:
                return False
            ids.append(r.branch)
            latest.append(r.answer)
            finished.append(r.finished)
            abandoned.append(False)
            advances.append(0)
            disagree.append(0)
            if r.finished:
                pool.add(r.answer)
            return True

        for _ in range(n_init):
            if not open_branch():
                break
        if not ids:
            return None
        spawned = len(ids)
        ema = 0.0
        history: list[float] = []
        widen_from = max(1, warm_up // 2)
        advance = session.advance

        for step in range(MAX_STEPS):
            winner, conf = pool.stats()
            warm = step >= warm_up
            ema = (1 - alpha) * ema + alpha * conf
            history.append(ema)
            if len(history) > window:
                del history[0]

            alive = [k for k in range(len(ids)) if not finished[k] and not abandoned[k]]
            if warm and winner is not None:
                for k in alive:
                    if latest[k] != winner:
                        disagree[k] += 1
                    else:
                        disagree[k] = 0
                n_abandon = len(alive) - 2
                if n_abandon > 0:
                    stale = [k for k in alive if disagree[k] >= abandon_patience]
                    stale.sort(key=lambda k: -disagree[k])  # stable: ties keep opening order
                    for k in stale[:n_abandon]:
                        abandoned[k] = True
                        session.prune(ids[k])
                    if stale:
                        alive = [k for k in alive if not abandoned[k]]

            alive.sort(key=lambda k: -advances[k])  # stable: ties keep opening order
            for k in alive:
                aligned = warm and winner is not None and latest[k] == winner
                for _ in range(aligned_burst if aligned else 1):
                    # Alive branches are never finished, so the advance is always legal;
                    # the spec's "store cannot advance it" case cannot arise here.
                    r = advance(ids[k])
                    advances[k] += 1
                    latest[k] = r.answer
                    if r.finished:
                        finished[k] = True
                        pool.add(r.answer)
                        break

            winner, conf = pool.stats()
            ema = (1 - alpha) * ema + alpha * conf
            history[-1] = ema
            delta = history[-1] - history[0] if len(history) >= 2 else 0.0

            if warm and pool.size >= min_complete and ema >= conf_threshold and delta >= -slack:
                return winner
            if all(finished[k] or abandoned[k] for k in range(len(ids))):
                break
            if spawned < max_branches and delta <= trend_threshold and step >= widen_from and ema < conf_threshold:
                for _ in range(min(widen_burst, max_branches - spawned)):
                    if not open_branch():
                        break
                    spawned += 1

        if pool.size:
            return pool.stats()[0]
        return majority([latest[k] for k in range(len(ids)) if not abandoned[k]])


class _Pool:
    """Answers of finished branches with incremental, first-seen-ordered vote counts."""

    __slots__ = ("counts", "size")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.size = 0

    def add(self, answer: str) -> None:
        self.counts[answer] = self.counts.get(answer, 0) + 1
        self.size += 1

    def stats(self) -> tuple[str | None, float]:
        """``(majority, beta confidence)``, or ``(None, 0.0)`` for an empty pool."""
        if not self.size:
            return None, 0.0
        winner: str | None = None
        top1 = top2 = 0
        for a, c in self.counts.items():
            if c > top1:
                winner, top1, top2 = a, c, top1
            elif c > top2:
                top2 = c
        return winner, beta_confidence(top1, top2)
