"""Backends give identical results; the Ray backend runs on a local cluster the test starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autotts.errors import ConfigError
from autotts.evaluation import evaluate
from autotts.testing import tiny_store

FILE = Path(__file__).parent / "data" / "published_style_controllers.py"
SPECS = [
    "sc:n=1",
    "sc:n=5",
    "asc:max_samples=8",
    "parallel-probe:chains=4",
    "cmc:beta=0.5",
    f"{FILE}:AdaptiveConsistency:max_samples=8",
]


def _arrays(results):  # type: ignore[no-untyped-def]
    return [(r.params, r.correct.tolist(), r.cost.tolist(), r.answers) for r in results]


def test_serial_and_processes_identical() -> None:
    stores = [tiny_store(seed=1, questions=3), tiny_store(seed=2, questions=5)]
    serial = evaluate(stores, SPECS, runs=6, backend="serial")
    procs = evaluate(stores, SPECS, runs=6, backend="processes", workers=2)
    assert _arrays(serial) == _arrays(procs)
    assert [r.store for r in procs] == [r.store for r in serial]


def test_unknown_backend() -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        evaluate(tiny_store(), "sc:n=1", runs=1, backend="gpu")


@pytest.mark.slow
@pytest.mark.integration
def test_ray_backend_identical() -> None:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        stores = [tiny_store(seed=3, questions=3), tiny_store(seed=4, questions=4)]
        serial = evaluate(stores, SPECS, runs=4, backend="serial")
        on_ray = evaluate(stores, SPECS, runs=4, backend="ray")
        assert _arrays(serial) == _arrays(on_ray)
        assert all(np.array_equal(a.cost, b.cost) for a, b in zip(serial, on_ray, strict=True))
    finally:
        ray.shutdown()
