"""Execution backends for evaluation cells: ``serial``, ``processes`` and ``ray``.

A cell (store × fully specified controller) is deterministic, so every backend gives
identical results; they differ only in where cells run. ``processes`` forks worker
processes that inherit the loaded stores (no copying of replay data per task);
``ray`` ships each store once to the object store and runs cells as remote tasks on a
local or remote cluster (``ray`` is an optional extra).

Results are yielded as cells finish (for progress bars and streaming output) together
with the index of their cell, so callers can restore the original order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from autotts.controllers.spec import ControllerSpec
from autotts.env.protocols import Protocol
from autotts.errors import ConfigError
from autotts.evaluation.cell import run_cell
from autotts.evaluation.results import CellResult
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

BACKENDS = ("serial", "processes", "ray")


@dataclass(frozen=True)
class RunOptions:
    """Options shared by every cell of one evaluation."""

    runs: int = 100
    protocol: Protocol = field(default_factory=Protocol)
    record: bool = False
    quirks: bool = False
    fast: bool = True
    """Run built-in controllers on their compiled kernels (identical results)."""


# Stores of a worker process, installed once per worker by the pool initializer.
_WORKER_STORES: Sequence[ReplayStore] = ()


def _init_worker(stores: Sequence[ReplayStore]) -> None:
    global _WORKER_STORES
    _WORKER_STORES = stores


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


def _run_indexed(store_index: int, spec: ControllerSpec, options: RunOptions) -> CellResult:
    return run_with(_WORKER_STORES[store_index], spec, options)


def _serial(
    stores: Sequence[ReplayStore], tasks: Sequence[tuple[int, ControllerSpec]], options: RunOptions
) -> Iterator[tuple[int, CellResult]]:
    for i, (si, spec) in enumerate(tasks):
        yield i, run_with(stores[si], spec, options)


def _processes(
    stores: Sequence[ReplayStore],
    tasks: Sequence[tuple[int, ControllerSpec]],
    options: RunOptions,
    workers: int | None,
) -> Iterator[tuple[int, CellResult]]:
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if n_workers == 1:
        yield from _serial(stores, tasks, options)
        return
    # Under fork (Linux) the initializer's arguments are inherited, not pickled, so the
    # stores already in memory reach the workers for free; elsewhere they are sent once
    # per worker. Each task then ships only a spec and returns arrays.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(
        max_workers=n_workers, mp_context=ctx, initializer=_init_worker, initargs=(stores,)
    ) as pool:
        pending: dict[Future[CellResult], int] = {
            pool.submit(_run_indexed, si, spec, options): i for i, (si, spec) in enumerate(tasks)
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    yield i, fut.result()
        finally:
            for fut in pending:
                fut.cancel()


def _ray(
    stores: Sequence[ReplayStore],
    tasks: Sequence[tuple[int, ControllerSpec]],
    options: RunOptions,
    address: str | None,
    workers: int | None,
) -> Iterator[tuple[int, CellResult]]:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray backend needs Ray: pip install 'autotts[ray]' (or use --backend processes)"
        ) from None
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif workers:
            kwargs["num_cpus"] = workers
        try:
            ray.init(**kwargs)
        except Exception as exc:
            raise ConfigError(f"cannot start or reach a Ray cluster at {address or 'local'}: {exc}") from None
        started_here = True
    try:
        remote = ray.remote(run_with)
        refs = {}
        store_refs: dict[int, Any] = {}
        for i, (si, spec) in enumerate(tasks):
            if si not in store_refs:
                store_refs[si] = ray.put(stores[si])
            refs[remote.remote(store_refs[si], spec, options)] = i
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield refs[ref], ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()


def run_tasks(
    stores: Sequence[ReplayStore],
    tasks: Sequence[tuple[int, ControllerSpec]],
    options: RunOptions,
    *,
    backend: str = "processes",
    workers: int | None = None,
    address: str | None = None,
) -> Iterator[tuple[int, CellResult]]:
    """Run ``(store index, spec)`` tasks on a backend; yield ``(task index, result)`` as they finish."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if not tasks:
        return iter(())
    if backend == "serial":
        return _serial(stores, tasks, options)
    if backend == "processes":
        return _processes(stores, tasks, options, workers)
    return _ray(stores, tasks, options, address, workers)
