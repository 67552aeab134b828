"""Which built-in controller runs on which kernel (:data:`KERNEL_TABLE`), and running a cell on it.

Each built-in declares its kernel once: class, kernel function, parameter names and a
warm-up sample; plans, argument types and warm-up are derived from that entry. A
controller instance is matched by its exact class (a user subclass may override
``solve`` and so never takes a kernel) and its validated attributes become the kernel's
parameters, so a spec means the same thing on both paths. Everything a kernel needs
besides the store arrays (branch orders, the beta-confidence table) is built here and
cached per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray

from autotts.controllers.adaptive import AdaptiveSelfConsistency
from autotts.controllers.cmc import ConfidenceMomentum
from autotts.controllers.consistency_exit import ConsistencyExit
from autotts.controllers.early_stopping import EarlyStoppingSelfConsistency
from autotts.controllers.parallel_probe import ParallelProbe
from autotts.controllers.self_consistency import SelfConsistency
from autotts.controllers.wide_commit import WideThenCommit
from autotts.engine.layout import Orders, StoreLayout, confidence_table, layout_of, orders_for
from autotts.engine.traces import CellEvents, CellTraces
from autotts.env.protocols import Protocol
from autotts.env.session import QuestionTrace
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta

log = logging.getLogger(__name__)

#: A kernel parameter's value: ints and floats as the kernel types them.
Scalar = int | float


@dataclass(frozen=True)
class KernelEntry:
    """The link from one built-in controller class to its compiled kernel, declared once.

    ``params`` name the controller's attributes (or keys of its ``settings``) in the
    kernel's argument order; a ``None`` value is passed as -1 ("no limit"). ``sample``
    is one valid value per parameter, used to compile the kernel ahead of a process
    pool; its Python types (int or float) are the types the kernel is called with.
    """

    controller: type
    kernel: str
    """Name of the kernel function in :mod:`autotts.engine.kernels`."""
    params: tuple[str, ...]
    sample: tuple[Scalar, ...]
    confidence: bool = False
    """Whether the kernel reads the beta-confidence table (the others get an empty one)."""

    def __post_init__(self) -> None:
        if len(self.params) != len(self.sample):
            raise ValueError(f"{self.kernel}: {len(self.params)} parameters but {len(self.sample)} sample values")

    def arguments(self, controller: object) -> tuple[Scalar, ...]:
        """The controller's validated parameters as the kernel's scalar arguments."""
        settings = getattr(controller, "settings", None)
        values: list[Scalar] = []
        for name, sample in zip(self.params, self.sample, strict=True):
            if hasattr(controller, name):
                value = getattr(controller, name)
            elif isinstance(settings, dict) and name in settings:
                value = settings[name]
            else:
                raise AttributeError(f"{type(controller).__name__} has no parameter {name!r} for {self.kernel}")
            if value is None:
                value = -1
            values.append(float(value) if isinstance(sample, float) else int(value))
        return tuple(values)


#: Every built-in controller with a kernel. ``tests/test_engine_exact.py`` fails when a
#: registered built-in is missing here (it would silently run in Python).
KERNEL_TABLE: tuple[KernelEntry, ...] = (
    KernelEntry(SelfConsistency, "sc_kernel", ("n",), (1,)),
    KernelEntry(AdaptiveSelfConsistency, "asc_kernel", ("max_samples", "threshold"), (1, 0.5), confidence=True),
    KernelEntry(EarlyStoppingSelfConsistency, "esc_kernel", ("max_samples", "window"), (1, 1)),
    KernelEntry(
        ParallelProbe,
        "pp_kernel",
        ("chains", "T", "warm_up", "prune_patience", "burst", "max_steps"),
        (1, 1, 0, 1, 1, 1),
    ),
    KernelEntry(
        ConfidenceMomentum,
        "cmc_kernel",
        (
            "n_init",
            "max_branches",
            "warm_up",
            "abandon_patience",
            "window",
            "alpha",
            "conf_threshold",
            "slack",
            "aligned_burst",
            "widen_burst",
            "trend_threshold",
            "min_complete",
            "max_steps",
        ),
        (2, 4, 2, 3, 2, 0.5, 0.9, 0.01, 1, 1, 0.01, 2, 5),
        confidence=True,
    ),
    KernelEntry(ConsistencyExit, "cex_kernel", ("chains", "k", "max_intervals"), (1, 1, -1)),
    KernelEntry(WideThenCommit, "wide_kernel", ("width", "depth"), (1, 1)),
)

_BY_CLASS: dict[type, KernelEntry] = {e.controller: e for e in KERNEL_TABLE}
_BY_KERNEL: dict[str, KernelEntry] = {e.kernel: e for e in KERNEL_TABLE}

#: Kernel names, in the order :func:`warm` compiles them by default.
KERNELS: tuple[str, ...] = tuple(_BY_KERNEL)


@dataclass(frozen=True)
class KernelPlan:
    """A kernel and the scalar arguments one controller instance gives it."""

    kernel: str
    params: tuple[Scalar, ...]

    @property
    def entry(self) -> KernelEntry:
        """The table entry of the kernel."""
        return _BY_KERNEL[self.kernel]


@dataclass(frozen=True)
class FastCell:
    """What a kernel run gives back, in the shapes ``CellResult`` holds."""

    answers: tuple[tuple[str | None, ...], ...]
    correct: NDArray[np.bool_]
    cost: NDArray[np.int64]
    sequential: NDArray[np.int64]
    traces: tuple[QuestionTrace, ...]


def plan_for(controller: object) -> KernelPlan | None:
    """The kernel plan of a built-in controller instance, or ``None`` if it has no kernel.

    The class must match exactly: a subclass may override ``solve`` and so must run in Python.
    """
    entry = _BY_CLASS.get(type(controller))
    if entry is None:
        return None
    return KernelPlan(entry.kernel, entry.arguments(controller))


def _kernel(name: str) -> Callable[..., NDArray[np.int32]]:
    # Importing the kernels module imports numba; nothing else in this module needs it.
    from autotts.engine import kernels

    return cast(Callable[..., NDArray[np.int32]], getattr(kernels, name))


_NO_CONFIDENCE = np.zeros((1, 1), dtype=np.float64)


def _call(
    layout: StoreLayout,
    orders: Orders,
    plan: KernelPlan,
    runs: int,
    record: bool,
) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
    nq = layout.n_questions
    answer_out = np.empty((runs, nq), dtype=np.int32)
    cost_out = np.empty((runs, nq), dtype=np.int64)
    sequential_out = np.empty((runs, nq), dtype=np.int64)
    events = np.empty(1 << 16 if record else 0, dtype=np.int32)
    event_start = np.empty(runs * nq + 1, dtype=np.int64)
    # Only the β-kernels read the confidence table; the others never pay for building it.
    confidence = confidence_table(orders.max_length) if plan.entry.confidence else _NO_CONFIDENCE
    events = _kernel(plan.kernel)(
        layout.kernel_store,
        orders,
        confidence,
        *plan.params,
        bool(record),
        answer_out,
        cost_out,
        sequential_out,
        events,
        event_start,
    )
    return answer_out, cost_out, sequential_out, events, event_start


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
    ans, cost, seq, events, offsets = _call(layout, orders, plan, runs, record)
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
    question = Question("warm", "", "A", 1, (Branch(("A",), 2, "A"),))
    store = ReplayStore(StoreMeta("engine", "warm"), (question,))
    layout = layout_of(store)
    orders = orders_for(layout, Protocol(), 1)
    for name in kernels:
        _call(layout, orders, KernelPlan(name, _BY_KERNEL[name].sample), 1, True)
