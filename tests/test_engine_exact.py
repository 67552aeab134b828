"""Kernels vs the Python reference controllers on small stores: identical arrays, answers and traces.

The stores are drawn to hit the edge cases that decide results: ties (first seen wins),
``ERR`` as an ordinary answer and as the consistency-exit reset, stores that run out,
branches without probes, branches shorter than one interval, questions with different
numbers of branches (even none), and the subsample protocol.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotts import engine
from autotts.controllers.spec import ControllerSpec
from autotts.controllers.voting import beta_confidence
from autotts.evaluation import Protocol, QuestionTrace, run_cell
from autotts.evaluation.results import CellResult
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta
from autotts.testing import tiny_store

pytestmark = pytest.mark.skipif(not engine.available(), reason="numba is not installed: no kernels to compare")

ANSWERS = ["A", "B", "C", "ERR"]


def assert_same(fast: CellResult, ref: CellResult) -> None:
    assert fast.answers == ref.answers
    assert np.array_equal(fast.correct, ref.correct)
    assert np.array_equal(fast.cost, ref.cost)
    assert np.array_equal(fast.sequential, ref.sequential)
    assert fast.cost.dtype == ref.cost.dtype and fast.sequential.dtype == ref.sequential.dtype
    assert fast.correct.dtype == ref.correct.dtype
    names = ("store", "model", "benchmark", "controller", "params", "protocol")
    assert [getattr(fast, n) for n in names] == [getattr(ref, n) for n in names]
    assert len(fast.traces) == len(ref.traces)
    for a, b in zip(fast.traces, ref.traces, strict=True):
        assert (a.run, a.question, a.answer, a.correct, a.notes) == (b.run, b.question, b.answer, b.correct, b.notes)
        assert len(a.events) == len(b.events)
        assert tuple(a.events) == b.events
        assert a.events == b.events and b.events == a.events
        assert a == b


def compare(store: ReplayStore, spec: str, runs: int, protocol: Protocol, record: bool) -> None:
    parsed = ControllerSpec.parse(spec)
    assert engine.plan_for(parsed.build()) is not None, f"{spec} has no kernel"
    fast = run_cell(store, parsed, runs=runs, protocol=protocol, record=record)
    ref = run_cell(store, parsed, runs=runs, protocol=protocol, record=record, fast=False)
    assert_same(fast, ref)


# ------------------------------------------------------------------ strategies
branches = st.builds(
    Branch,
    st.lists(st.sampled_from(ANSWERS), max_size=7).map(tuple),
    st.integers(min_value=0, max_value=4200),
    st.sampled_from(ANSWERS),
)
questions = st.builds(
    lambda i, gold, delta, bs: Question(f"q{i}", "text", gold, delta, tuple(bs)),
    st.integers(0, 9),
    st.sampled_from(["A", "B", "Z"]),  # "Z" never occurs: nothing can be correct
    st.sampled_from([100, 500, 1000]),
    st.lists(branches, min_size=0, max_size=9),
)
stores = st.builds(
    lambda qs: ReplayStore(StoreMeta("hyp", "store"), tuple(qs)),
    st.lists(questions, min_size=1, max_size=3),
)
protocols = st.one_of(st.just(Protocol()), st.integers(1, 6).map(lambda n: Protocol("subsample", n)))
thresholds = st.sampled_from([0.0, 0.5, 0.6875, 0.9, 0.95, 0.999, beta_confidence(2, 0), beta_confidence(3, 1)])


def _spec(name: str, params: dict[str, Any]) -> str:
    items = ",".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return f"{name}:{items}" if items else name


specs = st.one_of(
    st.builds(lambda n: _spec("sc", {"n": n}), st.integers(1, 12)),
    st.builds(lambda m, t: _spec("asc", {"max_samples": m, "threshold": t}), st.integers(1, 12), thresholds),
    st.integers(1, 5).flatmap(
        lambda w: st.builds(lambda m: _spec("esc", {"max_samples": m, "window": w}), st.integers(w, 15))
    ),
    st.builds(
        lambda c, t, wu, p, b, ms: _spec(
            "parallel-probe", {"chains": c, "T": t, "warm_up": wu, "prune_patience": p, "burst": b, "max_steps": ms}
        ),
        st.integers(1, 10),
        st.integers(1, 6),
        st.integers(0, 5),
        st.integers(1, 4),
        st.integers(1, 3),
        st.integers(0, 30),
    ),
    st.builds(
        lambda b: _spec("cmc", {"beta": b}),
        st.one_of(st.sampled_from([i / 10 for i in range(11)]), st.floats(0, 1)),
    ),
    st.builds(
        lambda c, k, m: _spec("consistency-exit", {"chains": c, "k": k, "max_intervals": m}),
        st.integers(1, 6),
        st.integers(1, 4),
        st.one_of(st.none(), st.integers(1, 6)),
    ),
    st.builds(lambda b: _spec("consistency-exit", {"beta": b}), st.floats(0, 1)),
    st.builds(lambda w, d: _spec("wide-commit", {"width": w, "depth": d}), st.integers(1, 8), st.integers(1, 6)),
    st.builds(lambda b: _spec("wide-commit", {"beta": b}), st.floats(0, 1)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores, specs, st.integers(1, 4), protocols, st.booleans())
def test_kernels_match_the_python_controllers(store, spec, runs, protocol, record) -> None:  # type: ignore[no-untyped-def]
    compare(store, spec, runs, protocol, record)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 50), st.integers(2, 24), specs, st.booleans())
def test_kernels_match_on_synthetic_stores(seed, n_branches, spec, record) -> None:  # type: ignore[no-untyped-def]
    store = tiny_store(seed, questions=3, branches=n_branches)
    compare(store, spec, 3, Protocol(), record)


# ----------------------------------------------------------------- hand-built
def _q(*bs: tuple[tuple[str, ...], int, str], gold: str = "A") -> Question:
    return Question("q", "t", gold, 500, tuple(Branch(p, t, f) for p, t, f in bs))


HAND = {
    "ties": _q(((), 10, "A"), ((), 10, "B"), ((), 10, "B"), ((), 10, "A"), ((), 10, "C")),
    "err": _q((("ERR", "ERR", "A"), 1400, "ERR"), (("ERR",), 900, "A"), (("ERR", "ERR"), 0, "ERR")),
    "no_probes": _q(((), 700, "B"), ((), 800, "A"), ((), 900, "A")),
    "short": _q((("A", "A", "A", "A"), 100, "A"), (("B",) * 6, 2600, "B"), (("A", "B") * 3, 3100, "A")),
    "one": _q(
        (("A",) * 30, 15000, "A"),
    ),
    "empty": Question("q", "t", "A", 500, ()),
}
BUILTINS = [
    "sc:n=64",
    "asc:max_samples=64,threshold=0.95",
    "esc:max_samples=64,window=8",
    "esc:max_samples=4,window=2",
    "parallel-probe:chains=64",
    "parallel-probe:chains=3,T=2,warm_up=0,prune_patience=1,burst=2",
    "cmc:beta=0.0",
    "cmc:beta=0.5",
    "cmc:beta=1.0",
    "consistency-exit:chains=64",
    "consistency-exit:chains=3,k=1,max_intervals=2",
    "wide-commit:width=64",
    "wide-commit:width=2,depth=3",
]


@pytest.mark.parametrize("spec", BUILTINS)
def test_hand_built_edge_cases(spec: str) -> None:
    store = ReplayStore(StoreMeta("hand", "edge"), tuple(HAND.values()))
    for record in (False, True):
        compare(store, spec, 6, Protocol(), record)
        compare(store, spec, 3, Protocol("subsample", 2), record)


def test_traces_are_lazy_sequences_equal_to_session_tuples_and_pickle() -> None:
    store = tiny_store(1, questions=2, branches=10)
    spec = ControllerSpec.parse("parallel-probe:chains=6,T=3,warm_up=1,prune_patience=1")
    fast = run_cell(store, spec, runs=2, record=True)
    ref = run_cell(store, spec, runs=2, record=True, fast=False)
    trace = fast.traces[0]
    assert isinstance(trace, QuestionTrace)
    assert len(trace.events) == len(ref.traces[0].events) > 0  # length without materializing
    assert trace.events[0] == ref.traces[0].events[0] and trace.events[-1] == ref.traces[0].events[-1]
    assert trace.events[1:3] == ref.traces[0].events[1:3]
    assert [e.action for e in trace.events] == [e.action for e in ref.traces[0].events]
    assert hash(trace.events) == hash(ref.traces[0].events)
    assert any(e.action == "prune" for t in fast.traces for e in t.events)
    restored = pickle.loads(pickle.dumps(fast))
    assert restored.traces == ref.traces
    assert repr(trace.events) == repr(ref.traces[0].events)


def test_user_subclass_of_a_builtin_runs_in_python() -> None:
    from autotts.controllers.self_consistency import SelfConsistency

    class Mine(SelfConsistency):
        pass

    assert engine.plan_for(SelfConsistency(4)) is not None
    assert engine.plan_for(Mine(4)) is None


def test_without_numba_the_python_controllers_run(monkeypatch: pytest.MonkeyPatch) -> None:
    store = tiny_store(2, questions=2, branches=8)
    spec = ControllerSpec.parse("cmc:beta=0.5")
    fast = run_cell(store, spec, runs=3, record=True)
    monkeypatch.setitem(engine._STATE, "available", False)
    assert engine.plan_for(spec.build()) is None
    assert engine.run_builtin(store, spec.build(), runs=3, protocol=Protocol()) is None
    slow = run_cell(store, spec, runs=3, record=True)
    assert_same(fast, slow)
    assert isinstance(slow.traces[0].events, tuple)  # the Python session's own tuples


def test_every_registered_builtin_has_a_kernel() -> None:
    from autotts.controllers import registry
    from autotts.engine.dispatch import KERNEL_TABLE

    declared = {entry.controller for entry in KERNEL_TABLE}
    builtins = {name: cls for name, cls in registry().items() if cls.__module__.startswith("autotts.controllers.")}
    assert len(builtins) >= 7
    missing = sorted(name for name, cls in builtins.items() if cls not in declared)
    assert not missing, f"built-in controllers without a kernel (they would silently run in Python): {missing}"
    for name, cls in builtins.items():
        instance = ControllerSpec.parse(name).build()
        plan = engine.plan_for(instance)
        assert plan is not None and type(instance) is cls, name
        assert len(plan.params) == len(plan.entry.params) and [type(v) for v in plan.params] == [
            type(v) for v in plan.entry.sample
        ], name


def test_every_kernel_compiles() -> None:
    from autotts.engine import kernels
    from autotts.engine.dispatch import KERNELS, warm

    warm(KERNELS)  # raises if a kernel fails to type or compile
    compiled = [getattr(kernels, name) for name in dir(kernels) if name.endswith("_kernel")]
    assert len(compiled) == len(KERNELS)
    assert [k.__name__ for k in compiled if not k.signatures] == []  # each has a compiled signature now


def test_processes_backend_forks_after_preparing_and_agrees_with_serial() -> None:
    from autotts.evaluation import evaluate

    stores = [tiny_store(s, questions=3, branches=12) for s in (3, 4)]
    specs = ["sc:n=5", "asc:max_samples=8", "esc:max_samples=8,window=4", "parallel-probe:chains=6", "cmc"]
    serial = evaluate(stores, specs, betas=[0.2, 0.9], runs=4, backend="serial")
    forked = evaluate(stores, specs, betas=[0.2, 0.9], runs=4, backend="processes", workers=2)
    assert [r.label for r in serial] == [r.label for r in forked]
    for a, b in zip(serial, forked, strict=True):
        assert_same(a, b)
    for store in stores:
        assert "_engine_layout" in store.__dict__  # laid out in the parent, before the fork


def test_a_missing_numba_falls_back_to_python_in_a_fresh_process() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['numba'] = None  # makes 'import numba' fail as if it were not installed\n"
        "from autotts import engine\n"
        "from autotts.evaluation import run_cell\n"
        "from autotts.controllers.spec import ControllerSpec\n"
        "from autotts.testing import tiny_store\n"
        "assert not engine.available()\n"
        "spec = ControllerSpec.parse('parallel-probe:chains=4')\n"
        "r = run_cell(tiny_store(5, questions=2, branches=6), spec, runs=2)\n"
        "print(r.cost.sum())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    expected = run_cell(tiny_store(5, questions=2, branches=6), ControllerSpec.parse("parallel-probe:chains=4"), runs=2)
    assert int(out.stdout.strip()) == int(expected.cost.sum())


def test_a_kernel_that_fails_to_compile_falls_back_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    from numba.core.errors import TypingError

    from autotts.engine import dispatch

    def broken(*args: Any, **kwargs: Any) -> None:
        raise TypingError("simulated compile failure")

    store = tiny_store(6, questions=2, branches=8)
    spec = ControllerSpec.parse("asc:max_samples=6")
    expected = run_cell(store, spec, runs=3, fast=False)
    monkeypatch.setitem(engine._STATE, "available", True)
    monkeypatch.setattr(dispatch, "run_plan", broken)
    got = run_cell(store, spec, runs=3)
    assert_same(got, expected)
    assert not engine.available()
