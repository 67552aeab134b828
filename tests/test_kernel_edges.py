"""Explicit cases for the controller edges that random examples reach only on some seeds.

Each case pins the exact cost the specification gives (so a change to the Python
reference fails) and runs the compiled kernel and the Python controller on it through
the public ``autotts.evaluate`` (so a kernel that drifts from the reference fails too).
Both mutations these cases were written for (Parallel-Probe pruning at ``>`` instead of
``>= prune_patience``; ESC reading ``ceil(max_samples / window)`` windows) survived
the random-seed property tests on some seeds.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import autotts
from autotts import engine
from autotts.controllers import ControllerSpec
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta
from autotts.testing import tiny_store

DELTA = 100
RUNS = 4  # four shuffles of the branch order; every case is built to be order-independent

needs_kernels = pytest.mark.skipif(not engine.available(), reason="numba is not installed: no kernels")


def store_of(*branches: Branch, gold: str = "A") -> ReplayStore:
    return ReplayStore(StoreMeta("edge", "cases"), (Question("q", "t", gold, DELTA, tuple(branches)),))


def costs(store: ReplayStore, spec: str, *, fast: bool) -> list[list[int]]:
    (cell,) = autotts.evaluate(store, spec, runs=RUNS, backend="serial", fast=fast, record=True)
    return np.asarray(cell.cost).tolist()  # type: ignore[no-any-return]


def both_paths(store: ReplayStore, spec: str) -> list[list[int]]:
    """The Python reference's costs, after checking the kernel gives the same arrays and answers."""
    ref = autotts.evaluate(store, spec, runs=RUNS, backend="serial", fast=False, record=True)[0]
    if engine.available():
        fast = autotts.evaluate(store, spec, runs=RUNS, backend="serial", fast=True, record=True)[0]
        assert fast.answers == ref.answers
        assert np.array_equal(fast.cost, ref.cost) and np.array_equal(fast.sequential, ref.sequential)
        assert fast.traces == ref.traces
    return np.asarray(ref.cost).tolist()  # type: ignore[no-any-return]


# ------------------------------------------------------------------------ ESC
def distinct(n: int, tokens: int = 10) -> list[Branch]:
    """``n`` branches with pairwise different final answers: no window of two or more is unanimous."""
    return [Branch((), tokens, f"x{i}") for i in range(n)]


@pytest.mark.parametrize(
    ("max_samples", "window", "reads"),
    [
        (10, 4, 8),  # 10 // 4 = 2 windows, not 3
        (11, 4, 8),
        (12, 4, 12),
        (7, 2, 6),
        (5, 5, 5),
        (9, 8, 8),
    ],
)
def test_esc_reads_whole_windows_only(max_samples: int, window: int, reads: int) -> None:
    store = store_of(*distinct(16))
    assert both_paths(store, f"esc:max_samples={max_samples},window={window}") == [[10 * reads]] * RUNS


def test_esc_checks_a_window_the_store_cannot_fill() -> None:
    # 6 branches, windows of 4: the second window holds only 2 reads and is still checked.
    store = store_of(*distinct(6))
    assert both_paths(store, "esc:max_samples=12,window=4") == [[60]] * RUNS
    same = store_of(*[Branch((), 10, "A") for _ in range(6)])
    assert both_paths(same, "esc:max_samples=12,window=4") == [[40]] * RUNS  # first window unanimous


# -------------------------------------------------------------- Parallel-Probe
# Two chains that always say "A" and finish after their sixth probe (650 tokens each), and
# one dissenter. With three chains, "A" is the winner at every step whatever the order.
AGREE = Branch(("A",) * 6, 650, "A")


def _pp(patience: int, warm_up: int = 0) -> str:
    return f"parallel-probe:chains=3,T=100,warm_up={warm_up},prune_patience={patience},burst=1,max_steps=50"


@pytest.mark.parametrize(
    ("dissent", "patience", "warm_up", "dissenter_cost"),
    [
        # Off-track at step 0 with patience 1: pruned at once (opened + one advance).
        (("B",) * 8, 1, 0, 2 * DELTA),
        # Patience 2: pruned at step 1, when the counter reaches the patience exactly.
        (("B",) * 8, 2, 0, 3 * DELTA),
        # Counting starts at the warm-up step itself: pruned at step 2.
        (("B",) * 8, 1, 2, 4 * DELTA),
        # Agreeing at step 1 resets the counter: off-track at steps 0, 2, 3 -> pruned at step 3.
        (("B", "B", "A", "B", "B", "B", "B", "B"), 2, 0, 5 * DELTA),
    ],
)
def test_parallel_probe_prunes_when_the_counter_reaches_the_patience(
    dissent: tuple[str, ...], patience: int, warm_up: int, dissenter_cost: int
) -> None:
    store = store_of(AGREE, AGREE, Branch(dissent, 900, "B"))
    assert both_paths(store, _pp(patience, warm_up)) == [[2 * 650 + dissenter_cost]] * RUNS


def test_parallel_probe_stops_once_the_winner_was_stable_for_t_steps() -> None:
    # Every chain agrees: the winner "A" is first seen at step 0, stable from step 1 on;
    # with T = 2 the controller returns after step 2 (open + 3 advances = 4 probes each).
    store = store_of(*[Branch(("A",) * 9, 1000, "A") for _ in range(3)])
    spec = "parallel-probe:chains=3,T=2,warm_up=0,prune_patience=1,burst=1,max_steps=50"
    assert both_paths(store, spec) == [[3 * 4 * DELTA]] * RUNS


# ------------------------------------------------------------------------ CMC
def test_cmc_abandons_the_most_disagreeing_branch_on_both_paths() -> None:
    # See tests/test_controllers_cmc.py: branch 1 disagreed longer than branch 0 and goes first.
    store = store_of(
        Branch(("B", "A", "A") + ("B",) * 13, 8300, "B"),
        Branch(("B",) * 16, 8300, "B"),
        Branch((), 100, "A"),
        Branch(("B",) * 16, 8300, "B"),
    )
    (cell,) = autotts.evaluate(store, "cmc:beta=0.0", runs=1, backend="serial", fast=False, record=True)
    assert [e.branch for e in cell.traces[0].events if e.action == "prune"] == [1]
    both_paths(store, "cmc:beta=0.0")


# -------------------------------------------------------------- every kernel
BUILTIN_SPECS = ["sc", "asc", "esc", "parallel-probe", "cmc", "consistency-exit", "wide-commit"]


@needs_kernels
def test_every_builtin_controller_runs_on_a_compiled_kernel(caplog: pytest.LogCaptureFixture) -> None:
    from autotts.engine.dispatch import KERNELS

    plans = {spec: engine.plan_for(ControllerSpec.parse(spec).build()) for spec in BUILTIN_SPECS}
    assert all(plan is not None for plan in plans.values()), plans
    assert {plan.kernel for plan in plans.values() if plan is not None} == set(KERNELS)
    store = tiny_store(5, questions=3, branches=12)
    caplog.set_level(logging.WARNING, logger="autotts.engine")
    for spec in BUILTIN_SPECS:
        ref = autotts.evaluate(store, spec, runs=3, backend="serial", fast=False)[0]
        fast = autotts.evaluate(store, spec, runs=3, backend="serial", fast=True)[0]
        assert fast.answers == ref.answers, spec
        assert np.array_equal(fast.cost, ref.cost), spec
    # A kernel that failed to compile would have been replaced by the Python path silently
    # (same numbers) but with a warning and the engine switched off.
    assert engine.available()
    assert not [r for r in caplog.records if r.name.startswith("autotts.engine")]
