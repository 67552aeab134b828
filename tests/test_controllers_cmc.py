"""CMC: the β schedule (half-to-even rounding, 4-decimal reals) and each rule of the loop on tiny stores."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotts.controllers import BetaController, ControllerSpec
from autotts.controllers.cmc import ConfidenceMomentum
from autotts.env.session import ReplaySession
from autotts.store.schema import Branch, Question, intern_question

DELTA = 500

BETA_0 = {
    "n_init": 2,
    "max_branches": 4,
    "warm_up": 2,
    "abandon_patience": 3,
    "window": 2,
    "alpha": 0.7,
    "conf_threshold": 0.85,
    "slack": 0.04,
    "aligned_burst": 1,
    "widen_burst": 1,
    "trend_threshold": 0.04,
    "min_complete": 2,
}
BETA_1 = {
    "n_init": 8,
    "max_branches": 64,
    "warm_up": 10,
    "abandon_patience": 12,
    "window": 8,
    "alpha": 0.3,
    "conf_threshold": 0.97,
    "slack": 0.01,
    "aligned_burst": 3,
    "widen_burst": 4,
    "trend_threshold": 0.01,
    "min_complete": 5,
}
# β = 0.5: abandon 7.5 -> 8, widen 2.5 -> 2, min_complete 3.5 -> 4 (half to even).
BETA_HALF = {
    "n_init": 5,
    "max_branches": 34,
    "warm_up": 6,
    "abandon_patience": 8,
    "window": 5,
    "alpha": 0.5,
    "conf_threshold": 0.91,
    "slack": 0.025,
    "aligned_burst": 2,
    "widen_burst": 2,
    "trend_threshold": 0.025,
    "min_complete": 4,
}


def test_schedule_endpoints_and_midpoint() -> None:
    assert ConfidenceMomentum.schedule(0.0) == BETA_0
    assert ConfidenceMomentum.schedule(1.0) == BETA_1
    assert ConfidenceMomentum.schedule(0.5) == BETA_HALF


@pytest.mark.parametrize(
    ("beta", "key", "value"),
    [
        (0.75, "n_init", 6),  # 2 + 4.5 = 6.5 -> 6
        (0.75, "aligned_burst", 2),  # 1 + 1.5 = 2.5 -> 2
        (0.75, "window", 6),
        (0.375, "max_branches", 26),  # 4 + 22.5 = 26.5 -> 26
        (0.125, "max_branches", 12),  # 4 + 7.5 = 11.5 -> 12
        (0.25, "n_init", 4),  # 2 + 1.5 = 3.5 -> 4
        (0.25, "aligned_burst", 2),  # 1.5 -> 2
        (0.25, "abandon_patience", 5),  # 5.25
        (1 / 12, "n_init", 2),  # 2 + 6/12 = 2.5 -> 2
        (1 / 12, "window", 2),
        (1 / 6, "abandon_patience", 4),  # 3 + 1.5 = 4.5 -> 4
        (0.3, "alpha", 0.58),  # 0.70 - 0.12, rounded to 4 decimals (no float residue)
        (0.1, "conf_threshold", 0.862),
        (0.1, "slack", 0.037),
        (0.7, "trend_threshold", 0.019),
        (0.9, "conf_threshold", 0.958),
    ],
)
def test_schedule_rounds_half_to_even_and_to_4_decimals(beta: float, key: str, value: float) -> None:
    assert ConfidenceMomentum.schedule(beta)[key] == value


def test_beta_is_clipped() -> None:
    assert ConfidenceMomentum.schedule(-3) == BETA_0
    assert ConfidenceMomentum.schedule(7) == BETA_1
    assert ConfidenceMomentum(beta=2.0).beta == 1.0
    assert ConfidenceMomentum(beta=-1.0).settings == BETA_0


def test_cmc_is_a_beta_controller_taking_only_beta() -> None:
    assert isinstance(ConfidenceMomentum(), BetaController)
    assert ControllerSpec.parse("cmc").accepts("beta")
    assert not ControllerSpec.parse("cmc").accepts("n_init")


_INCREASING = ("n_init", "max_branches", "warm_up", "abandon_patience", "window", "conf_threshold")
_INCREASING += ("aligned_burst", "widen_burst", "min_complete")
_DECREASING = ("alpha", "slack", "trend_threshold")


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_schedule_is_monotone_in_beta(a: float, b: float) -> None:
    lo, hi = ConfidenceMomentum.schedule(min(a, b)), ConfidenceMomentum.schedule(max(a, b))
    for key in _INCREASING:
        assert lo[key] <= hi[key], key
    for key in _DECREASING:
        assert lo[key] >= hi[key], key


@given(st.floats(-2.0, 3.0, allow_nan=False))
def test_schedule_stays_within_its_bounds(beta: float) -> None:
    s = ConfidenceMomentum.schedule(beta)
    for key in s:
        assert BETA_0[key] <= s[key] <= BETA_1[key] or BETA_1[key] <= s[key] <= BETA_0[key], key
    assert set(s) == set(BETA_0)
    for key in ("alpha", "conf_threshold", "slack", "trend_threshold"):
        assert round(s[key], 4) == s[key]


# ------------------------------------------------------------------ the loop
def session(branches: Sequence[Branch], order: Sequence[int] | None = None) -> ReplaySession:
    q = intern_question(Question("q", "text", "A", DELTA, tuple(branches)))[0]
    return ReplaySession(q, tuple(order) if order is not None else tuple(range(len(branches))))


def test_abandonment_always_keeps_two_alive() -> None:
    # Branch 0 finishes on opening with "A"; every other branch keeps saying "B", so
    # after warm-up all of them disagree with the pool's winner. At β = 0 the
    # controller widens to 4 branches and may abandon only while more than two are alive.
    bs = [Branch((), 100, "A")] + [Branch(("B",) * 30, 15500, "B") for _ in range(4)]
    s = session(bs)
    assert ConfidenceMomentum(0.0).solve(s) == "B"
    assert s.n_opened == 4  # max_branches at β = 0
    assert [s.is_pruned(i) for i in range(4)] == [False, True, False, False]
    assert [e.branch for e in s.trace if e.action == "prune"] == [1]
    # Branch 1: opened + advanced at steps 0..3; abandoned at step 4 with disagree = 3.
    assert s.depth(1) == 5
    assert s.cost == 100 + 5 * DELTA + 2 * 15500


def test_abandonment_waits_for_patience_and_picks_most_disagreeing_first() -> None:
    bs = [Branch((), 100, "A")] + [Branch(("B",) * 30, 15500, "B") for _ in range(4)]
    s = session(bs)
    ConfidenceMomentum(0.0).solve(s)
    # Branches 2 and 3 reached disagree >= 3 only when two were left: never abandoned.
    assert not s.is_pruned(2) and not s.is_pruned(3)

    # Two stale branches, one abandonment allowed: the one that disagreed longer goes, even
    # though it was opened later. Branch 0 agreed with the pool ("A") for two probes, which
    # reset its count; branch 1 never agreed. (Abandoning in opening order would pick 0.)
    bs = [
        Branch(("B", "A", "A") + ("B",) * 13, 8300, "B"),
        Branch(("B",) * 16, 8300, "B"),
        Branch((), 100, "A"),
        Branch(("B",) * 16, 8300, "B"),
    ]
    s = session(bs)
    ConfidenceMomentum(0.0).solve(s)
    assert s.n_opened == 4
    assert [e.branch for e in s.trace if e.action == "prune"] == [1]
    assert [s.is_pruned(i) for i in range(4)] == [False, True, False, False]


@pytest.mark.parametrize(("order", "expected"), [((0, 1), "A"), ((1, 0), "B")])
def test_branches_without_probes_fill_the_pool_in_finishing_order(order: tuple[int, int], expected: str) -> None:
    s = session([Branch((), 700, "A"), Branch((), 900, "B")], order)
    assert ConfidenceMomentum(0.0).solve(s) == expected  # tie -> first finished
    assert s.cost == 1600


def test_exhausted_store_opens_what_there_is() -> None:
    bs = [Branch(("A", "A"), 1200, "A"), Branch(("ERR", "A"), 1300, "A"), Branch((), 400, "C")]
    s = session(bs)
    assert ConfidenceMomentum(1.0).solve(s) == "A"  # n_init = 8 > 3 branches
    assert s.n_opened == 3
    assert s.cost == 1200 + 1300 + 400  # 2 probes (1000) + remainder; 2 probes + 300; 400


def test_without_finished_branches_the_latest_answers_vote() -> None:
    # 600 probes each: no branch finishes within the 500 steps, the pool stays empty and
    # the latest answers of the two (non-abandoned) branches decide, first seen on a tie.
    bs = [Branch(("X",) * 600, 300000, "A"), Branch(("Y",) * 600, 300000, "A")]
    s = session(bs)
    assert ConfidenceMomentum(0.0).solve(s) == "X"
    assert s.cost == 2 * 501 * DELTA


def test_err_answers_are_ordinary_votes() -> None:
    bs = [Branch((), 100, "ERR"), Branch((), 100, "ERR"), Branch((), 100, "A")]
    assert ConfidenceMomentum(0.0).solve(session(bs)) == "ERR"


def test_aligned_branches_advance_faster() -> None:
    # β = 1: aligned_burst = 3. Eight branches finish immediately with "A" (pool confidence
    # is high but the EMA needs time), one long branch agrees with "A" throughout.
    bs = [Branch((), 100, "A") for _ in range(7)] + [Branch(("A",) * 200, 100000, "A")]
    s = session(bs, order=[7, 0, 1, 2, 3, 4, 5, 6])
    assert ConfidenceMomentum(1.0).solve(s) == "A"
    # Opened (1), one advance per step before warm-up (steps 0..9), then at step 10 it is
    # aligned with the pool winner: 3 advances, after which the stop gate fires.
    assert s.branches[0].depth == 1 + 10 + 3
