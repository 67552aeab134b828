"""Replay evaluation: run controllers on stores under a protocol and collect the arrays."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autotts.controllers.loader import check_answer, crash_error, source_of
from autotts.controllers.spec import ControllerSpec
from autotts.env.session import ReplaySession
from autotts.errors import ConfigError, ControllerError
from autotts.evaluation.backends import RunOptions, run_tasks
from autotts.evaluation.protocols import Protocol
from autotts.evaluation.results import CellResult, QuestionTrace
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

#: Called after each finished cell with (cells done, cells total, the result).
ProgressCallback = Callable[[int, int, CellResult], None]


@dataclass(frozen=True)
class Cell:
    """One unit of evaluation work: a store and a fully specified controller."""

    store: ReplayStore
    spec: ControllerSpec


def expand_cells(
    stores: Sequence[ReplayStore],
    specs: Sequence[ControllerSpec],
    betas: Sequence[float] | None = None,
) -> list[Cell]:
    """Every (store, controller, β) combination; β applies to controllers that take ``beta``."""
    if betas:
        fixed = [spec.label for spec in specs if "beta" in spec.params]
        if fixed:
            raise ConfigError(
                f"{', '.join(fixed)} fix β in the controller spec while β values are given too (--beta / betas); "
                "drop one of them"
            )
    cells: list[Cell] = []
    for store in stores:
        for spec in specs:
            if betas and spec.accepts("beta") and "beta" not in spec.params:
                cells.extend(Cell(store, spec.with_params(beta=float(b))) for b in betas)
            else:
                cells.append(Cell(store, spec))
    return cells


def run_cell(
    store: ReplayStore,
    spec: ControllerSpec,
    *,
    runs: int = 100,
    protocol: Protocol | None = None,
    record: bool = False,
    quirks: bool = False,
    fast: bool = True,
) -> CellResult:
    """Evaluate one controller spec on one store for ``runs`` runs.

    With ``record=True`` every episode's execution trace is kept in the result. A
    built-in controller runs on its compiled kernel (:mod:`autotts.engine`) when one
    exists and numba is available, with bit-identical results (answers, costs,
    sequential tokens and traces); ``fast=False`` forces the Python controller, the
    reference the kernels are tested against. ``quirks`` only changes what happens on
    illegal actions, which built-in controllers never take, so it does not affect them.
    """
    protocol = protocol or Protocol()
    if runs < 1:
        raise ConfigError(f"runs must be at least 1, got {runs}")
    controller = spec.build()
    if fast:
        from autotts.engine import run_builtin

        t0 = time.perf_counter()
        done = run_builtin(store, controller, runs=runs, protocol=protocol, record=record)
        if done is not None:
            return CellResult(
                store=store.name,
                model=store.meta.model,
                benchmark=store.meta.benchmark,
                controller=spec.name,
                params=dict(spec.params),
                protocol=protocol.label,
                correct=done.correct,
                cost=done.cost,
                sequential=done.sequential,
                answers=done.answers,
                traces=done.traces,
                seconds=time.perf_counter() - t0,
            )
    replay = store.replay
    golds = store.golds
    source = source_of(spec.path, controller)
    nq = len(replay)
    correct = np.zeros((runs, nq), dtype=bool)
    cost = np.zeros((runs, nq), dtype=np.int64)
    seq = np.zeros((runs, nq), dtype=np.int64)
    answers: list[tuple[str | None, ...]] = []
    traces: list[QuestionTrace] = []
    t0 = time.perf_counter()
    for r in range(runs):
        run_answers: list[str | None] = []
        for qi, q in enumerate(replay):
            session = ReplaySession(q, protocol.order(q.n_branches, r), record=record, quirks=quirks)
            where = f"on {store.name} question {qi} (run {r})"
            try:
                answer = check_answer(controller.solve(session), where=f"controller {spec.label} {where}")
            except ControllerError:
                raise
            except Exception as exc:
                raise crash_error(exc, label=spec.label, source=source, where=where, question=qi) from exc
            ok = answer is not None and answer == golds[qi]
            correct[r, qi] = ok
            cost[r, qi] = session.cost
            seq[r, qi] = session.sequential_tokens
            run_answers.append(answer)
            if record:
                traces.append(QuestionTrace(r, qi, answer, ok, session.trace, session.notes))
        answers.append(tuple(run_answers))
    return CellResult(
        store=store.name,
        model=store.meta.model,
        benchmark=store.meta.benchmark,
        controller=spec.name,
        params=dict(spec.params),
        protocol=protocol.label,
        correct=correct,
        cost=cost,
        sequential=seq,
        answers=tuple(answers),
        traces=tuple(traces),
        seconds=time.perf_counter() - t0,
    )


def run_with(store: ReplayStore, spec: ControllerSpec, options: RunOptions) -> CellResult:
    """Run one cell with the shared options (what every backend executes)."""
    return run_cell(
        store,
        spec,
        runs=options.runs,
        protocol=options.protocol,
        record=options.record,
        quirks=options.quirks,
        fast=options.fast,
    )


def cell_key(store: str, controller: str, params: dict[str, Any], protocol: str, runs: int) -> str:
    """Identity of a cell in streamed results, used by ``--resume`` to skip finished cells."""
    import json

    return json.dumps([store, controller, params, protocol, runs], sort_keys=True, default=str)


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
    from autotts.engine import prepare

    # Lay stores out and compile the needed kernels once here, so that forked workers
    # inherit them instead of each doing it again.
    if fast:
        prepare(stores, controllers, runs=runs, protocol=options.protocol)
    results: list[CellResult | None] = [None] * len(cells)
    finished = run_tasks(
        stores, tasks, options, run_with, backend=backend, workers=workers, address=address, cell_timeout=cell_timeout
    )
    with contextlib.closing(finished):  # an interruption stops the workers here, not at garbage collection
        for done, (i, result) in enumerate(finished, start=1):
            results[i] = result
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
    )


def records(results: Iterable[CellResult]) -> list[dict[str, Any]]:
    """JSON records of many results."""
    return [r.to_record() for r in results]
