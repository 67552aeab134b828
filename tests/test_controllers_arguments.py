"""The built-in controllers' constructors as users call them: published defaults and every refusal.

A refusal must name the parameter and echo the bad value, so that a typo in a spec such as
``parallel-probe:T=0`` is fixed from the message alone; the defaults are the published
settings a bare ``SelfConsistency()`` or ``ParallelProbe()`` must reproduce.
"""

from __future__ import annotations

from typing import Any

import pytest

from autotts.controllers.adaptive import AdaptiveSelfConsistency
from autotts.controllers.consistency_exit import ConsistencyExit
from autotts.controllers.early_stopping import EarlyStoppingSelfConsistency
from autotts.controllers.parallel_probe import ParallelProbe
from autotts.controllers.self_consistency import SelfConsistency
from autotts.controllers.wide_commit import WideThenCommit


# ------------------------------------------------------------------ defaults
def test_width_only_baselines_default_to_the_published_64_samples() -> None:
    assert SelfConsistency().n == 64
    asc = AdaptiveSelfConsistency()
    assert (asc.max_samples, asc.threshold) == (64, 0.95)
    esc = EarlyStoppingSelfConsistency()
    assert (esc.max_samples, esc.window) == (64, 8)


def test_parallel_probe_defaults_are_the_published_settings() -> None:
    pp = ParallelProbe()
    got = {name: getattr(pp, name) for name in ("chains", "T", "warm_up", "prune_patience", "burst", "max_steps")}
    assert got == {"chains": 64, "T": 40, "warm_up": 15, "prune_patience": 7, "burst": 1, "max_steps": 100}


def test_consistency_exit_settings_name_every_knob() -> None:
    assert ConsistencyExit(beta=None).settings == {"chains": 1, "k": 10, "max_intervals": None}
    assert ConsistencyExit(chains=3, k=4, max_intervals=9).settings == {"chains": 3, "k": 4, "max_intervals": 9}


def test_consistency_exit_accepts_a_cap_of_one_interval() -> None:
    """``max_intervals=1`` is legal: each chain answers with its first probe."""
    ce = ConsistencyExit(chains=2, k=3, max_intervals=1)
    assert ce.max_intervals == 1
    assert ce.settings["max_intervals"] == 1


# ------------------------------------------------------------------ refusals
REFUSALS: list[tuple[str, Any, dict[str, Any], str]] = [
    ("sc n", SelfConsistency, {"n": 0}, "n must be at least 1, got 0"),
    ("asc max_samples", AdaptiveSelfConsistency, {"max_samples": -3}, "max_samples must be at least 1, got -3"),
    ("esc window", EarlyStoppingSelfConsistency, {"window": 0}, "window must be at least 1, got 0"),
    (
        "esc max_samples < window",
        EarlyStoppingSelfConsistency,
        {"max_samples": 5, "window": 8},
        "max_samples (5) must be at least window (8)",
    ),
    ("ce chains", ConsistencyExit, {"chains": 0}, "chains must be at least 1, got 0"),
    ("ce k", ConsistencyExit, {"k": -1}, "k must be at least 1, got -1"),
    ("ce max_intervals", ConsistencyExit, {"max_intervals": 0}, "max_intervals must be at least 1, got 0"),
    ("wide width", WideThenCommit, {"width": 0}, "width must be at least 1, got 0"),
    ("wide depth", WideThenCommit, {"depth": -2}, "depth must be at least 1, got -2"),
    ("pp chains", ParallelProbe, {"chains": 0}, "chains must be at least 1, got 0"),
    ("pp T", ParallelProbe, {"T": 0}, "T must be at least 1, got 0"),
    ("pp warm_up", ParallelProbe, {"warm_up": -1}, "warm_up must be at least 0, got -1"),
    ("pp prune_patience", ParallelProbe, {"prune_patience": 0}, "prune_patience must be at least 1, got 0"),
    ("pp burst", ParallelProbe, {"burst": 0}, "burst must be at least 1, got 0"),
    ("pp max_steps", ParallelProbe, {"max_steps": -1}, "max_steps must be at least 0, got -1"),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_refusal_names_the_parameter_and_the_bad_value(factory: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        factory(**kwargs)
    # Exact words, case included: the message is the user's only pointer to the fix.
    assert str(info.value) == message


def test_parallel_probe_lower_bounds_are_inclusive() -> None:
    pp = ParallelProbe(chains=1, T=1, warm_up=0, prune_patience=1, burst=1, max_steps=0)
    assert (pp.chains, pp.T, pp.warm_up, pp.prune_patience, pp.burst, pp.max_steps) == (1, 1, 0, 1, 1, 0)


@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0])
def test_asc_threshold_accepts_the_closed_unit_interval(threshold: float) -> None:
    assert AdaptiveSelfConsistency(threshold=threshold).threshold == threshold


@pytest.mark.parametrize("threshold", [-0.01, 1.01, 1.5, 2.0, float("nan")])
def test_asc_threshold_outside_the_unit_interval_is_refused_with_the_reason(threshold: float) -> None:
    with pytest.raises(ValueError) as info:
        AdaptiveSelfConsistency(threshold=threshold)
    assert str(info.value) == (
        f"threshold is a probability and must be in [0, 1], got {threshold} "
        "(above 1 it would never stop early and silently become SC@max_samples)"
    )
