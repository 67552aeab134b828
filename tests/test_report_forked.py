"""``ForkedCall``: the report's background job gives the function's result, or its error, exactly."""

from __future__ import annotations

import os
import time

import pytest

from autotts.errors import ResultsError
from autotts.report._forked import ForkedCall

PARENT = os.getpid()


def _pid_and(value: int) -> tuple[int, int]:
    return os.getpid(), value * 2


def _fails(where: str) -> None:
    raise ResultsError(f"broken in {'the parent' if os.getpid() == PARENT else 'the child'}", path=where)


def _dies_in_the_child() -> str:
    if os.getpid() != PARENT:
        os._exit(3)  # as if killed: no answer
    return "run again here"


def _sleeps() -> int:
    time.sleep(60)
    return 1


def test_the_call_runs_in_another_process_and_returns_its_value() -> None:
    pid, value = ForkedCall(_pid_and, 21).result()
    assert value == 42 and pid != PARENT


def test_an_error_is_raised_as_the_parent_would_raise_it() -> None:
    # The child's exception is not shipped (custom exceptions do not always pickle back
    # with their attributes): the parent reruns the call and raises its own.
    with pytest.raises(ResultsError, match="broken in the parent") as info:
        ForkedCall(_fails, "some/file.json").result()
    assert info.value.path == "some/file.json"


def test_a_child_that_dies_without_answering_is_replaced_by_the_parent() -> None:
    assert ForkedCall(_dies_in_the_child).result() == "run again here"


def test_cancel_stops_the_child_at_once() -> None:
    call = ForkedCall(_sleeps)
    started = time.monotonic()
    call.cancel()
    assert time.monotonic() - started < 10
