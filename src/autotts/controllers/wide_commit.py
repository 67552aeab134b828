"""Wide then commit: an ST-BoN-style early truncation adapted to replay data.

*Adaptation.* Self-Truncation Best-of-N (ST-BoN) samples several chains, decodes them a
little, keeps the one most consistent with the others (measured on hidden states) and
truncates the rest. Replay data has no hidden states, only the answers probed after every
Δ-token interval, so consistency here is answer agreement: open ``width`` branches,
advance each to ``depth`` intervals, score each branch by how many of the other branches
gave the same (non-``ERR``) probed answer at the same interval, summed over the
intervals, keep the best-scoring branch (ties: first opened), prune the rest and deepen
the kept branch to its end. Its final answer is returned.

A branch that finishes during the wide phase keeps voting with its final answer in the
later intervals and can be kept at no extra cost.

*Budget.* ``width`` is the knob (1 = one plain chain read to its end, by advancing);
``depth`` is how many intervals the wide phase spends. ``beta`` in [0, 1] gives a
one-knob parameterization (:meth:`WideThenCommit.schedule`); explicitly given
parameters override it.
"""

from __future__ import annotations

from typing import Any

from autotts.controllers.base import BetaController, clamp_beta, register
from autotts.env.session import ReplaySession
from autotts.store.schema import ERR

DEFAULT_WIDTH = 8
DEFAULT_DEPTH = 4


@register("wide-commit", "wide then commit (ST-BoN-style adaptation): keep the most agreeing branch; width")
class WideThenCommit(BetaController):
    """Open ``width`` branches, probe them ``depth`` intervals, commit to the most agreeing one."""

    def __init__(self, width: int | None = None, depth: int | None = None, beta: float | None = None) -> None:
        super().__init__(beta)
        self.width = int(width) if width is not None else int(self.settings["width"])
        self.depth = int(depth) if depth is not None else int(self.settings["depth"])
        if self.width < 1:
            raise ValueError(f"width must be at least 1, got {width}")
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.settings = {"width": self.width, "depth": self.depth}

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        """``width`` grows geometrically from 1 (β=0) to 64 (β=1); ``depth`` from 2 to 6 intervals."""
        b = clamp_beta(beta)
        return {"width": max(1, round(2 ** (6 * b))), "depth": max(1, round(2 + 4 * b))}

    @classmethod
    def default_settings(cls) -> dict[str, Any]:
        """Without β: 8 branches, 4 intervals."""
        return {"width": DEFAULT_WIDTH, "depth": DEFAULT_DEPTH}

    def solve(self, session: ReplaySession) -> str | None:
        """Wide phase, agreement scoring, commit; return the kept branch's final answer."""
        ids: list[int] = []
        history: list[list[str]] = []  # answers per interval, per branch
        finished: list[bool] = []
        for _ in range(self.width):
            r = session.open()
            if r is None:
                break
            ids.append(r.branch)
            history.append([r.answer])
            finished.append(r.finished)
        if not ids:
            return None
        for _ in range(1, self.depth):
            for k, b in enumerate(ids):
                if finished[k]:
                    history[k].append(history[k][-1])
                    continue
                r = session.advance(b)
                history[k].append(r.answer)
                finished[k] = r.finished
        best = _most_agreeing(history)
        for k, b in enumerate(ids):
            if k != best and not finished[k]:
                session.prune(b)
        answer = history[best][-1]
        done = finished[best]
        while not done:
            r = session.advance(ids[best])
            answer, done = r.answer, r.finished
        return answer


def _most_agreeing(history: list[list[str]]) -> int:
    """Index of the branch whose per-interval answers match the others' most often (first wins ties)."""
    n = len(history)
    scores = [0] * n
    for t in range(len(history[0])):
        counts: dict[str, int] = {}
        column = [h[t] for h in history]
        for a in column:
            counts[a] = counts.get(a, 0) + 1
        for k, a in enumerate(column):
            if a != ERR:
                scores[k] += counts[a] - 1
    best = 0
    for k in range(1, n):
        if scores[k] > scores[best]:
            best = k
    return best
