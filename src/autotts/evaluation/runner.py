"""Replay evaluation: plan cells from stores × controllers and run them on a backend."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from autotts.controllers.spec import ControllerSpec
from autotts.engine import prepare
from autotts.env.protocols import Protocol
from autotts.errors import ConfigError
from autotts.evaluation.backends import RunOptions, run_tasks
from autotts.evaluation.cell import Cell, expand_cells, run_cell
from autotts.evaluation.results import CellResult, cell_key
from autotts.store.schema import ReplayStore

__all__ = ["Cell", "ProgressCallback", "cell_key", "evaluate", "evaluate_cells", "expand_cells", "records", "run_cell"]

log = logging.getLogger(__name__)

#: Called after each finished cell with (cells done, cells total, the result).
ProgressCallback = Callable[[int, int, CellResult], None]


def evaluate_cells(
    cells: Sequence[Cell],
    *,
    runs: int = 100,
    protocol: Protocol | None = None,
    record: bool = False,
    quirks: bool = False,
    fast: bool = True,
    backend: str = "processes",
    workers: int | None = None,
    address: str | None = None,
    progress: ProgressCallback | None = None,
    cell_timeout: float | None = None,
) -> list[CellResult]:
    """Evaluate prepared cells on a backend; results come back in cell order.

    ``progress`` is called as each cell finishes (in completion order), which is where
    callers stream results to disk. ``cell_timeout`` limits each cell's wall time
    (seconds; :class:`~autotts.errors.CellTimeoutError` past it).
    """
    if runs < 1:
        raise ConfigError(f"runs must be at least 1, got {runs}")
    options = RunOptions(runs=runs, protocol=protocol or Protocol(), record=record, quirks=quirks, fast=fast)
    if options.protocol.name == "subsample":
        for cell in cells:
            smallest = min((q.n_branches for q in cell.store.replay), default=0)
            if options.protocol.size > smallest:
                raise ConfigError(
                    f"subsample size {options.protocol.size} exceeds the {smallest} branches of a question "
                    f"in {cell.store.name}; choose a size of at most {smallest}"
                )
    stores: list[ReplayStore] = []
    index: dict[int, int] = {}
    tasks = []
    controllers = []
    for cell in cells:
        sid = id(cell.store)
        if sid not in index:
            index[sid] = len(stores)
            stores.append(cell.store)
            cell.store.replay  # noqa: B018  (intern once here, before workers fork)
        controllers.append(cell.spec.build())  # fail fast on a bad spec, before any worker starts
        tasks.append((index[sid], cell.spec))
    # Lay stores out and compile the needed kernels once here, so that forked workers
    # inherit them instead of each doing it again.
    if fast:
        prepare(stores, controllers, runs=runs, protocol=options.protocol)
    results: list[CellResult | None] = [None] * len(cells)
    finished = run_tasks(
        stores, tasks, options, backend=backend, workers=workers, address=address, cell_timeout=cell_timeout
    )
    with contextlib.closing(finished):  # an interruption stops the workers here, not at garbage collection
        for done, (i, result) in enumerate(finished, start=1):
            results[i] = result
            if log.isEnabledFor(logging.INFO):  # the summary (bootstrap included) is only computed when shown
                log.info("%s on %s: %.2f%% / %.0f tokens", result.label, result.store, result.accuracy, result.tokens)
            if progress is not None:
                progress(done, len(cells), result)
    return [r for r in results if r is not None]


def _as_spec(controller: Any) -> ControllerSpec:
    if isinstance(controller, ControllerSpec):
        return controller
    if isinstance(controller, str):
        return ControllerSpec.parse(controller)
    return ControllerSpec.of(controller)


def evaluate(
    stores: ReplayStore | Sequence[ReplayStore],
    controllers: str | ControllerSpec | Any | Iterable[str | ControllerSpec | Any],
    *,
    betas: Sequence[float] | None = None,
    runs: int = 100,
    protocol: str | Protocol = "shuffle",
    subsample_size: int = 64,
    record: bool = False,
    quirks: bool = False,
    fast: bool = True,
    backend: str = "processes",
    workers: int | None = None,
    address: str | None = None,
    progress: ProgressCallback | None = None,
    cell_timeout: float | None = None,
) -> list[CellResult]:
    """Evaluate controllers on stores under the reference protocol (or another).

    ``controllers`` are specs (``"sc:n=64"``, ``"cmc"``, ``"file.py:Class"``), parsed
    :class:`ControllerSpec` objects, or controller classes / instances from Python.
    ``betas`` expands every controller that takes ``beta`` into one cell per value.
    Cells run on ``backend`` (``serial``, ``processes`` = all cores by default, or
    ``ray``); results are identical on all of them. Built-in controllers run on
    compiled kernels with bit-identical results; ``fast=False`` runs their Python
    reference implementations instead. Returns one :class:`CellResult` per cell, in
    store-major order.
    """
    store_list = [stores] if isinstance(stores, ReplayStore) else list(stores)
    if isinstance(controllers, (str, ControllerSpec)) or not isinstance(controllers, Iterable):
        controllers = [controllers]
    specs = [_as_spec(c) for c in controllers]
    proto = protocol if isinstance(protocol, Protocol) else Protocol(protocol, subsample_size)
    cells = expand_cells(store_list, specs, betas)
    return evaluate_cells(
        cells,
        runs=runs,
        protocol=proto,
        record=record,
        quirks=quirks,
        fast=fast,
        backend=backend,
        workers=workers,
        address=address,
        progress=progress,
        cell_timeout=cell_timeout,
    )


def records(results: Iterable[CellResult]) -> list[dict[str, Any]]:
    """JSON records of many results."""
    return [r.to_dict() for r in results]
