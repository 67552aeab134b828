"""Voting helpers with the reference tie-breaking (first-seen wins ties).

They sit at the bottom of the package, beside :mod:`autotts.errors`, because store
statistics and controllers both vote; controllers import them as
:mod:`autotts.controllers.voting`.

The published numbers depend on these exact rules: ``majority`` returns, among the
answers with the highest count, the one that appears first in the list;
``beta_confidence(top1, top2)`` is ``1 - I_0.5(top1 + 1, top2 + 1)`` (0 when
``top1 == 0``), cached because a run only ever needs a few hundred distinct pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

# ``betainc(a, b, x)`` is the function ``scipy.stats.beta.cdf(x, a, b)`` evaluates (both run
# Boost's incomplete beta since SciPy 1.12; ``tests/test_engine_tables.py`` checks they agree
# bit for bit), and ``scipy.special`` imports in a fraction of the time ``scipy.stats`` takes.
from scipy import special


def majority(answers: Iterable[str | None]) -> str | None:
    """Most frequent answer; ties go to the one seen first; ``None`` for no answers."""
    counts: dict[str | None, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    best: str | None = None
    best_count = 0
    for a, c in counts.items():  # dicts keep first-seen order
        if c > best_count:
            best, best_count = a, c
    return best


def top_two(answers: Sequence[str | None]) -> tuple[str | None, int, int]:
    """``(majority, top1, top2)``: the majority answer, its count and the runner-up's count."""
    counts: dict[str | None, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    if not counts:
        return None, 0, 0
    winner: str | None = None
    top1 = top2 = 0
    for a, c in counts.items():  # first-seen order: a later answer needs a strictly higher count
        if c > top1:
            winner, top1, top2 = a, c, top1
        elif c > top2:
            top2 = c
    return winner, top1, top2


@lru_cache(maxsize=65536)
def beta_confidence(top1: int, top2: int) -> float:
    """Probability that the leading answer is the true majority: ``1 - I_0.5(top1+1, top2+1)``."""
    if top1 <= 0:
        return 0.0
    return float(1.0 - special.betainc(top1 + 1, top2 + 1, 0.5))
