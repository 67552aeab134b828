"""Per-call overhead of the controller-facing session (what a user-written controller pays).

Prints nanoseconds per call of open / advance / read / prune and the trace-recording
overhead, on a synthetic-sized question (128 branches, 40 probes each) so it needs
no data. Run: python bench/session_overhead.py
"""

from __future__ import annotations

import time

from autotts.env import ReplaySession
from autotts.store.schema import ReplayQuestion

N_BRANCHES, N_PROBES, REPS = 128, 40, 200


def question() -> ReplayQuestion:
    probes = tuple(tuple((b + k) % 7 for k in range(N_PROBES)) for b in range(N_BRANCHES))
    return ReplayQuestion(
        vocab=tuple(str(i) for i in range(7)),
        probes=probes,
        tokens=tuple(20_000 for _ in range(N_BRANCHES)),
        finals=tuple(b % 7 for b in range(N_BRANCHES)),
        delta=500,
    )


def per_call(label: str, fn, calls_per_rep: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(REPS):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / (REPS * calls_per_rep))
    print(f"{label:<38} {best:8.0f} ns/call")
    return best


def main() -> None:
    q = question()
    order = list(range(N_BRANCHES))
    for record in (False, True):
        tag = "record on " if record else "record off"

        def opens(record: bool = record) -> None:
            s = ReplaySession(q, order, record=record)
            for _ in range(N_BRANCHES):
                s.open()

        def advances(record: bool = record) -> None:
            s = ReplaySession(q, order, record=record)
            s.open()
            for _ in range(N_PROBES):
                s.advance(0)

        def reads(record: bool = record) -> None:
            s = ReplaySession(q, order, record=record)
            for _ in range(N_BRANCHES):
                s.read()

        per_call(f"open()     [{tag}]", opens, N_BRANCHES)
        per_call(f"advance(i) [{tag}]", advances, N_PROBES + 1)
        per_call(f"read()     [{tag}]", reads, N_BRANCHES)

    def sessions() -> None:
        ReplaySession(q, order)

    per_call("ReplaySession(...) construction", sessions, 1)


if __name__ == "__main__":
    main()
