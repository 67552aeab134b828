"""Choosing the discovered controller and its β from the search results.

* ``accuracy`` (the paper's rule): the (candidate, β) with the highest mean search-set
  accuracy; fewer tokens, then the earlier candidate, break ties.
* ``objective``: the highest ``accuracy − γ · tokens`` (accuracy in percent, tokens =
  mean tokens per question), for users who price compute.
* ``frontier``: the candidate whose whole β-curve offers the most — the largest area under
  its accuracy–log(tokens) frontier over the fixed token range, relative to the seeds'
  best frontier (:mod:`autotts.discovery.fitness`), per store and combined by
  ``robustness``; ties go to the higher accuracy at the largest budget, then to the
  earlier candidate. The reported β is the candidate's most accurate point; the
  product is the curve, and the final evaluation covers its whole β grid.

Only candidates with status ``ok`` qualify; with ``require_monotone`` those with a
non-monotone finding are skipped too. Held-out results never enter selection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from autotts.discovery.config import SelectionConfig
from autotts.discovery.fitness import Reference, build_reference, metrics
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


def reference_for(records: Iterable[CandidateRecord], cfg: SelectionConfig, reference: Reference | None) -> Reference:
    """``reference`` (the seeds' best frontier), or without one the best frontier of the eligible records."""
    if reference is not None and reference.stores:
        return reference
    return build_reference((r.curves for r in records if eligible(r, cfg)), token_range=cfg.token_range)


def frontier_key(record: CandidateRecord, cfg: SelectionConfig, reference: Reference) -> tuple[float, float]:
    """``(combined area, accuracy at the largest budget)`` of an eligible record: what ``frontier`` ranks."""
    m = metrics(record.curves, reference)
    # Rounded so that float noise in equal areas does not decide what the tie-break should.
    return round(m.score(cfg.robustness, cfg.spread_weight), 9), round(m.accuracy_at_top(), 9)


def _select_frontier(
    records: list[CandidateRecord], cfg: SelectionConfig, reference: Reference | None
) -> Choice | None:
    ref = reference_for(records, cfg, reference)
    best: tuple[tuple[float, float], CandidateRecord] | None = None
    for rec in sorted(records, key=lambda r: (r.round, r.index)):
        if not eligible(rec, cfg):
            continue
        key = frontier_key(rec, cfg, ref)
        if best is None or key > best[0]:  # strict: an earlier candidate keeps the place on a tie
            best = (key, rec)
    if best is None:
        return None
    (area, _), rec = best
    p = max(rec.search_curve, key=lambda q: (q.accuracy, -q.tokens))
    return Choice(rec.id, p.beta, p.accuracy, p.tokens, area, cfg.rule)


def select(
    records: Iterable[CandidateRecord], cfg: SelectionConfig, reference: Reference | None = None
) -> Choice | None:
    """The best (candidate, β) under ``cfg``, or None when no candidate qualifies.

    ``reference`` (the seeds' best frontier) is used by the ``frontier`` rule only.
    """
    if cfg.rule == "frontier":
        return _select_frontier(list(records), cfg, reference)
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


def ranked(
    records: Iterable[CandidateRecord], cfg: SelectionConfig, reference: Reference | None = None
) -> list[CandidateRecord]:
    """Eligible records, best first (by their best point's score, or their frontier under ``frontier``)."""
    scored = []
    records = list(records)
    if cfg.rule == "frontier":
        ref = reference_for(records, cfg, reference)
        keyed = [((*frontier_key(r, cfg, ref), -r.round, -r.index), r) for r in records if eligible(r, cfg)]
        keyed.sort(key=lambda t: t[0], reverse=True)
        return [r for _, r in keyed]
    for rec in records:
        if eligible(rec, cfg):
            p = best_point(rec, cfg)
            if p is not None:
                scored.append(((score(p, cfg), -p.tokens, -rec.round, -rec.index), rec))
    scored.sort(key=lambda t: t[0], reverse=True)
    return [r for _, r in scored]
