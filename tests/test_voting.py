"""The public voting helpers that built-in and explorer-written controllers share.

``top_two`` and ``beta_confidence`` are listed in the discovery prompt for controllers
the explorer writes, so they are tested directly, not only through the controllers that
happen to call them.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotts.controllers import beta_confidence, majority, top_two


# ---------------------------------------------------------------------- majority
@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([], None),
        (["A"], "A"),
        (["A", "B"], "A"),  # a tie goes to the first seen
        (["B", "A"], "B"),
        (["A", "B", "B"], "B"),
        (["A", "B", "B", "A"], "A"),
        (["C", "A", "B", "A", "B"], "A"),
        ([None, "A", None], None),  # None is an answer like any other
    ],
)
def test_majority_first_seen_wins_ties(answers: list[str | None], expected: str | None) -> None:
    assert majority(answers) == expected
    assert majority(iter(answers)) == expected  # any iterable, read once


# ----------------------------------------------------------------------- top_two
@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([], (None, 0, 0)),
        (["A"], ("A", 1, 0)),
        (["A", "B"], ("A", 1, 1)),
        # A new leader demotes the old one to runner-up.
        (["A", "B", "B"], ("B", 2, 1)),
        (["A", "A", "B", "B", "B"], ("B", 3, 2)),
        (["A", "B", "C", "C", "B", "C"], ("C", 3, 2)),
        # A runner-up that is not the old leader.
        (["A", "A", "A", "B", "C", "C"], ("A", 3, 2)),
        # Equal counts: the first seen leads, the runner-up has the same count.
        (["B", "A", "A", "B"], ("B", 2, 2)),
        ([None, None, "A"], (None, 2, 1)),
    ],
)
def test_top_two(answers: list[str | None], expected: tuple[str | None, int, int]) -> None:
    assert top_two(answers) == expected


def _reference_top_two(answers: list[str]) -> tuple[str | None, int, int]:
    counts = [*sorted(Counter(answers).values(), reverse=True), 0, 0]
    return majority(answers), counts[0], counts[1]


@given(st.lists(st.sampled_from("ABCD"), max_size=30))
def test_top_two_agrees_with_counting(answers: list[str]) -> None:
    assert top_two(answers) == _reference_top_two(answers)


# --------------------------------------------------------------- beta_confidence
def test_beta_confidence_without_votes_is_zero() -> None:
    # Without the guard the formula gives 1 - I_0.5(1, 1) = 0.5 for no votes at all.
    assert beta_confidence(0, 0) == 0.0
    assert beta_confidence(0, 5) == 0.0


@pytest.mark.parametrize(
    ("top1", "top2", "expected"),
    [
        (1, 0, 0.75),  # 1 - I_0.5(2, 1) = 1 - 0.5²
        (1, 1, 0.5),
        (2, 0, 0.875),  # 1 - 0.5³
        (2, 1, 0.6875),
        (3, 3, 0.5),
    ],
)
def test_beta_confidence_values(top1: int, top2: int, expected: float) -> None:
    assert beta_confidence(top1, top2) == pytest.approx(expected, abs=1e-12)


@given(st.integers(1, 60), st.integers(0, 60))
def test_beta_confidence_grows_with_the_lead(top1: int, top2: int) -> None:
    c = beta_confidence(top1, top2)
    assert 0.0 <= c <= 1.0
    assert beta_confidence(top1 + 1, top2) >= c
    if top2 > 0:
        assert beta_confidence(top1, top2 - 1) >= c
