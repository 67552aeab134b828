"""Choosing the discovered controller and its β from the search results.

* ``accuracy`` (the paper's rule): the (candidate, β) with the highest mean search-set
  accuracy; fewer tokens, then the earlier candidate, break ties.
* ``objective``: the highest ``accuracy − γ · tokens`` (accuracy in percent, tokens =
  mean tokens per question), for users who price compute.

Only candidates with status ``ok`` qualify; with ``require_monotone`` those with a
non-monotone finding are skipped too. Held-out results never enter selection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from autotts.discovery.config import SelectionConfig
from autotts.discovery.records import CandidateRecord, CurvePoint


@dataclass(frozen=True)
class Choice:
    """The selected candidate and β with its search-set figures."""

    candidate: str
    beta: float | None
    accuracy: float
    tokens: float
    score: float
    rule: str


def score(point: CurvePoint, cfg: SelectionConfig) -> float:
    """The selection score of one curve point."""
    if cfg.rule == "objective":
        return point.accuracy - cfg.gamma * point.tokens
    return point.accuracy


def best_point(record: CandidateRecord, cfg: SelectionConfig) -> CurvePoint | None:
    """The record's best point under the rule (None without a curve)."""
    if not record.search_curve:
        return None
    return max(record.search_curve, key=lambda p: (score(p, cfg), -p.tokens))


def eligible(record: CandidateRecord, cfg: SelectionConfig) -> bool:
    """Whether the record may be selected."""
    if not record.ok or not record.search_curve:
        return False
    return not (cfg.require_monotone and any(f.code == "non-monotone" for f in record.findings))


def select(records: Iterable[CandidateRecord], cfg: SelectionConfig) -> Choice | None:
    """The best (candidate, β) under ``cfg``, or None when no candidate qualifies."""
    best: tuple[tuple[float, float], Choice] | None = None
    for rec in sorted(records, key=lambda r: (r.round, r.index)):
        if not eligible(rec, cfg):
            continue
        for p in rec.search_curve:
            s = score(p, cfg)
            # Higher score, then fewer tokens; on a full tie the earlier candidate (and the
            # earlier point of its curve) keeps the place, since only a strictly better key wins.
            key = (s, -p.tokens)
            if best is None or key > best[0]:
                best = (key, Choice(rec.id, p.beta, p.accuracy, p.tokens, s, cfg.rule))
    return None if best is None else best[1]


def ranked(records: Iterable[CandidateRecord], cfg: SelectionConfig) -> list[CandidateRecord]:
    """Eligible records, best first (by their best point's score)."""
    scored = []
    for rec in records:
        if eligible(rec, cfg):
            p = best_point(rec, cfg)
            if p is not None:
                scored.append(((score(p, cfg), -p.tokens, -rec.round, -rec.index), rec))
    scored.sort(key=lambda t: t[0], reverse=True)
    return [r for _, r in scored]
