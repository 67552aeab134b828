"""Answer-consistency early exit on a single chain (an adaptation to replay data).

*Adaptation.* Early-exit methods for a single chain of thought usually combine answers
elicited from its prefixes with confidence signals (token log-probabilities, hidden
states). Replay data carries only the answer probed after every Δ-token interval, so
here the exit rule is purely answer-based: deepen one
branch interval by interval and stop as soon as its last ``k`` probed answers agree and
are not ``"ERR"``; a branch that ends first answers with its final answer. The default
``k = 10`` (5 000 tokens of an unchanged answer at Δ = 500) is deliberately long: on the
shared Qwen3 stores the answers probed in the first intervals are early guesses that
often repeat for a few intervals before the reasoning settles, so small ``k`` exits on
them (``k = 3`` answers 35 % of Qwen3-4B/aime24 correctly against 72 % for one full chain).

*Budget.* The knob ``chains`` (default 1) runs that single-chain procedure on up to
``chains`` branches one after another (sequential, never in parallel) and returns the
first-seen majority of their answers, so budgets 1, 4, ..., 64 are comparable to SC@n.
``max_intervals`` optionally caps the depth of each chain; a chain stopped by the cap
answers with its latest non-``ERR`` probe (or abstains). ``beta`` in [0, 1] gives a
one-knob parameterization (:meth:`ConsistencyExit.schedule`); explicitly given
parameters override it.
"""

from __future__ import annotations

from typing import Any

from autotts.controllers.base import BetaController, clamp_beta, register
from autotts.controllers.voting import majority
from autotts.env.session import ReplaySession
from autotts.store.schema import ERR

DEFAULT_CHAINS = 1
DEFAULT_K = 10


@register("consistency-exit", "single-chain early exit when the last k probed answers agree (adaptation); chains")
class ConsistencyExit(BetaController):
    """Deepen one branch until its last ``k`` probes agree (not ERR); repeat for ``chains`` branches and vote."""

    def __init__(
        self,
        chains: int | None = None,
        k: int | None = None,
        max_intervals: int | None = None,
        beta: float | None = None,
    ) -> None:
        super().__init__(beta)
        self.chains = int(chains) if chains is not None else int(self.settings["chains"])
        self.k = int(k) if k is not None else int(self.settings["k"])
        self.max_intervals = None if max_intervals is None else int(max_intervals)
        if self.chains < 1:
            raise ValueError(f"chains must be at least 1, got {chains}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if self.max_intervals is not None and self.max_intervals < 1:
            raise ValueError(f"max_intervals must be at least 1, got {max_intervals}")
        self.settings = {"chains": self.chains, "k": self.k, "max_intervals": self.max_intervals}

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        """``chains`` grows geometrically from 1 (β=0) to 64 (β=1); ``k`` from 6 to 14.

        Both use Python's half-to-even ``round``, like the CMC schedule.
        """
        b = clamp_beta(beta)
        return {"chains": max(1, round(2 ** (6 * b))), "k": max(1, round(6 + 8 * b))}

    @classmethod
    def default_settings(cls) -> dict[str, Any]:
        """Without β: one chain, ``k`` = 10."""
        return {"chains": DEFAULT_CHAINS, "k": DEFAULT_K}

    def solve(self, session: ReplaySession) -> str | None:
        """Run up to ``chains`` early-exit chains one after another; majority of their answers."""
        answers: list[str] = []
        for _ in range(self.chains):
            r = session.open()
            if r is None:
                break
            answer = self._deepen(session, r.branch, r.answer, r.finished)
            if answer is not None:
                answers.append(answer)
        return majority(answers)

    def _deepen(self, session: ReplaySession, branch: int, answer: str, finished: bool) -> str | None:
        """Deepen one opened branch until it finishes, its probes agree, or the depth cap is hit."""
        k, cap = self.k, self.max_intervals
        run = 0  # length of the current streak of identical non-ERR probes
        last: str | None = None
        last_ok: str | None = None
        depth = 1
        while not finished:
            if answer == ERR:
                run = 0
            else:
                run = run + 1 if answer == last else 1
                last_ok = answer
            last = answer
            if run >= k:
                session.prune(branch)
                return answer
            if cap is not None and depth >= cap:
                session.prune(branch)
                return last_ok
            r = session.advance(branch)
            answer, finished = r.answer, r.finished
            depth += 1
        return answer
