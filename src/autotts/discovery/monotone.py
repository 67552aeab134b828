"""The empirical β check: cost must not fall as β rises, and β = 1 must spend like a full budget.

β is the one knob users turn, so it has to mean "more β, more compute, more accuracy".
These checks do not fail a candidate; their findings are recorded and shown to the
explorer (and selection may be told to skip non-monotone candidates).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from autotts.discovery.records import CurvePoint, Finding


def monotone_findings(
    curve: Sequence[CurvePoint],
    *,
    store: str,
    tolerance: float,
) -> list[Finding]:
    """Findings for every β step where mean tokens drop by more than ``tolerance`` (relative).

    A drop of ``tolerance × tokens`` plus one token is tolerated so that few-run noise and
    rounding do not raise false alarms.
    """
    pts = sorted((p for p in curve if p.beta is not None), key=lambda p: p.beta or 0.0)
    drops = []
    for a, b in itertools.pairwise(pts):
        if b.tokens < a.tokens * (1.0 - tolerance) - 1.0:
            drops.append(f"β {a.beta:g}→{b.beta:g}: {a.tokens:,.0f}→{b.tokens:,.0f} tokens")
    if not drops:
        return []
    shown = "; ".join(drops[:4]) + (f"; … {len(drops) - 4} more" if len(drops) > 4 else "")
    return [
        Finding(
            "non-monotone",
            f"{store}: mean tokens fall as β rises ({shown}); every setting must be a monotone function of β "
            f"(tolerance {tolerance:.0%})",
        )
    ]


def full_budget_findings(
    curve: Sequence[CurvePoint],
    *,
    store: str,
    full_budget_tokens: float,
    fraction: float,
) -> list[Finding]:
    """A finding when the largest β spends less than ``fraction`` of a full-budget reference.

    The reference is self-consistency over the whole budget (every branch read in full,
    up to 64), the most conservative controller there is.
    """
    pts = [p for p in curve if p.beta is not None]
    if not pts or full_budget_tokens <= 0 or fraction <= 0:
        return []
    top = max(pts, key=lambda p: p.beta or 0.0)
    if top.tokens >= fraction * full_budget_tokens:
        return []
    return [
        Finding(
            "beta1-underspends",
            f"{store}: at β = {top.beta:g} the controller spends {top.tokens:,.0f} tokens per question, under "
            f"{fraction:.0%} of the full-budget reference ({full_budget_tokens:,.0f}); β = 1 should be conservative "
            "and able to use the full budget",
        )
    ]
