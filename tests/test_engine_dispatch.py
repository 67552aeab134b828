"""The engine's dispatch: compile exactly the kernels a run needs, once, and hand back what the Python path gives.

Under the ``fork`` start method the workers inherit what the parent compiled and laid
out (``engine.prepare``); a kernel left uncompiled, or called with argument types other
than the ones it was warmed with, is compiled again in every worker (seconds each), and
a kernel that cannot compile must switch the run to the Python controllers, not crash it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from autotts import engine
from autotts.controllers import registry
from autotts.controllers.spec import ControllerSpec
from autotts.engine import dispatch
from autotts.env.protocols import Protocol
from autotts.evaluation import run_cell
from autotts.testing import tiny_store

pytestmark = pytest.mark.skipif(not engine.available(), reason="numba is not installed: no kernels to prepare")

FRESH = """
import json
from autotts import engine
from autotts.controllers.self_consistency import SelfConsistency
from autotts.controllers.spec import ControllerSpec
from autotts.engine import kernels
from autotts.engine.dispatch import KERNELS
from autotts.engine.layout import _CONFIDENCE
from autotts.env.protocols import Protocol
from autotts.testing import tiny_store


class Mine(SelfConsistency):  # a user subclass: runs in Python, needs no kernel
    pass


controllers = [Mine(3), ControllerSpec.parse(SPEC).build(), Mine(5)]
store = tiny_store(1, questions=2, branches=6)
engine.prepare([store], controllers, runs=2, protocol=Protocol())
laid_out = "_engine_layout" in store.__dict__
table_before_the_fork = max(_CONFIDENCE, default=0)  # counts 0..6 for 6 branches: size 7
engine.run_builtin(store, controllers[1], runs=2, protocol=Protocol())
print(json.dumps({
    "compiled": sorted(name for name in KERNELS if getattr(kernels, name).signatures),
    "laid_out": laid_out,
    "beta_table": [table_before_the_fork, max(_CONFIDENCE, default=0)],
}))
"""


def prepared_in_a_fresh_process(spec: str) -> dict[str, Any]:
    code = f"SPEC = {spec!r}\n" + FRESH
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("spec", "kernel", "beta_table"),
    [("cmc:beta=0.5", "cmc_kernel", 7), ("sc:n=4", "sc_kernel", 0)],
)
def test_prepare_compiles_exactly_the_kernels_needed_before_the_fork(spec: str, kernel: str, beta_table: int) -> None:
    got = prepared_in_a_fresh_process(spec)
    assert got["compiled"] == [kernel]
    assert got["laid_out"] is True
    # β-kernels read it, so it is built before the fork; the others never pay for it, nor does their run
    assert got["beta_table"] == [beta_table, beta_table]


def test_prepare_compiles_each_kernel_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    real = dispatch.warm

    def counting(kernels: tuple[str, ...] = dispatch.KERNELS) -> None:
        calls.append(kernels)
        real(kernels)

    monkeypatch.setattr(engine, "_WARM", set())
    monkeypatch.setattr(dispatch, "warm", counting)
    store = tiny_store(2, questions=2, branches=6)
    controllers = [ControllerSpec.parse(s).build() for s in ("asc", "sc:n=2", "asc:max_samples=4", "sc:n=3")]
    engine.prepare([store], controllers, runs=2, protocol=Protocol())
    engine.prepare([store], controllers, runs=2, protocol=Protocol())
    engine.prepare([store], [ControllerSpec.parse("wide-commit").build()], runs=2, protocol=Protocol())
    assert calls == [("asc_kernel", "sc_kernel"), ("wide_kernel",)]


def test_prepare_with_nothing_to_compile_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from autotts.controllers.self_consistency import SelfConsistency

    class Mine(SelfConsistency):
        pass

    calls: list[object] = []
    monkeypatch.setattr(engine, "_WARM", set())
    monkeypatch.setattr(dispatch, "warm", calls.append)
    engine.prepare([tiny_store(3, questions=1, branches=4)], [Mine(2)], runs=1, protocol=Protocol())
    assert calls == []


def test_a_kernel_that_fails_to_compile_in_prepare_switches_to_python(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from numba.core.errors import TypingError

    def broken(kernels: tuple[str, ...] = ()) -> None:
        raise TypingError("simulated compile failure")

    monkeypatch.setitem(engine._STATE, "available", True)
    monkeypatch.setattr(engine, "_WARM", set())
    monkeypatch.setattr(dispatch, "warm", broken)
    store = tiny_store(4, questions=2, branches=6)
    with caplog.at_level(logging.WARNING, logger="autotts.engine"):
        engine.prepare([store], [ControllerSpec.parse("asc").build()], runs=2, protocol=Protocol())
    assert engine.available() is False
    assert engine.plan_for(ControllerSpec.parse("asc").build()) is None
    assert [r.getMessage() for r in caplog.records] == [
        "replay kernels failed to compile (simulated compile failure); using the Python controllers"
    ]


def test_a_warmed_kernel_is_never_compiled_again() -> None:
    # The warm-up calls each kernel with the argument types of a real run (int64 costs,
    # int32 answers, the parameters' int/float types), so no real cell adds a signature.
    from autotts.engine import kernels

    dispatch.warm(dispatch.KERNELS)
    before = {name: len(getattr(kernels, name).signatures) for name in dispatch.KERNELS}
    store = tiny_store(7, questions=3, branches=8)
    for entry in dispatch.KERNEL_TABLE:
        spec = ControllerSpec.parse(next(n for n, c in registry().items() if c is entry.controller))
        for record in (False, True):
            for protocol in (Protocol(), Protocol("subsample", 4)):
                run_cell(store, spec, runs=2, protocol=protocol, record=record)
    after = {name: len(getattr(kernels, name).signatures) for name in dispatch.KERNELS}
    assert after == before


def test_run_builtin_gives_the_python_paths_arrays_and_no_traces_unless_asked() -> None:
    store = tiny_store(8, questions=4, branches=8)
    for name in ("sc:n=3", "cmc:beta=0.4", "parallel-probe:chains=4"):
        spec = ControllerSpec.parse(name)
        done = engine.run_builtin(store, spec.build(), runs=3, protocol=Protocol())
        reference = run_cell(store, spec, runs=3, fast=False)
        assert done is not None
        assert done.answers == reference.answers
        assert done.correct.dtype == np.bool_
        assert np.array_equal(done.correct, reference.correct)
        for got, want in ((done.cost, reference.cost), (done.sequential, reference.sequential)):
            assert got.dtype == np.int64  # token counts stay exact integers, whatever their size
            assert np.array_equal(got, want)
        assert done.traces == ()
        plan = engine.plan_for(spec.build())
        assert plan is not None
        assert dispatch.run_plan(store, plan, runs=3, protocol=Protocol()).traces == ()


def test_a_kernel_entry_must_give_one_sample_value_per_parameter() -> None:
    from autotts.controllers.self_consistency import SelfConsistency

    with pytest.raises(ValueError, match=r"^sc_kernel: 2 parameters but 1 sample values$"):
        dispatch.KernelEntry(SelfConsistency, "sc_kernel", ("n", "m"), (1,))
    assert dispatch.KernelEntry(SelfConsistency, "sc_kernel", ("n",), (1,)).params == ("n",)


def test_numba_availability_is_probed_once_and_a_failure_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delitem(engine._STATE, "available", raising=False)
    assert engine.available() is True
    assert engine._STATE == {"available": True}
    # The kernels module cannot be imported (numba missing or broken): Python controllers.
    monkeypatch.delitem(engine._STATE, "available")
    monkeypatch.setitem(sys.modules, "autotts.engine.kernels", None)
    monkeypatch.delattr(engine, "kernels", raising=False)
    with caplog.at_level(logging.INFO, logger="autotts.engine"):
        assert engine.available() is False
        assert engine.available() is False
    assert engine._STATE == {"available": False}
    assert [r.getMessage() for r in caplog.records] == [
        "fast replay kernels unavailable (ModuleNotFoundError: import of autotts.engine.kernels halted; "
        "None in sys.modules); using the Python controllers"
    ]
    assert engine.plan_for(ControllerSpec.parse("sc").build()) is None


def test_a_kernel_that_fails_to_compile_in_a_run_is_logged_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from numba.core.errors import TypingError

    def broken(*args: Any, **kwargs: Any) -> None:
        raise TypingError("simulated compile failure")

    monkeypatch.setitem(engine._STATE, "available", True)
    monkeypatch.setattr(dispatch, "run_plan", broken)
    store = tiny_store(9, questions=2, branches=6)
    with caplog.at_level(logging.WARNING, logger="autotts.engine"):
        assert engine.run_builtin(store, ControllerSpec.parse("esc").build(), runs=2, protocol=Protocol()) is None
    assert [r.getMessage() for r in caplog.records] == [
        "replay kernel 'esc_kernel' failed to compile (simulated compile failure); using the Python controllers"
    ]
    assert engine.available() is False


def test_kernel_arguments_come_from_attributes_or_settings_and_none_means_no_limit() -> None:
    from autotts.controllers.self_consistency import SelfConsistency

    entry = dispatch.KernelEntry(SelfConsistency, "sc_kernel", ("n", "cap", "alpha"), (1, 1, 0.5))

    class FromSettings:
        def __init__(self) -> None:
            self.n = 3
            self.settings = {"cap": None, "alpha": 1}

    assert entry.arguments(FromSettings()) == (3, -1, 1.0)
    assert [type(v) for v in entry.arguments(FromSettings())] == [int, int, float]

    class Missing:
        n = 3
        settings = None

    with pytest.raises(AttributeError, match=r"^Missing has no parameter 'cap' for sc_kernel$"):
        entry.arguments(Missing())
