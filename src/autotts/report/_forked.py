"""Run one function in a forked child while the parent goes on, and collect its result.

Why: a report's two big jobs, drawing the figures (matplotlib) and writing the trace
viewer's files (replay, encoding, compression), are independent and both hold the GIL
most of the time, so threads do not overlap them (measured: slower than one after the
other). A forked child inherits the loaded stores and compiled kernels for free and
runs on the other core. Where ``fork`` is not available the function simply runs in
the parent when its result is asked for, with the same result.

The child sends back its return value (pickled). If the function raised, or the child
died without answering (killed, out of memory), :meth:`ForkedCall.result` runs the
function in the parent instead: its exception is then raised with its own type and
attributes, and a report never depends on the child having worked.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        try:
            payload = pickle.dumps(fn(*args))
        except Exception:  # the parent reruns the call and raises it there, exactly
            # Nothing is logged here: a console lock held by another thread of the parent
            # at fork time (a progress bar refreshing) would never be released in the child.
            payload = b""
        conn.send_bytes(payload)
    finally:
        conn.close()


class ForkedCall(Generic[T]):
    """``fn(*args)`` running in a forked child (or deferred, where there is no fork)."""

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        self._fn = fn
        self._args = args
        self._process: Any = None
        self._conn: Connection | None = None
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_child, args=(child, fn, args), daemon=True, name="autotts-report")
        process.start()
        child.close()
        self._process, self._conn = process, parent

    def result(self) -> T:
        """The function's return value; its exception is raised here."""
        if self._conn is None:
            return self._fn(*self._args)
        try:
            payload = self._conn.recv_bytes()
        except EOFError:
            payload = b""
        finally:
            self._conn.close()
            self._conn = None
            self._process.join()
        if not payload:
            # The child failed or died: run the call here, so that its error (if any) is
            # raised with its own type, attributes and traceback.
            return self._fn(*self._args)
        return pickle.loads(payload)  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Stop the child (if still running) without waiting for its result."""
        if self._conn is not None:
            self._process.kill()
            self._process.join()
            self._conn.close()
            self._conn = None
