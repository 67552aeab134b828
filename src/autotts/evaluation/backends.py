"""Execution backends for evaluation cells: ``serial``, ``processes`` and ``ray``.

A cell (store × fully specified controller) is deterministic, so every backend gives
identical results; they differ only in where cells run. ``processes`` forks worker
processes that inherit the loaded stores (no copying of replay data per task);
``ray`` ships each store once to the object store and runs cells as remote tasks on a
local or remote cluster (``ray`` is an optional extra).

Results are yielded as cells finish (for progress bars and streaming output) together
with the index of their cell, so callers can restore the original order.

Why the ``processes`` backend keeps its own small pool instead of
``concurrent.futures.ProcessPoolExecutor``: a user controller may spin forever, and
the executor can neither stop one running task (killing a worker breaks the whole
pool) nor leave quickly on Ctrl-C (its shutdown waits for running tasks). Here each
worker runs one cell at a time over its own pipe, so the parent can

* kill exactly the worker whose cell ran past ``cell_timeout`` and start another;
* kill every worker at once when it is interrupted or fails (the workers ignore
  SIGINT, which a terminal sends to the whole process group: the parent decides);
* and the workers die with the parent even when it is killed with SIGKILL, through
  ``PR_SET_PDEATHSIG`` on Linux and a watchdog thread on the parent's pid elsewhere.

Every backend executes :func:`run_with`, which runs one cell in the current process
(:func:`autotts.evaluation.cell.run_cell`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any

from autotts.controllers.spec import ControllerSpec
from autotts.env.protocols import Protocol
from autotts.errors import AutoTTSError, CellTimeoutError, ConfigError, ControllerError
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


#: A unit of work: (index of the store in the store list, controller spec).
Task = tuple[int, ControllerSpec]


def _describe(stores: Sequence[ReplayStore], task: Task) -> str:
    return f"{task[1].label} on {stores[task[0]].name}"


def _timeout_error(stores: Sequence[ReplayStore], task: Task, limit: float) -> CellTimeoutError:
    return CellTimeoutError(
        f"cell {_describe(stores, task)} ran longer than the --cell-timeout of {limit:g} s and was stopped; "
        "finished cells are kept (raise the limit, or fix the controller, and rerun)",
        controller=task[1].label,
    )


# ------------------------------------------------------------------------------ serial


@contextlib.contextmanager
def _alarm(seconds: float | None, on_timeout: Callable[[], AutoTTSError]) -> Iterator[None]:
    """Raise ``on_timeout()`` in this thread after ``seconds`` of wall time (main thread only).

    In-process code cannot be killed, but a Python-level loop is interrupted between
    bytecodes by the SIGALRM handler, which is enough for a runaway controller.
    """
    if seconds is None:
        yield
        return
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        log.warning("cell timeout not enforced: the serial backend enforces it only in the main thread")
        yield
        return
    limit: float = seconds

    def fire(signum: int, frame: FrameType | None) -> None:
        raise on_timeout()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _serial(
    stores: Sequence[ReplayStore],
    tasks: Sequence[Task],
    options: RunOptions,
    cell_timeout: float | None,
) -> Generator[tuple[int, CellResult], None, None]:
    for i, task in enumerate(tasks):
        with _alarm(cell_timeout, functools.partial(_timeout_error, stores, task, cell_timeout or 0.0)):
            result = run_with(stores[task[0]], task[1], options)
        yield i, result


# --------------------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Make this worker die when the process ``parent`` does (even by SIGKILL)."""
    libc_name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="autotts-parent-watchdog", daemon=True).start()


