"""Selection ties: accuracy, then fewer tokens, then the earlier candidate (and the earlier β of a curve)."""

from __future__ import annotations

import pytest

from autotts.discovery.config import SelectionConfig
from autotts.discovery.records import CandidateRecord, CurvePoint, Status
from autotts.discovery.selection import Choice, best_point, ranked, select


def record(cid: str, *points: tuple[float, float, float]) -> CandidateRecord:
    curve = tuple(CurvePoint(b, a, t) for b, a, t in points)
    return CandidateRecord(cid, int(cid[1:3]), int(cid[4:6]), Status.OK, curves={"m/b": curve}, search_curve=curve)


RULES = [SelectionConfig(), SelectionConfig(rule="objective", gamma=0.001)]


@pytest.mark.parametrize("cfg", RULES, ids=["accuracy", "objective"])
def test_a_full_tie_goes_to_the_earlier_candidate_whatever_the_input_order(cfg: SelectionConfig) -> None:
    early = record("r01c02", (0.5, 80.0, 5000.0))
    late_same_round = record("r01c03", (0.5, 80.0, 5000.0))
    later_round = record("r02c01", (0.0, 80.0, 5000.0))
    for order in (
        [early, late_same_round, later_round],
        [later_round, late_same_round, early],
        [late_same_round, later_round, early],
    ):
        choice = select(order, cfg)
        assert choice is not None and (choice.candidate, choice.beta) == ("r01c02", 0.5), [r.id for r in order]
        assert [r.id for r in ranked(order, cfg)] == ["r01c02", "r01c03", "r02c01"]


def test_a_tie_within_one_curve_goes_to_the_first_point() -> None:
    rec = record("r01c01", (0.0, 70.0, 100.0), (0.3, 90.0, 4000.0), (0.7, 90.0, 4000.0), (1.0, 90.0, 4000.0))
    choice = select([rec], SelectionConfig())
    assert choice == Choice("r01c01", 0.3, 90.0, 4000.0, 90.0, "accuracy")


def test_the_best_point_of_a_curve_prefers_fewer_tokens_and_ranks_by_it() -> None:
    # Both reach 80 %; x reaches it with 100 tokens at β=0.2, y needs 5000 at best.
    x = record("r02c01", (0.2, 80.0, 100.0), (1.0, 80.0, 9000.0))
    y = record("r01c01", (0.5, 80.0, 5000.0))
    assert best_point(x, SelectionConfig()) == CurvePoint(0.2, 80.0, 100.0)
    assert [r.id for r in ranked([y, x], SelectionConfig())] == ["r02c01", "r01c01"]
    assert select([y, x], SelectionConfig()) == Choice("r02c01", 0.2, 80.0, 100.0, 80.0, "accuracy")


def test_fewer_tokens_beat_an_earlier_candidate_and_accuracy_beats_tokens() -> None:
    early = record("r01c01", (1.0, 80.0, 5000.0))
    cheaper = record("r03c04", (1.0, 80.0, 4999.0))
    better = record("r04c01", (1.0, 80.5, 90000.0))
    choice = select([early, cheaper], SelectionConfig())
    assert choice is not None and choice.candidate == "r03c04"
    assert [r.id for r in ranked([early, cheaper], SelectionConfig())] == ["r03c04", "r01c01"]
    choice = select([early, cheaper, better], SelectionConfig())
    assert choice is not None and choice.candidate == "r04c01"
    assert [r.id for r in ranked([early, cheaper, better], SelectionConfig())] == ["r04c01", "r03c04", "r01c01"]


def test_objective_trades_accuracy_for_tokens_and_breaks_its_ties_the_same_way() -> None:
    # 80 − 0.001·5000 = 75 = 76 − 0.001·6000: equal scores, so fewer tokens win.
    cfg = SelectionConfig(rule="objective", gamma=0.001)
    a = record("r02c01", (0.2, 80.0, 5000.0))
    b = record("r01c01", (0.9, 76.0, 1000.0), (1.0, 81.0, 6000.0))
    choice = select([a, b], cfg)
    assert choice is not None and (choice.candidate, choice.beta, choice.accuracy, choice.tokens) == (
        "r01c01",
        0.9,
        76.0,
        1000.0,
    )
    assert choice.score == pytest.approx(75.0) and choice.rule == "objective"
    choice = select([a, record("r01c01", (1.0, 81.0, 6000.0))], cfg)
    assert choice is not None and (choice.candidate, choice.beta) == ("r02c01", 0.2)
