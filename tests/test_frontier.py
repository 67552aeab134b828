"""Frontier statistics on constructed curves and cells with known answers."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.errors import ResultsError
from autotts.evaluation.frontier import (
    accuracy_at,
    common_range,
    frontier_area,
    frontier_curve,
    paired_bootstrap,
    pareto_frontier,
    tokens_saved,
    tokens_to_reach,
)


def test_pareto_frontier_drops_dominated_points_and_sorts_by_tokens():
    tokens = [400, 100, 200, 300, 250]
    acc = [70, 50, 60, 55, 60]  # 300 is dominated by 200; 250 ties 200 on accuracy but costs more
    idx = pareto_frontier(tokens, acc)
    assert idx.tolist() == [1, 2, 0]
    ft, fa = frontier_curve(tokens, acc)
    assert ft.tolist() == [100, 200, 400]
    assert fa.tolist() == [50, 60, 70]


def test_equal_points_keep_the_first():
    assert pareto_frontier([10, 10], [5, 5]).tolist() == [0]


def test_accuracy_at_interpolates_on_log_tokens():
    tokens, acc = [100, 10_000], [40.0, 60.0]
    got = accuracy_at(tokens, acc, [100, 1_000, 10_000, 1e6, 50])
    assert got[0] == 40.0
    assert got[1] == pytest.approx(50.0)  # halfway in log space
    assert got[2] == 60.0
    assert got[3] == 60.0  # flat above the dearest point
    assert math.isnan(got[4])  # undefined below the cheapest point


def test_area_of_a_flat_curve_is_its_accuracy_and_linear_curve_its_midpoint():
    assert frontier_area([10, 1000], [30, 30], 10, 1000) == pytest.approx(30.0)
    # linear in log tokens from 40 to 60: the mean over the log range is 50
    assert frontier_area([100, 10_000], [40, 60], 100, 10_000) == pytest.approx(50.0)
    # half the range on the slope (40 -> 60), half flat at 60: mean 55
    assert frontier_area([100, 10_000], [40, 60], 100, 1e6) == pytest.approx(55.0)
    assert math.isnan(frontier_area([100, 10_000], [40, 60], 50, 1000))
    assert frontier_area([100, 10_000], [40, 60], 1000, 1000) == pytest.approx(50.0)


def test_dominated_controller_has_negative_area_difference():
    tokens = np.array([1e4, 3e4, 1e5, 3e5])
    good = np.array([40.0, 48, 55, 60])
    worse = good - 3.0  # same cost, 3 points less accurate everywhere
    lo, hi = common_range([(tokens, good), (tokens, worse)])
    diff = frontier_area(tokens, worse, lo, hi) - frontier_area(tokens, good, lo, hi)
    assert diff == pytest.approx(-3.0)
    dearer = tokens * 2  # same accuracy for twice the tokens
    lo, hi = common_range([(tokens, good), (dearer, good)])
    assert frontier_area(dearer, good, lo, hi) < frontier_area(tokens, good, lo, hi)


def test_common_range_none_when_disjoint():
    assert common_range([([1, 2], [1, 2]), ([10, 20], [1, 2])]) is None
    assert common_range([([1, 100], [1, 2]), ([10, 1000], [1, 2])]) == (10.0, 100.0)


def test_tokens_to_reach_and_tokens_saved():
    tokens, acc = [100, 10_000], [40.0, 60.0]
    assert tokens_to_reach(tokens, acc, 50.0) == pytest.approx(1000.0)
    assert tokens_to_reach(tokens, acc, 30.0) == 100.0
    assert math.isnan(tokens_to_reach(tokens, acc, 61.0))
    # The reference reaches 50 % at 4000 tokens; the curve needs 1000: 75 % saved.
    assert tokens_saved(4000, 50.0, tokens, acc) == pytest.approx(0.75)
    assert tokens_saved(500, 50.0, tokens, acc) == pytest.approx(-1.0)
    assert math.isnan(tokens_saved(4000, 70.0, tokens, acc))


def test_bad_curves_are_clear_errors():
    with pytest.raises(ResultsError, match="as many token values"):
        pareto_frontier([1, 2], [1])
    with pytest.raises(ResultsError, match="positive"):
        accuracy_at([0, 2], [1, 2], [1])
    with pytest.raises(ResultsError, match="at least one point"):
        frontier_area([], [], 1, 2)


def _cell(rng, p, runs=20, questions=40, cost=1000):
    correct = rng.random((runs, questions)) < p
    costs = rng.integers(cost // 2, cost * 2, size=(runs, questions))
    return correct, costs


def test_identical_cells_have_zero_difference_and_p_one():
    rng = np.random.default_rng(1)
    correct, cost = _cell(rng, 0.6)
    cmp = paired_bootstrap(correct, cost, correct, cost, resamples=2000)
    assert cmp.accuracy_diff == 0.0
    assert cmp.accuracy_diff_ci == (0.0, 0.0)
    assert cmp.accuracy_p == pytest.approx(1.0)
    assert cmp.token_ratio == 1.0
    assert cmp.token_ratio_p == pytest.approx(1.0)
    assert cmp.accuracy_verdict() == "not distinguishable"
    assert cmp.cost_verdict() == "not distinguishable"


def test_a_clearly_better_and_cheaper_cell_is_detected():
    rng = np.random.default_rng(2)
    correct_b, cost_b = _cell(rng, 0.4)
    correct_a = correct_b | (rng.random(correct_b.shape) < 0.5)  # A right wherever B is, and more
    cost_a = cost_b // 2
    cmp = paired_bootstrap(correct_a, cost_a, correct_b, cost_b, resamples=2000)
    assert cmp.accuracy_diff == pytest.approx(100 * (correct_a.mean() - correct_b.mean()))
    assert cmp.accuracy_diff_ci[0] > 0
    assert cmp.accuracy_p < 0.01
    assert cmp.accuracy_verdict() == "A more accurate"
    assert cmp.token_ratio == pytest.approx(cost_a.sum() / cost_b.sum())
    assert cmp.token_ratio_ci[1] < 1
    assert cmp.cost_verdict() == "A cheaper"
    swapped = paired_bootstrap(correct_b, cost_b, correct_a, cost_a, resamples=2000)
    assert swapped.accuracy_diff == pytest.approx(-cmp.accuracy_diff)
    assert swapped.accuracy_verdict() == "B more accurate"


def test_pairing_matters():
    # A and B differ on one question only but per-question noise is large: paired
    # resampling sees the consistent difference.
    rng = np.random.default_rng(3)
    base = rng.random((10, 60)) < 0.5
    better = base.copy()
    better[:, :6] = True
    cmp = paired_bootstrap(better, np.ones_like(base, dtype=int), base, np.ones_like(base, dtype=int))
    assert cmp.accuracy_diff > 0
    assert cmp.accuracy_diff_ci[0] >= 0


def test_paired_bootstrap_is_seeded_and_checks_shapes():
    rng = np.random.default_rng(4)
    a, ca = _cell(rng, 0.5)
    b, cb = _cell(rng, 0.55)
    assert paired_bootstrap(a, ca, b, cb) == paired_bootstrap(a, ca, b, cb)
    with pytest.raises(ResultsError, match="one shape"):
        paired_bootstrap(a, ca, b[:, :-1], cb[:, :-1])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(1, 1e7, allow_nan=False), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=12)
)
def test_frontier_invariants(points):
    tokens = [p[0] for p in points]
    acc = [p[1] for p in points]
    ft, fa = frontier_curve(tokens, acc)
    assert np.all(np.diff(ft) >= 0) and np.all(np.diff(fa) > 0)
    # every point is on or under the interpolated frontier
    assert np.all(accuracy_at(tokens, acc, tokens) >= np.asarray(acc) - 1e-9)
    lo, hi = float(ft[0]), float(max(tokens))
    area = frontier_area(tokens, acc, lo, hi)
    assert fa[0] - 1e-9 <= area <= fa[-1] + 1e-9
