"""Fast, exact replay of the built-in controllers: compiled kernels over array-laid stores.

The Python controllers in :mod:`autotts.controllers` are the readable reference; this
package replays the same algorithms with numba-compiled kernels, all episodes of a cell
in one call, and gives bit-identical answers, costs, sequential tokens and traces (the
test suite compares both paths exhaustively). The evaluation runner uses a kernel
whenever the controller is a built-in one with a kernel and numba is importable, and
falls back to the Python controller otherwise; user-written controllers always run in
Python against :class:`~autotts.env.session.ReplaySession`.

Nothing here imports numba until a kernel is actually needed, so ``import autotts``
stays cheap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from autotts.engine import dispatch
from autotts.engine.dispatch import KERNEL_TABLE, FastCell, KernelEntry, KernelPlan
from autotts.engine.layout import confidence_table, layout_of, orders_for
from autotts.env.protocols import Protocol
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

__all__ = ["KERNEL_TABLE", "FastCell", "KernelEntry", "KernelPlan", "available", "plan_for", "prepare", "run_builtin"]

_STATE: dict[str, bool] = {}
_WARM: set[str] = set()
_LOCK = threading.Lock()


def available() -> bool:
    """Whether the compiled kernels can be used (numba importable and working)."""
    ok = _STATE.get("available")
    if ok is None:
        try:
            from autotts.engine import kernels  # noqa: F401  (imports numba)
        except Exception as exc:  # any failure of an optional accelerator means: use Python
            log.info("fast replay kernels unavailable (%s: %s); using the Python controllers", type(exc).__name__, exc)
            ok = False
        else:
            ok = True
        _STATE["available"] = ok
    return ok


def plan_for(controller: object) -> KernelPlan | None:
    """The kernel plan for a controller instance (``None``: no kernel, or numba missing)."""
    if not available():
        return None
    return dispatch.plan_for(controller)


def run_builtin(
    store: ReplayStore,
    controller: object,
    *,
    runs: int,
    protocol: Protocol,
    record: bool = False,
) -> FastCell | None:
    """Replay a built-in controller on its kernel; ``None`` when it has none (use Python then)."""
    plan = plan_for(controller)
    if plan is None:
        return None
    from numba.core.errors import NumbaError  # numba is imported by available() already

    try:
        return dispatch.run_plan(store, plan, runs=runs, protocol=protocol, record=record)
    except NumbaError as exc:  # a kernel that cannot compile here: keep working, in Python
        log.warning("replay kernel %r failed to compile (%s); using the Python controllers", plan.kernel, exc)
        _STATE["available"] = False
        return None


def prepare(stores: Iterable[ReplayStore], controllers: Iterable[object], *, runs: int, protocol: Protocol) -> None:
    """Lay out stores and compile the kernels the controllers need, before workers fork.

    Under the ``fork`` start method workers inherit everything built here, so no worker
    lays a store out or compiles a kernel again. Cheap when there is nothing to do.
    """
    plans = [p for p in (plan_for(c) for c in controllers) if p is not None]
    if not plans:
        return
    from numba.core.errors import NumbaError  # numba is imported by available() already

    needed = tuple(dict.fromkeys(p.kernel for p in plans))
    with _LOCK:
        missing = tuple(k for k in needed if k not in _WARM)
        if missing:
            try:
                dispatch.warm(missing)
            except NumbaError as exc:  # see run_builtin: fall back to the Python controllers
                log.warning("replay kernels failed to compile (%s); using the Python controllers", exc)
                _STATE["available"] = False
                return
            _WARM.update(missing)
    confidence = any(p.entry.confidence for p in plans)
    for store in stores:
        orders = orders_for(layout_of(store), protocol, runs)
        if confidence:
            confidence_table(orders.max_length)
