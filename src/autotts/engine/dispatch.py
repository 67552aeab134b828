"""Which built-in controller runs on which kernel, and running a cell on it.

A controller instance is matched by its exact class (a user subclass may override
``solve`` and so never takes a kernel) and its validated attributes become the kernel's
parameters, so a spec means the same thing on both paths. Everything a kernel needs
besides the store arrays (branch orders, the beta-confidence table) is built here and
cached per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from autotts.engine.layout import Orders, StoreLayout, confidence_table, layout_of, orders_for
from autotts.engine.traces import CellEvents, CellTraces
from autotts.env.protocols import Protocol
from autotts.env.session import QuestionTrace
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

#: Kernel names, in the order :func:`warm` compiles them.
KERNELS = ("sc", "asc", "esc", "parallel-probe", "cmc", "consistency-exit", "wide-commit")

_KERNEL_FUNCTIONS = {
    "sc": "sc_kernel",
    "asc": "asc_kernel",
    "esc": "esc_kernel",
    "parallel-probe": "pp_kernel",
    "cmc": "cmc_kernel",
    "consistency-exit": "cex_kernel",
    "wide-commit": "wide_kernel",
}


@dataclass(frozen=True)
class KernelPlan:
    """A kernel name and its scalar parameters, in the kernel's argument order."""

    kernel: str
    params: tuple[int | float, ...]


@dataclass(frozen=True)
class FastCell:
    """What a kernel run gives back, in the shapes ``CellResult`` holds."""

    answers: tuple[tuple[str | None, ...], ...]
    correct: NDArray[np.bool_]
    cost: NDArray[np.int64]
    sequential: NDArray[np.int64]
    traces: tuple[QuestionTrace, ...]


def plan_for(controller: object) -> KernelPlan | None:
    """The kernel plan of a built-in controller instance, or ``None`` if it has no kernel."""
    from autotts.controllers.adaptive import AdaptiveSelfConsistency
    from autotts.controllers.cmc import MAX_STEPS, ConfidenceMomentum
    from autotts.controllers.consistency_exit import ConsistencyExit
    from autotts.controllers.early_stopping import EarlyStoppingSelfConsistency
    from autotts.controllers.parallel_probe import ParallelProbe
    from autotts.controllers.self_consistency import SelfConsistency
    from autotts.controllers.wide_commit import WideThenCommit

    kind = type(controller)
    c: Any = controller
    if kind is SelfConsistency:
        return KernelPlan("sc", (int(c.n),))
    if kind is AdaptiveSelfConsistency:
        return KernelPlan("asc", (int(c.max_samples), float(c.threshold)))
    if kind is EarlyStoppingSelfConsistency:
        return KernelPlan("esc", (int(c.max_samples), int(c.window)))
    if kind is ParallelProbe:
        return KernelPlan(
            "parallel-probe",
            (int(c.chains), int(c.T), int(c.warm_up), int(c.prune_patience), int(c.burst), int(c.max_steps)),
        )
    if kind is ConfidenceMomentum:
        s = c.settings
        return KernelPlan(
            "cmc",
            (
                int(s["n_init"]),
                int(s["max_branches"]),
                int(s["warm_up"]),
                int(s["abandon_patience"]),
                int(s["window"]),
                float(s["alpha"]),
                float(s["conf_threshold"]),
                float(s["slack"]),
                int(s["aligned_burst"]),
                int(s["widen_burst"]),
                float(s["trend_threshold"]),
                int(s["min_complete"]),
                int(MAX_STEPS),
            ),
        )
    if kind is ConsistencyExit:
        cap = -1 if c.max_intervals is None else int(c.max_intervals)
        return KernelPlan("consistency-exit", (int(c.chains), int(c.k), cap))
    if kind is WideThenCommit:
        return KernelPlan("wide-commit", (int(c.width), int(c.depth)))
    return None


def _kernel(name: str) -> Callable[..., NDArray[np.int32]]:
    from autotts.engine import kernels

    return cast(Callable[..., NDArray[np.int32]], getattr(kernels, _KERNEL_FUNCTIONS[name]))


def _call(
    layout: StoreLayout,
    orders: Orders,
    conf: NDArray[np.float64],
    plan: KernelPlan,
    runs: int,
    record: bool,
) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
    nq = layout.n_questions
    ans = np.empty((runs, nq), dtype=np.int32)
    cost = np.empty((runs, nq), dtype=np.int64)
    seq = np.empty((runs, nq), dtype=np.int64)
    events = np.empty(1 << 16 if record else 0, dtype=np.int32)
    offsets = np.empty(runs * nq + 1, dtype=np.int64)
    events = _kernel(plan.kernel)(
        layout.probes,
        layout.n_probes,
        layout.finals,
        layout.tokens,
        layout.delta,
        layout.err,
        orders.table,
        orders.length,
        orders.kind,
        conf,
        layout.max_vocab,
        *plan.params,
        bool(record),
        ans,
        cost,
        seq,
        events,
        offsets,
    )
    return ans, cost, seq, events, offsets


def run_plan(
    store: ReplayStore,
    plan: KernelPlan,
    *,
    runs: int,
    protocol: Protocol,
    record: bool = False,
) -> FastCell:
    """Run every episode of one cell on its kernel and decode the answers."""
    layout = layout_of(store)
    orders = orders_for(layout, protocol, runs)
    conf = confidence_table(orders.max_length)
    ans, cost, seq, events, offsets = _call(layout, orders, conf, plan, runs, record)
    vocabs = layout.vocabs
    answers = tuple(tuple(None if c < 0 else vocabs[q][c] for q, c in enumerate(row)) for row in ans.tolist())
    correct = (ans == layout.gold[np.newaxis, :]) & (ans >= 0)
    traces: tuple[QuestionTrace, ...] = ()
    if record:
        # Trim the growth slack of the buffer (it may be up to twice the size needed).
        codes = events[: int(offsets[-1])].copy()
        cell = CellEvents(codes, offsets, store.replay, protocol)
        # A lazy sequence equal to the tuple the Python path builds (see engine.traces).
        traces = cast(tuple[QuestionTrace, ...], CellTraces(cell, answers, correct))
    return FastCell(answers=answers, correct=correct, cost=cost, sequential=seq, traces=traces)


def warm(kernels: tuple[str, ...] = KERNELS) -> None:
    """Compile (or load from numba's cache) the named kernels now, on a one-branch store.

    Called before a process pool forks, so that workers inherit compiled kernels
    instead of each compiling them again.
    """
    from autotts.store.schema import Branch, Question, StoreMeta

    question = Question("warm", "", "A", 1, (Branch(("A",), 2, "A"),))
    store = ReplayStore(StoreMeta("engine", "warm"), (question,))
    layout = layout_of(store)
    orders = orders_for(layout, Protocol(), 1)
    conf = confidence_table(orders.max_length)
    samples: dict[str, tuple[int | float, ...]] = {
        "sc": (1,),
        "asc": (1, 0.5),
        "esc": (1, 1),
        "parallel-probe": (1, 1, 0, 1, 1, 1),
        "cmc": (2, 4, 2, 3, 2, 0.5, 0.9, 0.01, 1, 1, 0.01, 2, 5),
        "consistency-exit": (1, 1, -1),
        "wide-commit": (1, 1),
    }
    for name in kernels:
        _call(layout, orders, conf, KernelPlan(name, samples[name]), 1, True)
