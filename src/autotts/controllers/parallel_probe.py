"""Parallel-Probe: many chains deepened in lockstep, off-track ones pruned, stop on a stable vote.

All chains advance together one burst per step; every step the latest answers vote. After
a warm-up, an unfinished chain that keeps disagreeing with the vote for
``prune_patience`` consecutive steps is pruned, and the controller stops once the
winner has stayed the same for ``T`` consecutive steps.
"""

from __future__ import annotations

from autotts.controllers.base import register
from autotts.controllers.voting import majority
from autotts.env.session import ReplaySession


@register("parallel-probe", "Parallel-Probe: lockstep chains, prune off-track ones, stop when the vote is stable")
class ParallelProbe:
    """Open ``chains`` branches, deepen them in lockstep, prune dissenters, stop on a stable winner."""

    def __init__(
        self,
        chains: int = 64,
        T: int = 40,  # the published parameter name
        warm_up: int = 15,
        prune_patience: int = 7,
        burst: int = 1,
        max_steps: int = 100,
    ) -> None:
        for name, value, low in (
            ("chains", chains, 1),
            ("T", T, 1),
            ("warm_up", warm_up, 0),
            ("prune_patience", prune_patience, 1),
            ("burst", burst, 1),
            ("max_steps", max_steps, 0),
        ):
            if int(value) < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        self.chains = int(chains)
        self.T = int(T)
        self.warm_up = int(warm_up)
        self.prune_patience = int(prune_patience)
        self.burst = int(burst)
        self.max_steps = int(max_steps)

    def solve(self, session: ReplaySession) -> str | None:
        """Run the lockstep loop of ``docs/controllers.md`` and return the last stable-vote winner."""
        ids: list[int] = []
        latest: list[str] = []
        finished: list[bool] = []
        for _ in range(self.chains):
            r = session.open()
            if r is None:
                break
            ids.append(r.branch)
            latest.append(r.answer)
            finished.append(r.finished)
        n = len(ids)
        if n == 0:
            return None
        pruned = [False] * n
        off_track = [0] * n
        burst, warm_up, patience, T = self.burst, self.warm_up, self.prune_patience, self.T
        advance = session.advance
        stable = 0
        prev: str | None = None
        # Indices of non-pruned chains, in opening order; pruning rebuilds it.
        active = list(range(n))
        for step in range(self.max_steps):
            for k in active:
                if finished[k]:
                    continue
                for _ in range(burst):
                    r = advance(ids[k])
                    latest[k] = r.answer
                    if r.finished:
                        finished[k] = True
                        break
            if not active:
                return prev
            winner = majority([latest[k] for k in active])
            if step >= warm_up and len(active) > 1:
                any_pruned = False
                for k in active:
                    if finished[k]:
                        continue
                    if latest[k] != winner:
                        off_track[k] += 1
                        if off_track[k] >= patience:
                            pruned[k] = True
                            session.prune(ids[k])
                            any_pruned = True
                    else:
                        off_track[k] = 0
                if any_pruned:
                    active = [k for k in active if not pruned[k]]
                    if not active:
                        return prev
                    winner = majority([latest[k] for k in active])
            stable = stable + 1 if winner == prev else 0
            prev = winner
            if stable >= T:
                return winner
            if all(finished[k] for k in active):
                break
        return prev
