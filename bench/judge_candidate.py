"""The candidate side of a judged β sweep alone: replay recorded judge frames into the candidate's dispatcher.

Why: in a judged sweep the judge and the candidate process run at the same time, so wall
and CPU figures mix both sides and the machine's load. This script first records every
frame the judge sends during a judged CMC sweep (11 β x 10 runs, one store; the judge in a
thread of this process, the candidate's dispatcher on the main thread, real pipes), then
replays those frames into the same dispatcher (:func:`autotts.discovery._child._serve`)
through an in-memory channel — no judge, no pipe, no process start — and compares its CPU
time with the same controller replayed in-process on a :class:`ReplaySession`. The ratio is
a floor for the judged sweep's wall time on one candidate process: the candidate cannot
finish faster than its own work.

Usage (from the repository root)::

    .venv/bin/python bench/judge_candidate.py [--store PATH] [--runs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from judge import BETAS, count_actions, in_process  # bench/judge.py: the same sweep, counted the same way

from autotts.controllers import cmc as cmc_mod
from autotts.discovery import _child
from autotts.discovery.judge import judge
from autotts.discovery.sandbox import StorePayload, orders_for
from autotts.env import speedups
from autotts.env.wire import Channel
from autotts.evaluation.protocols import Protocol
from autotts.store import load_store
from autotts.store.schema import ReplayStore


class _Recording(Channel):
    """A channel that keeps every frame it receives."""

    __slots__ = ("frames",)

    def recv(self) -> bytes:
        frame = super().recv()
        self.frames.append(frame)
        return frame


class _Replay:
    """The candidate's channel in the replay: recorded frames in, sent frames counted and dropped."""

    def __init__(self, frames: list[bytes]) -> None:
        self._frames = iter(frames)
        self.sent = 0

    def recv(self) -> bytes:
        frame = next(self._frames, None)
        if frame is None:
            raise EOFError("the recording ends here")
        return frame

    def send(self, body: bytes) -> None:
        self.sent += 1


def _controller_class() -> Any:
    """CMC compiled from its module's source, as a candidate's class is."""
    ns: dict[str, Any] = {"__name__": "candidate_controller"}
    exec(compile(inspect.getsource(cmc_mod), "controller.py", "exec"), ns)
    return ns["ConfidenceMomentum"]


def record(store: ReplayStore, runs: int) -> list[bytes]:
    """The frames the judge sends during a judged sweep (judge in a thread, dispatcher here)."""
    payload = [StorePayload(store.name, tuple(store.replay))]
    run_ids = list(range(runs))
    orders = orders_for(payload, run_ids, Protocol().order)
    to_cand_r, to_cand_w = os.pipe()
    to_judge_r, to_judge_w = os.pipe()
    judge_chan = Channel(to_judge_r, to_cand_w)
    judge_chan.drain_while_sending()
    worker = threading.Thread(
        target=judge,
        args=(judge_chan,),
        kwargs={
            "stores": [payload[0].questions],
            "betas": BETAS,
            "runs": run_ids,
            "orders": orders,
            "trace_runs": set(),
            "events_cap": 400,
        },
        daemon=True,
    )
    worker.start()
    chan = _Recording(to_cand_r, to_judge_w)
    chan.frames = []
    chan.send(b"R")
    _child._serve(chan, _controller_class())
    worker.join()
    for fd in (to_cand_r, to_cand_w, to_judge_r, to_judge_w):
        os.close(fd)
    return chan.frames


def replay(frames: list[bytes]) -> tuple[float, int]:
    """CPU seconds of the candidate's dispatcher fed ``frames``; frames it sent."""
    cls = _controller_class()
    out = _Replay(frames)
    t = time.process_time()
    try:
        _child._serve(out, cls)
    except EOFError:
        pass
    return time.process_time() - t, out.sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=Path("../shared/data/autotts-replay/Qwen3-4B/aime24.json"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    store = load_store(args.store)
    load = os.getloadavg()[0]
    print(f"store {store.name}: {len(store)} questions; load average {load:.1f}; python {sys.version.split()[0]}")
    print(f"candidate-side session path: {speedups.describe()}")
    frames = record(store, args.runs)
    cls = _controller_class()
    actions = count_actions(cls, store, args.runs)
    # As in the candidate process: imports frozen out of the collector, fewer collections.
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    cand = min(replay(frames)[0] for _ in range(args.repeats))
    base = min(in_process(cls, store, args.runs)[1] for _ in range(args.repeats))
    print(f"frames recorded: {len(frames):,} ({sum(map(len, frames)) / 1e6:.1f} MB); session actions: {actions:,}")
    print(f"in-process replay      : {base:6.2f} s CPU, {1e6 * base / actions:.2f} us per action")
    print(f"candidate side, alone  : {cand:6.2f} s CPU, {1e6 * cand / actions:.2f} us per action")
    print(f"ratio                  : {cand / base:.1f}x (best of {args.repeats}; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