def _worker(conn: Connection, stores: Sequence[ReplayStore], options: RunOptions, parent: int) -> None:
    """Worker loop: receive ``(task index, store index, spec)``, send back ``(index, ok, result or error)``."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, store_index, spec = message
        try:
            reply: tuple[int, bool, Any] = (index, True, run_with(stores[store_index], spec, options))
        except BaseException as exc:  # reported to the parent, which raises it there
            reply = (index, False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. an exception a user module defined that does not pickle
            conn.send((index, False, ControllerError(f"{type(reply[2]).__name__}: {reply[2]} ({exc})")))


@dataclass
class _Slot:
    """One worker process, its pipe and the cell it is running."""

    process: Any
    conn: Connection
    task: int | None = None
    started: float = 0.0


def _processes(
    stores: Sequence[ReplayStore],
    tasks: Sequence[Task],
    options: RunOptions,
    workers: int | None,
    cell_timeout: float | None,
) -> Generator[tuple[int, CellResult], None, None]:
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if n_workers == 1 and cell_timeout is None:
        yield from _serial(stores, tasks, options, None)
        return
    # Under fork (Linux) the stores already in memory reach the workers for free;
    # elsewhere they are pickled once per worker. Each task then ships only a spec.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    parent = os.getpid()

    def start() -> _Slot:
        here, there = ctx.Pipe()
        process = ctx.Process(  # type: ignore[attr-defined]
            target=_worker, args=(there, stores, options, parent), daemon=True, name="autotts-eval-worker"
        )
        process.start()
        there.close()
        return _Slot(process, here)

    def stop(slot: _Slot) -> None:
        slot.process.kill()
        slot.conn.close()

    queue = list(range(len(tasks)))
    queue.reverse()  # pop() from the end hands tasks out in order
    slots: list[_Slot] = []
    try:
        slots = [start() for _ in range(n_workers)]
        running = 0
        while queue or running:
            for slot in slots:
                if slot.task is None and queue:
                    slot.task = queue.pop()
                    slot.started = time.monotonic()
                    slot.conn.send((slot.task, *tasks[slot.task]))
                    running += 1
            busy = [s for s in slots if s.task is not None]
            timeout = None
            if cell_timeout is not None:
                timeout = max(0.0, min(s.started for s in busy) + cell_timeout - time.monotonic())
            ready = wait([s.conn for s in busy], timeout=timeout)
            for slot in busy:
                task = slot.task
                if task is None:
                    continue
                if slot.conn in ready:
                    try:
                        index, ok, payload = slot.conn.recv()
                    except (EOFError, OSError):
                        code = slot.process.exitcode
                        raise AutoTTSError(
                            f"the worker evaluating {_describe(stores, tasks[task])} died "
                            f"(exit code {code}); rerun with --backend serial to see why"
                        ) from None
                    slot.task = None
                    running -= 1
                    if not ok:
                        raise payload
                    yield index, payload
                elif cell_timeout is not None and time.monotonic() - slot.started >= cell_timeout:
                    raise _timeout_error(stores, tasks[task], cell_timeout)
    finally:
        # Interrupted, failed or done: no worker outlives this generator. Killing is
        # immediate; a finished worker simply gets its end-of-work message first.
        for slot in slots:
            if slot.task is None:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
            stop(slot)
        for slot in slots:
            slot.process.join(timeout=5)


# --------------------------------------------------------------------------------- ray


def _ray(
    stores: Sequence[ReplayStore],
    tasks: Sequence[Task],
    options: RunOptions,
    address: str | None,
    workers: int | None,
) -> Generator[tuple[int, CellResult], None, None]:
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
    refs: dict[Any, int] = {}
    try:
        remote = ray.remote(run_with)
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
            refs = {ref: refs[ref] for ref in pending}
    finally:
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def run_tasks(
    stores: Sequence[ReplayStore],
    tasks: Sequence[Task],
    options: RunOptions,
    *,
    backend: str = "processes",
    workers: int | None = None,
    address: str | None = None,
    cell_timeout: float | None = None,
) -> Generator[tuple[int, CellResult], None, None]:
    """Run ``(store index, spec)`` tasks on a backend; yield ``(task index, result)`` as they finish.

    ``cell_timeout`` (seconds of wall time per cell) raises :class:`CellTimeoutError`
    for the first cell that runs longer; the ``processes`` backend kills its worker,
    ``serial`` interrupts it in-process, ``ray`` does not support it. Closing the
    iterator (or an exception in it) stops every worker at once.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    check_cell_timeout(cell_timeout, backend)
    if backend == "serial" or not tasks:
        return _serial(stores, tasks, options, cell_timeout)
    if backend == "processes":
        return _processes(stores, tasks, options, workers, cell_timeout)
    return _ray(stores, tasks, options, address, workers)


def check_cell_timeout(cell_timeout: float | None, backend: str) -> None:
    """Refuse a cell timeout that is not a positive number or that ``backend`` cannot enforce."""
    if cell_timeout is None:
        return
    if not (isinstance(cell_timeout, (int, float)) and cell_timeout > 0 and cell_timeout != float("inf")):
        raise ConfigError(f"cell timeout must be a positive number of seconds, got {cell_timeout!r}")
    if backend == "ray":
        raise ConfigError("--cell-timeout is enforced by the serial and processes backends, not by ray")
