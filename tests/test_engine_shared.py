"""Kernels vs the Python reference on all 12 shared stores, and the self-check numbers at 100 runs."""

from __future__ import annotations

import numpy as np
import pytest

from autotts import engine
from autotts.controllers.spec import ControllerSpec
from autotts.evaluation import run_cell
from autotts.evaluation.presets import preset_specs
from tests.conftest import shared_store_path
from tests.test_controllers_reference import SELF_CHECK
from tests.test_engine_exact import assert_same

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not engine.available(), reason="numba is not installed: no kernels to compare"),
]

MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
BENCHMARKS = ("aime24", "aime25", "hmmt25")
STORES = [(m, b) for m in MODELS for b in BENCHMARKS]
#: Runs per grid cell on the Python side: the cost of this test is the reference, not the kernels.
GRID_RUNS = 10


@pytest.fixture(scope="module")
def loaded():  # type: ignore[no-untyped-def]
    from autotts.store import load_store

    cache = {}

    def get(model: str, bench: str):  # type: ignore[no-untyped-def]
        key = (model, bench)
        if key not in cache:
            cache[key] = load_store(shared_store_path(model, bench))
        return cache[key]

    return get


@pytest.mark.slow
@pytest.mark.parametrize(("model", "bench"), STORES, ids=[f"{m}/{b}" for m, b in STORES])
def test_paper_grid_is_identical_on_every_store(loaded, model: str, bench: str) -> None:  # type: ignore[no-untyped-def]
    """Every cell of the paper's scaling curves (plus the adaptations), kernel == Python, array by array."""
    store = loaded(model, bench)
    specs = preset_specs("paper-curves")
    assert {s.name for s in specs} >= {"sc", "asc", "esc", "parallel-probe", "cmc"}
    for spec in specs:
        runs = GRID_RUNS if spec.name not in ("consistency-exit", "wide-commit") else 3
        fast = run_cell(store, spec, runs=runs)
        ref = run_cell(store, spec, runs=runs, fast=False)
        assert_same(fast, ref)


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "accuracy", "tokens"), SELF_CHECK, ids=[s for s, _, _ in SELF_CHECK])
def test_self_check_100_runs_kernel_equals_python(loaded, spec: str, accuracy: str, tokens: int) -> None:  # type: ignore[no-untyped-def]
    store = loaded("Qwen3-4B", "aime24")
    parsed = ControllerSpec.parse(spec)
    fast = run_cell(store, parsed, runs=100)
    assert engine.plan_for(parsed.build()) is not None
    assert (f"{fast.accuracy:.2f}", round(fast.tokens)) == (accuracy, tokens)
    ref = run_cell(store, parsed, runs=100, fast=False)
    assert (f"{ref.accuracy:.2f}", round(ref.tokens)) == (accuracy, tokens)
    assert_same(fast, ref)
    assert fast.accuracy == ref.accuracy and fast.tokens == ref.tokens


@pytest.mark.parametrize("spec", ["parallel-probe:chains=16", "cmc:beta=0.7", "consistency-exit:chains=4", "asc"])
def test_recorded_traces_are_identical_on_a_shared_store(loaded, spec: str) -> None:  # type: ignore[no-untyped-def]
    store = loaded("Qwen3-1.7B", "hmmt25")
    parsed = ControllerSpec.parse(spec)
    fast = run_cell(store, parsed, runs=2, record=True)
    ref = run_cell(store, parsed, runs=2, record=True, fast=False)
    assert_same(fast, ref)
    assert sum(len(t.events) for t in fast.traces) > 100
    off = run_cell(store, parsed, runs=2)
    assert np.array_equal(off.cost, fast.cost) and off.answers == fast.answers
